"""API keys: generation and hashing.

Keys are 256-bit random tokens, so a plain SHA-256 digest is enough to store them (a slow
password hash protects low-entropy secrets; these are not).
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "att_"


def generate_key() -> str:
    """Return a new bearer key such as ``att_Zk3…`` (43 url-safe characters of entropy)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """Return the hex SHA-256 digest under which ``key`` is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def display_prefix(key: str) -> str:
    """The first characters of ``key``, safe to show in listings."""
    return key[:10]
