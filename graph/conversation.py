"""Conversation digests, so a client that resends the whole conversation continues its thread."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable


def conversation_hash(messages: Iterable[tuple[str, str]]) -> str:
    """Digest of ``(role, content)`` pairs; system messages must be left out by the caller."""
    h = hashlib.sha256()
    for role, content in messages:
        h.update(
            json.dumps([role, content.strip()], ensure_ascii=False).encode("utf-8", "surrogatepass")
        )
        h.update(b"\n")
    return h.hexdigest()
