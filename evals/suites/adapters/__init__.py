"""The ``adapters`` suite: its run (``suite``) and its data."""
