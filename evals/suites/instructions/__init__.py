"""The ``instructions`` suite: its run (``suite``) and its data."""
