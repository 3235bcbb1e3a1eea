"""Training datasets: examples, pairs, and versioned, scrubbed snapshots stored as blobs.

A snapshot is two JSON Lines files (``sft.jsonl``, ``dpo.jsonl``) and a ``manifest.json``
with the content hash, the source turn and sample ids, counts and sizes, under
``<root>/<owner_kind>/<owner_id>/<hash prefix>/`` of any fsspec URL (a local directory by
default). Everything is scrubbed of personal data (``adapters.pii``) before it is
hashed or written; the manifest is written last, so a directory without one is an
unfinished write. The path depends only on the content, so writing the same data twice
(a redelivered task) writes the same files.

Nothing here touches the database: ``adapters.dataset_sources`` reads examples and pairs
from it and records snapshots.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import fsspec

from adapters.pii import scrub

FORMAT = "attune-dataset/1"
SAMPLE_PROMPT = "Write a passage in my own words and style."
"""The user message a writing sample answers, so samples train like replies."""

Message = dict[str, str]


@dataclass(frozen=True)
class SFTExample:
    """A reply the model should learn to give.

    Attributes:
        prompt: The conversation before the reply (chat-template dicts).
        completion: The reply: an accepted assistant reply, the user's edit of one, or
            a writing sample.
        source: ``accepted``, ``edited`` or ``sample``.
        source_id: The assistant turn's id, or the sample's id.
    """

    prompt: tuple[Message, ...]
    completion: str
    source: str
    source_id: str

    def as_json(self) -> dict[str, Any]:
        """The JSONL record."""
        return {
            "prompt": list(self.prompt),
            "completion": self.completion,
            "source": self.source,
            "source_id": self.source_id,
        }


@dataclass(frozen=True)
class PreferencePair:
    """Two replies to the same prompt, one preferred.

    The Workers issue stores pairs in their own table; ``adapters.dataset_sources``
    turns its rows (or, until then, feedback edits) into these.

    Attributes:
        prompt: The conversation before the reply.
        chosen: The preferred reply.
        rejected: The other one.
        source_id: The turn the pair comes from.
    """

    prompt: tuple[Message, ...]
    chosen: str
    rejected: str
    source_id: str

    def as_json(self) -> dict[str, Any]:
        """The JSONL record."""
        return {
            "prompt": list(self.prompt),
            "chosen": self.chosen,
            "rejected": self.rejected,
            "source_id": self.source_id,
        }


@dataclass(frozen=True)
class Snapshot:
    """A scrubbed dataset ready to write, or one read back."""

    manifest: dict[str, Any]
    sft: list[SFTExample]
    pairs: list[PreferencePair]
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """SHA-256 of the files' contents."""
        return str(self.manifest["content_hash"])


def sample_example(sample_id: str, text: str) -> SFTExample:
    """An SFT example for a writing sample."""
    return SFTExample(
        prompt=({"role": "user", "content": SAMPLE_PROMPT},),
        completion=text,
        source="sample",
        source_id=sample_id,
    )


def _scrub_messages(messages: Sequence[Message], counts: Counter[str]) -> tuple[Message, ...]:
    out = []
    for m in messages:
        result = scrub(m["content"])
        counts.update(result.counts)
        out.append({"role": m["role"], "content": result.text})
    return tuple(out)


def scrub_examples(
    sft: Sequence[SFTExample], pairs: Sequence[PreferencePair]
) -> tuple[list[SFTExample], list[PreferencePair], Counter[str]]:
    """Scrub every text of ``sft`` and ``pairs``; return them and per-kind counts."""
    counts: Counter[str] = Counter()

    def text(value: str) -> str:
        result = scrub(value)
        counts.update(result.counts)
        return result.text

    clean_sft = [
        SFTExample(_scrub_messages(e.prompt, counts), text(e.completion), e.source, e.source_id)
        for e in sft
    ]
    clean_pairs = [
        PreferencePair(
            _scrub_messages(p.prompt, counts), text(p.chosen), text(p.rejected), p.source_id
        )
        for p in pairs
    ]
    return clean_sft, clean_pairs, counts


def _jsonl(records: Sequence[dict[str, Any]]) -> bytes:
    lines = (json.dumps(r, ensure_ascii=False, sort_keys=True) for r in records)
    return "".join(line + "\n" for line in lines).encode("utf-8")


def build_snapshot(
    *,
    owner_kind: str,
    owner_id: str,
    sft: Sequence[SFTExample],
    pairs: Sequence[PreferencePair],
    source_turn_ids: Sequence[str] = (),
    source_sample_ids: Sequence[str] = (),
) -> Snapshot:
    """Scrub the data and build a snapshot's files and manifest (nothing is written).

    Examples are ordered by source id, so the same data always gives the same bytes and
    the same hash.

    Args:
        owner_kind: ``user`` or ``group``.
        owner_id: The owner's id.
        sft: SFT examples.
        pairs: Preference pairs.
        source_turn_ids: The turns the data came from (for deletion and lineage).
        source_sample_ids: The writing samples it came from.

    Returns:
        The snapshot, with ``files`` set and the manifest's ``version`` unset.
    """
    clean_sft, clean_pairs, counts = scrub_examples(sft, pairs)
    clean_sft.sort(key=lambda e: (e.source_id, e.completion))
    clean_pairs.sort(key=lambda p: (p.source_id, p.chosen))
    files = {
        "sft.jsonl": _jsonl([e.as_json() for e in clean_sft]),
        "dpo.jsonl": _jsonl([p.as_json() for p in clean_pairs]),
    }
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name])
    manifest = {
        "format": FORMAT,
        "owner_kind": owner_kind,
        "owner_id": owner_id,
        "version": None,
        "content_hash": digest.hexdigest(),
        "source_turn_ids": sorted(set(source_turn_ids)),
        "source_sample_ids": sorted(set(source_sample_ids)),
        "counts": {"sft": len(clean_sft), "dpo": len(clean_pairs)},
        "bytes": {name: len(data) for name, data in files.items()},
        "size_bytes": sum(len(data) for data in files.values()),
        "scrubbed": dict(sorted(counts.items())),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return Snapshot(manifest=manifest, sft=clean_sft, pairs=clean_pairs, files=files)


def snapshot_url(root: str, owner_kind: str, owner_id: str, content_hash: str) -> str:
    """Where a snapshot with this content lives under ``root``."""
    return f"{root.rstrip('/')}/{owner_kind}/{owner_id}/{content_hash[:16]}"


def write_snapshot(
    snapshot: Snapshot,
    root: str,
    *,
    version: int,
    storage_options: dict[str, Any] | None = None,
) -> str:
    """Write a built snapshot's files, then its manifest, under ``root``.

    Args:
        snapshot: From :func:`build_snapshot`.
        root: Any fsspec URL or local path (``/data/datasets``, ``s3://bucket/datasets``).
        version: The owner's dataset version this snapshot becomes.
        storage_options: Passed to the fsspec filesystem (credentials, endpoints).

    Returns:
        The snapshot's URL (its directory).
    """
    m = snapshot.manifest
    url = snapshot_url(root, m["owner_kind"], m["owner_id"], snapshot.content_hash)
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    fs.makedirs(path, exist_ok=True)
    for name, data in snapshot.files.items():
        with fs.open(f"{path}/{name}", "wb") as f:
            f.write(data)
    manifest = dict(m, version=version)
    with fs.open(f"{path}/manifest.json", "wb") as f:  # last: marks the write finished
        f.write(json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
    return url


def read_snapshot(url: str, storage_options: dict[str, Any] | None = None) -> Snapshot:
    """Read a snapshot back and check its content hash.

    Args:
        url: A snapshot's URL, as :func:`write_snapshot` returned.
        storage_options: Passed to the fsspec filesystem.

    Returns:
        The snapshot, with its examples and pairs parsed.

    Raises:
        FileNotFoundError: No finished snapshot is there.
        ValueError: The files do not match the manifest's hash.
    """
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    with fs.open(f"{path}/manifest.json", "rb") as f:
        manifest = json.loads(f.read().decode("utf-8"))
    files: dict[str, bytes] = {}
    for name in manifest["bytes"]:
        with fs.open(f"{path}/{name}", "rb") as f:
            files[name] = f.read()
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name])
    if digest.hexdigest() != manifest["content_hash"]:
        raise ValueError(f"snapshot at {url} does not match its manifest's hash")
    sft = [
        SFTExample(tuple(r["prompt"]), r["completion"], r["source"], r["source_id"])
        for r in _records(files.get("sft.jsonl", b""))
    ]
    pairs = [
        PreferencePair(tuple(r["prompt"]), r["chosen"], r["rejected"], r["source_id"])
        for r in _records(files.get("dpo.jsonl", b""))
    ]
    return Snapshot(manifest=manifest, sft=sft, pairs=pairs, files=files)


def _records(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


T = TypeVar("T")


def split_held_out(
    items: Sequence[T], key: Callable[[T], str], fraction: float = 0.2
) -> tuple[list[T], list[T]]:
    """Split into (train, held-out) by a hash of each item's key.

    An item's side depends only on its key, so it stays on the same side in every later
    snapshot: a candidate and the adapter it is compared with never trained on the
    held-out items. When the hash puts nothing aside and there are at least two items,
    the one with the smallest hash is held out.

    Args:
        items: Examples or pairs.
        key: The stable id of an item (its source id).
        fraction: The expected held-out share.

    Returns:
        ``(train, held_out)``, each in the input's order.
    """

    def unit(item: T) -> float:
        h = hashlib.sha256(key(item).encode("utf-8")).digest()
        return int.from_bytes(h[:8], "big") / 2**64

    held = [item for item in items if unit(item) < fraction]
    if not held and len(items) >= 2:
        held = [min(items, key=unit)]
    held_ids = {id(item) for item in held}
    return [item for item in items if id(item) not in held_ids], held
