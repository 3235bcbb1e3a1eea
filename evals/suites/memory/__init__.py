"""The ``memory`` suite: its run (``suite``) and its data."""
