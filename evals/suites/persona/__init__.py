"""The ``persona`` suite: its run (``suite``) and its data."""
