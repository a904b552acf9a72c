"""The redis backend's pre-authorisation cache: a 402 learnt by one process lets every
process of the team pre-sign the next request at that price.

One Redis string per (path, price key): the 402's requirements as JSON (the entries as the
upstream sent them, re-checked by the parser on the way back) and which one was chosen; it
expires after ``ttl_seconds``. Every use still signs a fresh payment that the policy checks
again, exactly as with the local cache. While Redis cannot be reached every lookup is a miss
(the request negotiates its price with one more round trip) and nothing is stored.

Each process also keeps what it read or wrote for ``NEAR_SECONDS`` in a local
:class:`~.preauth.PreAuthCache`, so a paid request costs no Redis round trip for its price,
and remembers a miss for ``MISS_SECONDS``, so a request to a model that is never priced (a
free one) costs none either. A price another process learns meanwhile is seen after that;
until then this process may negotiate it itself (one unpaid 402, as without a cache).
A price that changes meanwhile costs at most one refused pre-signed payment (a 402, never
settled), after which the entry is dropped here and in Redis.
"""

from __future__ import annotations

import time

import orjson

from ..state.redis_conn import RedisLink
from ..state.redis_guard import RedisGuard
from .preauth import Key, PreAuthCache
from .wire import PaymentRequired, Requirement, WireError, parse_requirement

NEAR_SECONDS = 60.0  # how long a process trusts its own copy of a shared entry
MISS_SECONDS = 5.0  # how long it trusts that Redis had no entry
MAX_MISSES = 512  # keys whose miss is remembered (beyond that, all are forgotten)


class RedisPreAuth:
    """A :class:`~.preauth.PreAuthStore` in Redis (see the module doc)."""

    def __init__(self, link: RedisLink, ttl_seconds: float = 3600,
                 miss_seconds: float = MISS_SECONDS):
        self._link = link
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._near = PreAuthCache(ttl_seconds=min(NEAR_SECONDS, ttl_seconds))
        self._miss_seconds = miss_seconds
        self._missed: dict[Key, float] = {}  # key -> until when its miss is trusted
        self._guard = RedisGuard(link, "pre-authorisation",
                                 "each paid request negotiates its price first")

    def _key(self, key: Key) -> str:
        return self._link.key("preauth", orjson.dumps(key).decode())

    async def get(self, key: Key) -> tuple[PaymentRequired, Requirement] | None:
        """The remembered 402 and choice; None when absent, unreadable or unreachable."""
        near = await self._near.get(key)
        if near is not None:
            return near
        now = time.monotonic()
        if self._missed.get(key, 0.0) > now:
            return None
        value = await self._guard.run(lambda: self._link.client.get(self._key(key)), None)
        found = _decode(value) if value is not None else None
        if found is not None:
            await self._near.put(key, *found)
        else:
            if len(self._missed) >= MAX_MISSES:
                self._missed.clear()
            self._missed[key] = now + self._miss_seconds
        return found

    async def put(self, key: Key, required: PaymentRequired, chosen: Requirement) -> None:
        """Remember the 402 for every process (skipped while Redis cannot be reached)."""
        value = _encode(required, chosen)
        self._missed.pop(key, None)
        await self._near.put(key, required, chosen)
        await self._guard.run(
            lambda: self._link.client.set(self._key(key), value, px=self._ttl_ms), None)

    async def drop(self, key: Key) -> None:
        """Forget ``key`` here and in Redis (other processes' copies age out)."""
        await self._near.drop(key)
        await self._guard.run(lambda: self._link.client.delete(self._key(key)), None)


def _encode(required: PaymentRequired, chosen: Requirement) -> bytes:
    return orjson.dumps({
        "version": required.version,
        "accepts": [dict(entry.raw) for entry in required.accepts],
        "chosen": required.accepts.index(chosen),
        "malformed": list(required.malformed),
        "resource": required.resource,
        "extensions": required.extensions,
        "error": required.error,
    })


def _decode(value: bytes) -> tuple[PaymentRequired, Requirement] | None:
    """The stored 402 and choice, or None for anything that does not parse back."""
    try:
        data = orjson.loads(value)
        version, chosen = data["version"], data["chosen"]
        accepts = tuple(parse_requirement(entry, version) for entry in data["accepts"])
        required = PaymentRequired(
            version=version, accepts=accepts, malformed=tuple(data["malformed"]),
            resource=data["resource"], extensions=data["extensions"], error=data["error"])
        return required, accepts[chosen]
    except (orjson.JSONDecodeError, WireError, KeyError, TypeError, IndexError):
        return None
