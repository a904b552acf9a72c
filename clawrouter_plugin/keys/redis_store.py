"""API keys in the team's Redis (``state.backend: redis``): one hash, ``<prefix>:keys``, with
a JSON record per key id.

A proxy keeps what it read about a key for at most :data:`CACHE_SECONDS` (half of
:data:`~.store.REVOCATION_SECONDS`), so a key revoked through any process is refused by all
of them within a second, at the cost of one HGET per key and half-second. When Redis cannot
be reached and the key is not in that short cache, the request is refused with a 503:
nothing is served to a caller who cannot be checked.
"""

from __future__ import annotations

import time

import orjson

from ..errors import ClawRouterError, KeysUnavailable
from ..state.redis_conn import REDIS_ERRORS, RedisLink
from .model import ApiKey
from .store import REVOCATION_SECONDS, KeyStore, from_record, unknown

CACHE_SECONDS = REVOCATION_SECONDS / 2
_Found = tuple[ApiKey, str] | None


class RedisKeyStore(KeyStore):
    """Keys in a Redis hash shared by every process of the team."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self.hash = link.key("keys")
        self._cache: dict[str, tuple[float, _Found]] = {}  # id → (expires, what was read)

    async def list(self) -> list[ApiKey]:
        raw = await self._call(self.link.client.hgetall(self.hash))
        keys = []
        for value in raw.values():
            found = _decode(value)
            if found is not None:
                keys.append(found[0])
        return sorted(keys, key=lambda key: key.created)

    async def revoke(self, key_id: str) -> ApiKey:
        raw = await self._call(self.link.client.hget(self.hash, key_id))
        if raw is None:
            raise unknown(key_id)
        record = orjson.loads(raw)
        record["revoked"] = True  # nothing else ever changes a stored record: no race to lose
        await self._call(self.link.client.hset(self.hash, key_id, orjson.dumps(record)))
        self._cache.pop(key_id, None)
        return from_record(record)

    async def _add(self, record: dict) -> None:
        added = await self._call(self.link.client.hsetnx(self.hash, record["id"],
                                                         orjson.dumps(record)))
        if not added:  # 48 random bits met an existing id: say so rather than overwrite it
            raise ClawRouterError("a key with the same id exists; run the command again")

    async def _lookup(self, key_id: str) -> _Found:
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            raw = await self.link.client.hget(self.hash, key_id)
        except REDIS_ERRORS as exc:
            self.link.mark_down(exc)
            raise KeysUnavailable("API keys cannot be checked: Redis is unreachable") from None
        self.link.mark_up()
        found = _decode(raw) if raw is not None else None
        if len(self._cache) > 10_000:  # unknown ids sprayed at the proxy: start afresh
            self._cache.clear()
        self._cache[key_id] = (now + CACHE_SECONDS, found)
        return found

    async def _call(self, command):
        """Await one Redis command for ``clawrouter keys``; a clear error when unreachable."""
        try:
            result = await command
        except REDIS_ERRORS as exc:
            self.link.mark_down(exc)
            raise ClawRouterError(f"cannot reach Redis at {self.link.url}: "
                                  f"{self.link.last_error}") from None
        self.link.mark_up()
        return result


def _decode(raw: bytes) -> _Found:
    """(key, hash) of a stored record; None when it is damaged (that key cannot be used)."""
    try:
        record = orjson.loads(raw)
        return from_record(record), record["hash"]
    except (ValueError, KeyError, TypeError):
        return None
