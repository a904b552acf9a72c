"""API key secrets: made with :mod:`secrets`, stored only as a SHA-256 hash.

A secret reads ``cr_<id>_<43 url-safe characters>``: 256 random bits after the key's public
id, so the proxy finds the key's record by id and compares hashes in constant time. A plain
SHA-256 suffices (no slow password hash): the secret is random, not chosen by a person, so
there is nothing to guess from its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "cr_"
ID_BYTES = 6  # 12 hex digits: unique enough for one team's keys, short enough to read
SECRET_BYTES = 32
_SHAPE = re.compile(r"cr_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")


def new_id() -> str:
    """A fresh public key id (12 hex digits)."""
    return secrets.token_hex(ID_BYTES)


def new_secret(key_id: str) -> str:
    """A fresh secret for the key ``key_id``."""
    return f"{PREFIX}{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"


def secret_hash(secret: str) -> str:
    """What is stored instead of ``secret``: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def id_of(secret: str) -> str | None:
    """The key id inside ``secret``; None when it does not have the shape of one of ours."""
    match = _SHAPE.fullmatch(secret)
    return match.group(1) if match else None


def matches(secret: str, stored_hash: str) -> bool:
    """Whether ``secret`` hashes to ``stored_hash`` (compared in constant time)."""
    return hmac.compare_digest(secret_hash(secret), stored_hash)
