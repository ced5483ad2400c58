"""Kernel-facing wire formats (pure codecs)."""
