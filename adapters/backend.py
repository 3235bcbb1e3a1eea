"""The chat backend protocol the graph generates through, and its factory.

Publication: promoting an adapter (``adapters.registry``) hands it to the backend's
:meth:`ChatBackend.publish` before the registry points its owner at it, so the next request
routed to it finds it loaded, and a broken adapter fails the promotion instead of a turn.
The local backend serves adapters found by name in the adapters directory every process
shares: a worker in another process than the server publishes into its own engine (which
checks that the adapter loads over the base model) and the server's engine finds
``<adapters_dir>/<name>`` on disk at the first request that routes to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from langchain_core.language_models import BaseChatModel

from adapters.config import ModelSettings
from adapters.engine import LocalEngine
from adapters.errors import AdapterNotFoundError, ModelNotFoundError
from adapters.local import LocalChatModel
from adapters.model_store import resolve_model_dir

__all__ = [
    "AdapterNotFoundError",
    "ChatBackend",
    "LocalBackend",
    "ModelNotFoundError",
    "make_backend",
]


@runtime_checkable
class ChatBackend(Protocol):
    """Serves chat models over one base model and its LoRA adapters.

    Attributes:
        name: The backend kind (``local`` or ``vllm``).
        model_id: The base model's id, e.g. ``SmolLM2-135M-Instruct``.
        supports_tools: Whether its chat models implement ``bind_tools`` and return tool
            calls reliably (the graph only offers tools to such backends).
        output_formats: The OpenAI ``response_format`` types its chat models honour
            (``text`` always; ``json_object`` and ``json_schema`` by guided decoding).
    """

    name: str
    model_id: str
    supports_tools: bool
    output_formats: frozenset[str]

    def chat_model(
        self,
        *,
        adapter: str | None,
        max_tokens: int,
        temperature: float,
        top_p: float = 1.0,
        stop: list[str] | None = None,
        seed: int | None = None,
        ignore_eos: bool = False,
        response_format: dict[str, Any] | None = None,
    ) -> BaseChatModel:
        """Return a chat model generating with ``adapter`` (``None``: the base model).

        ``ignore_eos`` samples past end-of-sequence tokens, so every reply is
        ``max_tokens`` long unless a stop string ends it (benchmarks, and tests whose
        assertions must hold whatever the model writes). ``response_format`` is OpenAI's
        (its ``type`` one of :attr:`output_formats`; else ``ValueError``). Unknown
        adapters raise :class:`AdapterNotFoundError`, at the latest when the model
        generates.
        """
        ...

    def count_tokens(self, text: str) -> int:
        """Count the tokens of ``text`` with the base model's tokenizer."""
        ...

    def has_adapter(self, name: str) -> bool:
        """Whether a request may name adapter ``name``."""
        ...

    def publish(self, name: str, path: Path) -> None:
        """Make adapter ``name``, whose files are in directory ``path``, servable now.

        The backend loads it (or has its servers load it) before this returns, so the
        next request naming it is served with it; publishing a published adapter again
        changes nothing.

        Raises:
            AdapterNotFoundError: ``path`` holds no adapter, or ``name`` cannot name one.
        """
        ...

    def unpublish(self, name: str) -> bool:
        """Release adapter ``name`` (what :meth:`publish` loaded); whether it was held.

        Afterwards ``name`` serves only if the backend can still find it by name itself
        (the local backend: its files under the adapters directory).
        """
        ...


TEXT_ONLY = frozenset({"text"})
GUIDED = frozenset({"text", "json_object", "json_schema"})


def check_output_format(
    response_format: dict[str, Any] | None, supported: frozenset[str], backend: str
) -> None:
    """Raise ``ValueError`` unless ``response_format``'s type is one of ``supported``."""
    kind = (response_format or {}).get("type", "text")
    if kind not in supported:
        raise ValueError(f"the {backend} backend cannot honour response_format {kind!r}")


class LocalBackend:
    """transformers + peft in this process, one shared :class:`LocalEngine`."""

    name = "local"
    # SmolLM2-135M cannot call tools reliably; a vLLM backend on a larger model can.
    supports_tools = False
    output_formats = TEXT_ONLY  # no guided decoding in transformers' generate here

    def __init__(self, engine: LocalEngine) -> None:
        """Wrap a loaded engine; most callers want :meth:`from_settings`."""
        self.engine = engine
        self.model_id = engine.model_id

    @classmethod
    def from_settings(cls, settings: ModelSettings) -> LocalBackend:
        """Resolve the base model (converting the default once) and load the engine.

        Args:
            settings: The model settings.

        Returns:
            A backend ready to generate.

        Raises:
            ModelNotFoundError: The configured model directory is missing.
            ValueError: Neither a model directory nor a cache directory is configured.
        """
        model_dir: Path = resolve_model_dir(settings)
        engine = LocalEngine.load(
            model_dir,
            adapters_dir=settings.adapters_dir,
            device=settings.device,
            max_concurrency=settings.max_concurrency,
            max_batch=settings.max_batch,
            torch_threads=settings.torch_threads,
        )
        return cls(engine)

    def chat_model(
        self,
        *,
        adapter: str | None,
        max_tokens: int,
        temperature: float,
        top_p: float = 1.0,
        stop: list[str] | None = None,
        seed: int | None = None,
        ignore_eos: bool = False,
        response_format: dict[str, Any] | None = None,
    ) -> LocalChatModel:
        """Return a chat model over the shared engine.

        Args:
            adapter: LoRA adapter name, or ``None`` for the base model.
            max_tokens: Most tokens to generate.
            temperature: ``0`` decodes greedily.
            top_p: Nucleus sampling mass.
            stop: Stop strings.
            seed: Makes sampling reproducible.
            ignore_eos: Sample past end-of-sequence tokens.
            response_format: Only ``None`` or ``{"type": "text"}``.

        Returns:
            A :class:`LocalChatModel`.

        Raises:
            AdapterNotFoundError: ``adapter`` is neither loaded nor on disk.
            ValueError: ``response_format`` asks for structured output.
        """
        check_output_format(response_format, self.output_formats, self.name)
        if adapter is not None and not self.engine.has_adapter(adapter):
            raise AdapterNotFoundError(adapter)
        return LocalChatModel(
            engine=self.engine,
            adapter=adapter,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            stop=stop,
            seed=seed,
            ignore_eos=ignore_eos,
        )

    def count_tokens(self, text: str) -> int:
        """Count the tokens of ``text`` (no special tokens added)."""
        return self.engine.count_tokens(text)

    def has_adapter(self, name: str) -> bool:
        """Whether adapter ``name`` is loaded or on disk under the adapters directory."""
        return self.engine.has_adapter(name)

    def publish(self, name: str, path: Path) -> None:
        """Load adapter ``name`` from ``path`` into the shared engine (waits for decodes).

        Raises:
            AdapterNotFoundError: ``path`` holds no adapter, or ``name`` is not a plain
                directory name.
        """
        self.engine.load_adapter(name, path)

    def unpublish(self, name: str) -> bool:
        """Unload adapter ``name`` from the engine; whether it was loaded.

        Its files stay where they are: while they are under the adapters directory a
        request naming it loads it again.
        """
        return self.engine.unload_adapter(name)


def make_backend(settings: ModelSettings) -> ChatBackend:
    """Build the backend ``settings.backend`` names.

    Args:
        settings: The model settings.

    Returns:
        A loaded backend.

    Raises:
        ValueError: The backend kind is unknown.
    """
    if settings.backend == "local":
        return LocalBackend.from_settings(settings)
    if settings.backend == "vllm":
        from adapters.vllm_backend import VllmBackend  # it imports this module's LocalBackend

        return VllmBackend.from_settings(settings)
    raise ValueError(f"unknown model backend: {settings.backend!r}")
