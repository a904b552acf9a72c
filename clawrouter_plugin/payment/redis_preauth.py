"""The redis backend's pre-authorisation cache: a 402 learnt by one process lets every
process of the team pre-sign the next request at that price.

One Redis string per (path, price key): the 402's requirements as JSON (the entries as the
upstream sent them, re-checked by the parser on the way back) and which one was chosen; it
expires after ``ttl_seconds``. Every use still signs a fresh payment that the policy checks
again, exactly as with the local cache. While Redis cannot be reached every lookup is a miss
(the request negotiates its price with one more round trip) and nothing is stored.
"""

from __future__ import annotations

import orjson

from ..state.redis_conn import RedisLink
from ..state.redis_guard import RedisGuard
from .preauth import Key
from .wire import PaymentRequired, Requirement, WireError, parse_requirement


class RedisPreAuth:
    """A :class:`~.preauth.PreAuthStore` in Redis (see the module doc)."""

    def __init__(self, link: RedisLink, ttl_seconds: float = 3600):
        self._link = link
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._guard = RedisGuard(link, "pre-authorisation",
                                 "each paid request negotiates its price first")

    def _key(self, key: Key) -> str:
        return self._link.key("preauth", orjson.dumps(key).decode())

    async def get(self, key: Key) -> tuple[PaymentRequired, Requirement] | None:
        """The remembered 402 and choice; None when absent, unreadable or unreachable."""
        value = await self._guard.run(lambda: self._link.client.get(self._key(key)), None)
        return _decode(value) if value is not None else None

    async def put(self, key: Key, required: PaymentRequired, chosen: Requirement) -> None:
        """Remember the 402 for every process (skipped while Redis cannot be reached)."""
        value = _encode(required, chosen)
        await self._guard.run(
            lambda: self._link.client.set(self._key(key), value, px=self._ttl_ms), None)

    async def drop(self, key: Key) -> None:
        """Forget ``key`` everywhere."""
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
