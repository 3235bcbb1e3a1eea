"""The ``preferences`` suite: its run (``suite``) and its data."""
