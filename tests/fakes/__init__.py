"""Fakes and builders shared by the tests (one place: a test module imports them from here,
never from another test module)."""
