"""Attune's vLLM plugin: packaged as a wheel and installed into vLLM's virtual environment.

The plugin is one module, ``adapters/vllm_resolver.py``, installed as the top-level
module ``attune_vllm_resolver`` with two entry points named
:data:`~adapters.vllm_resolver.PLUGIN` (``vllm.general_plugins`` and
``vllm.endpoint_plugins``). The wheel is written here, from the module's source, rather
than built by a build backend: no index or build isolation is needed, and its version
carries the source's hash, so :func:`install` replaces an installed copy exactly when the
source changed. :func:`adapters.vllm_server.ensure_venv` calls :func:`install`.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from adapters import vllm_resolver
from adapters.vllm_resolver import PLUGIN

DIST = "attune_vllm_resolver"
"""The distribution's and the module's name inside vLLM's venv."""

SOURCE = Path(vllm_resolver.__file__)


def version() -> str:
    """``0.1.0+<first 12 hex of the module source's SHA-256>``."""
    return f"0.1.0+{hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]}"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(out_dir: Path) -> Path:
    """Write the plugin's wheel into ``out_dir``; its path."""
    ver = version()
    info = f"{DIST}-{ver}.dist-info"
    files = {
        f"{DIST}.py": SOURCE.read_bytes(),
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {ver}\n"
            "Summary: Attune's vLLM plugin: LoRA adapters fetched from an fsspec URL\n"
            "Requires-Dist: fsspec\n"
        ).encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: attune\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{info}/entry_points.txt": (
            f"[vllm.general_plugins]\n{PLUGIN} = {DIST}:register\n\n"
            f"[vllm.endpoint_plugins]\n{PLUGIN} = {DIST}:AdapterRoutes\n"
        ).encode(),
    }
    record = [_record_line(path, data) for path, data in files.items()]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    wheel = out_dir / f"{DIST}-{ver}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def stamp(venv: Path) -> Path:
    """The file marking this version of the plugin as installed in ``venv``."""
    return venv / f".attune-plugin-{version()}"


def install(venv: Path, python: Path, *, echo: Callable[[str], None] = print) -> bool:
    """Install the plugin into ``venv`` unless this version is there; whether it installed.

    Raises:
        subprocess.CalledProcessError: pip failed.
    """
    if stamp(venv).is_file():
        return False
    echo(f"  installing Attune's vLLM plugin {version()}")
    with tempfile.TemporaryDirectory() as tmp:
        wheel = build_wheel(Path(tmp))
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall",
             str(wheel)],
            check=True,
        )  # fmt: skip
    for old in venv.glob(".attune-plugin-*"):
        old.unlink()
    stamp(venv).touch()
    return True
