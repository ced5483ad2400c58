"""Adapters: the only code that talks to external systems (charon, nhrpd, vtysh, kernel)."""
