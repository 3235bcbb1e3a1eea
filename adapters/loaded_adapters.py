"""The LoRA adapters loaded into one shared model: by name, lazily, while their files exist.

The local engine (``adapters.engine``) keeps one :class:`LoadedAdapters`. An adapter is
found by name as ``<adapters_dir>/<name>`` (every process of a deployment shares that
directory: a server serves what a worker published there) or loaded from any directory
under a name (publication). Loading or unloading changes the model's modules, so it waits
until no decode runs (the engine's :class:`~adapters.generation_gate.GenerationGate`); an
adapter whose files were deleted stops serving at its next request.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from peft import PeftModel
from transformers import PreTrainedModel

from adapters.decoding import BASE_ADAPTER, hook_lora_layers
from adapters.errors import AdapterNotFoundError
from adapters.generation_gate import GenerationGate

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"


class LoadedAdapters:
    """The adapters of one model. Thread-safe; :meth:`has` never blocks."""

    def __init__(
        self, model: PreTrainedModel, adapters_dir: Path | None, gate: GenerationGate
    ) -> None:
        """Manage adapters of ``model`` found under ``adapters_dir``, loading under ``gate``."""
        self.model = model
        self.adapters_dir = adapters_dir
        self._gate = gate
        self._peft: PeftModel | None = None
        self._loaded: dict[str, Path] = {}
        self._hooked: set[int] = set()
        self._lock = threading.Lock()

    def loaded(self) -> set[str]:
        """The adapters in memory now (published, or loaded by a request)."""
        return set(self._loaded)

    def names(self) -> set[str]:
        """Adapters available: those on disk under ``adapters_dir`` and those loaded."""
        names = set(self._loaded)
        if self.adapters_dir is not None and self.adapters_dir.is_dir():
            names.update(
                entry.name
                for entry in self.adapters_dir.iterdir()
                if (entry / ADAPTER_CONFIG).is_file()
            )
        return names

    def has(self, name: str) -> bool:
        """Whether ``name`` is loaded or loadable with its files still on disk (never blocks)."""
        if name in self._loaded:
            return (self._loaded[name] / ADAPTER_CONFIG).is_file()
        return self.path_of(name) is not None

    def path_of(self, name: str) -> Path | None:
        """``adapters_dir / name`` when it holds an adapter; names cannot leave the dir."""
        if self.adapters_dir is None or not is_plain_name(name):
            return None
        path = self.adapters_dir / name
        return path if (path / ADAPTER_CONFIG).is_file() else None

    def load(self, name: str, path: Path | None = None) -> None:
        """Load a LoRA adapter under ``name`` (a no-op when already loaded).

        Waits until no decode runs, since loading changes the model's modules.

        Args:
            name: The adapter's name in requests.
            path: Its directory; defaults to ``adapters_dir / name``.

        Raises:
            AdapterNotFoundError: No adapter is found there.
        """
        if not is_plain_name(name):
            raise AdapterNotFoundError(name)
        with self._lock:
            if name in self._loaded:
                return
            source = path if path is not None else self.path_of(name)
            if source is None or not (source / ADAPTER_CONFIG).is_file():
                raise AdapterNotFoundError(name)
            started = time.perf_counter()
            with self._gate.exclusive():
                if self._peft is None:
                    self._peft = PeftModel.from_pretrained(
                        self.model, str(source), adapter_name=name, is_trainable=False
                    )
                else:
                    self._peft.load_adapter(str(source), adapter_name=name, is_trainable=False)
                self._peft.eval()
                hook_lora_layers(self.model, self._hooked)
            self._loaded[name] = source
            logger.info("loaded adapter %s in %.2f s", name, time.perf_counter() - started)

    def unload(self, name: str) -> bool:
        """Drop a loaded adapter (waiting until no decode runs); whether it was loaded.

        A later request naming it loads it again only if its files are still on disk.
        """
        with self._lock:
            if name not in self._loaded:
                return False
            with self._gate.exclusive():
                assert self._peft is not None
                self._peft.delete_adapter(name)
            del self._loaded[name]
        logger.info("unloaded adapter %s", name)
        return True

    def resolve(self, adapter: str | None) -> list[str]:
        """Load ``adapter`` if needed; return the ``adapter_names`` for a batch of one.

        Raises:
            AdapterNotFoundError: ``adapter`` is neither loaded nor on disk, or its files
                were deleted (it is unloaded then).
        """
        if adapter is None or adapter == BASE_ADAPTER:
            return [BASE_ADAPTER]
        if adapter in self._loaded and not self.has(adapter):
            self.unload(adapter)  # its files were deleted: stop serving it
            raise AdapterNotFoundError(adapter)
        if adapter not in self._loaded:
            self.load(adapter)
        return [adapter]


def is_plain_name(name: str) -> bool:
    """Whether ``name`` can name a directory inside ``adapters_dir`` and no other."""
    return (
        bool(name)
        and name not in {".", "..", BASE_ADAPTER}
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
    )
