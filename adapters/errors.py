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


class BackendUnavailableError(RuntimeError):
    """No model server answers (every vLLM replica is down); the request may be retried.

    Attributes:
        retry_after_s: Seconds after which a retry may succeed (the ``Retry-After`` header).
    """

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
