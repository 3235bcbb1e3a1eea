"""Errors raised by the model backends."""

from __future__ import annotations


class ModelNotFoundError(FileNotFoundError):
    """A base model directory or file is missing or is not a model."""


class AdapterNotFoundError(LookupError):
    """A request named a LoRA adapter that is neither loaded nor on disk.

    Attributes:
        name: The adapter name the request asked for.
    """

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown adapter: {name!r}")
        self.name = name
