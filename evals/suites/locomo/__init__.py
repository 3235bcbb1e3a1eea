"""The ``locomo`` suite: its run (``suite``) and its data."""
