"""Where API keys live, and the check every request of a shared proxy goes through.

Two stores with one interface, chosen once from ``state.backend`` (:func:`open_key_store`):
:class:`~.local.LocalKeyStore` (a file in the data directory) and
:class:`~.redis_store.RedisKeyStore` (a hash in the team's Redis). Both keep a record per key:
its public fields (:class:`ApiKey`) and the SHA-256 of its secret, never the secret.
A revoked key is refused by every process within :data:`REVOCATION_SECONDS`.
"""

from __future__ import annotations

import math
import time
import unicodedata
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BadRequest, ClawRouterError, Unauthorized
from . import secret as secrets_
from .model import ApiKey

if TYPE_CHECKING:
    from ..config import StateConfig
    from ..state.redis_conn import RedisLink

REVOCATION_SECONDS = 1.0  # a revoked key stops working everywhere within this
KEYS_FILE = "api-keys.json"
MAX_NAME_CHARS = 64
MAX_BUDGET_USD = 1_000_000.0
_MISSING = "missing API key: send the header 'Authorization: Bearer <key>'"
_INVALID = "invalid API key"  # unknown, malformed or revoked: the caller learns no more


class KeyNotFound(ClawRouterError):
    """No key has this id (``keys revoke`` of a mistyped id)."""

    status = 404
    type = "invalid_request_error"
    code = "key_not_found"


def to_record(key: ApiKey, hashed: str) -> dict:
    """The stored form of a key (camelCase JSON, with the secret's hash)."""
    return {"id": key.id, "name": key.name, "dailyUsd": key.daily_usd, "runUsd": key.run_usd,
            "created": key.created, "revoked": key.revoked, "hash": hashed}


def from_record(record: dict) -> ApiKey:
    """The public fields of a stored record; ValueError/KeyError/TypeError if damaged."""
    key_id, name = record["id"], record["name"]
    if not isinstance(key_id, str) or not isinstance(name, str):
        raise TypeError("id and name must be strings")
    key = ApiKey(id=key_id, name=name,
                 daily_usd=_budget(record.get("dailyUsd")), run_usd=_budget(record.get("runUsd")),
                 created=float(record.get("created") or 0.0), revoked=record.get("revoked") is True)
    if not isinstance(record.get("hash"), str):
        raise ValueError("no hash")
    return key


def _budget(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("budget is not a number")
    return float(value)


def check_name(name: str) -> str:
    """A key's name: 1 to 64 printable characters (it is shown in lists and stats)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS or any(
            unicodedata.category(char).startswith("C") for char in name):
        raise BadRequest(f"a key name must be 1 to {MAX_NAME_CHARS} printable characters")
    return name


def check_budget(value: float | None, what: str) -> float | None:
    """A budget in USD: None (no limit) or a finite number from 0 to 1,000,000."""
    if value is None:
        return None
    if not math.isfinite(value) or not 0 <= value <= MAX_BUDGET_USD:
        raise BadRequest(f"{what} must be a number of USD from 0 to {MAX_BUDGET_USD:,.0f}")
    return float(value)


def bearer_secret(authorization: str | None) -> str:
    """The secret of an ``Authorization: Bearer <secret>`` header; Unauthorized otherwise."""
    if not authorization:
        raise Unauthorized(_MISSING)
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized(_MISSING)
    return value.strip()


class KeyStore(ABC):
    """API keys: created and revoked by ``clawrouter keys``, checked on every request."""

    async def create(self, name: str, *, daily_usd: float | None = None,
                     run_usd: float | None = None) -> tuple[ApiKey, str]:
        """A new key and its secret. The secret is returned here once and stored nowhere."""
        key = ApiKey(id=secrets_.new_id(), name=check_name(name),
                     daily_usd=check_budget(daily_usd, "the daily budget"),
                     run_usd=check_budget(run_usd, "the per-run budget"), created=time.time())
        secret = secrets_.new_secret(key.id)
        await self._add(to_record(key, secrets_.secret_hash(secret)))
        return key, secret

    async def authenticate(self, authorization: str | None) -> ApiKey:
        """The key an ``Authorization`` header names; Unauthorized when it is missing,
        unknown or revoked, KeysUnavailable when the store cannot be read."""
        secret = bearer_secret(authorization)
        key_id = secrets_.id_of(secret)
        if key_id is None:
            raise Unauthorized(_INVALID)
        found = await self._lookup(key_id)
        if found is None or found[0].revoked or not secrets_.matches(secret, found[1]):
            raise Unauthorized(_INVALID)
        return found[0]

    async def has_active(self) -> bool:
        """Whether at least one key is not revoked."""
        return any(not key.revoked for key in await self.list())

    @abstractmethod
    async def list(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""

    @abstractmethod
    async def revoke(self, key_id: str) -> ApiKey:
        """Mark a key revoked (again is fine); KeyNotFound for an unknown id."""

    @abstractmethod
    async def _add(self, record: dict) -> None:
        """Store a new key's record."""

    @abstractmethod
    async def _lookup(self, key_id: str) -> tuple[ApiKey, str] | None:
        """(key, secret hash) of ``key_id``, at most REVOCATION_SECONDS / 2 old."""

    async def aclose(self) -> None:
        """Release what the store holds (nothing by default)."""


def unknown(key_id: str) -> KeyNotFound:
    """The error for a key id that is not in the store."""
    return KeyNotFound(f"no API key with id {key_id!r} (see `clawrouter keys list`)")


def open_key_store(state: "StateConfig", data_dir: Path, link: "RedisLink | None") -> KeyStore:
    """The key store of the configured backend (redis needs the process's ``link``)."""
    if state.backend == "redis":
        from .redis_store import RedisKeyStore

        assert link is not None, "the redis backend needs its RedisLink"
        return RedisKeyStore(link)
    from .local import LocalKeyStore

    return LocalKeyStore(data_dir / KEYS_FILE)
