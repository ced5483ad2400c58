"""The programs, one module each, named after the program (pyproject.toml's scripts, the
launchers in debian/rules): :mod:`.frrdmvpnd` and :mod:`.proxy` (``frrdmvpn-proxy``)."""
