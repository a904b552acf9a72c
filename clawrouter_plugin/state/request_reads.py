"""What the pipeline reads from shared state before it routes a request, in one call: the
cached answer, the session's pin and the excluded models.

With the local backend the three are plain lookups and run one after the other (a cache hit
skips the other two). With Redis each is a round trip, so they are sent at once and overlap:
one round trip of waiting instead of three. :func:`~.backends.open_stores` picks the kind.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from .cache import CachedResponse
from .sessions import Pin
from .stores import CacheStore, ModelExclusions, SessionPins


class StateReads(NamedTuple):
    """The shared state one request needs before routing."""

    hit: CachedResponse | None  # the cached answer, if any (then nothing else is needed)
    pin: Pin | None
    excluded: frozenset[str]


class SequentialReads:
    """Reads one store after the other (stores that answer at once)."""

    def __init__(self, cache: CacheStore, sessions: SessionPins, exclusions: ModelExclusions):
        self.cache, self.sessions, self.exclusions = cache, sessions, exclusions

    async def __call__(self, cache_key: str | None, sid: str | None) -> StateReads:
        """The cached answer for ``cache_key`` (None: not cacheable), ``sid``'s pin (None: no
        pin wanted) and the exclusions."""
        if cache_key is not None:
            hit = await self.cache.get(cache_key)
            if hit is not None:
                return StateReads(hit, None, frozenset())
        pin = await self.sessions.get(sid) if sid is not None else None
        return StateReads(None, pin, await self.exclusions.all())


class ConcurrentReads(SequentialReads):
    """Sends the three reads at once (stores behind a network round trip)."""

    async def __call__(self, cache_key: str | None, sid: str | None) -> StateReads:
        """See :meth:`SequentialReads.__call__`."""
        hit, pin, excluded = await asyncio.gather(
            self.cache.get(cache_key) if cache_key is not None else _none(),
            self.sessions.get(sid) if sid is not None else _none(),
            self.exclusions.all())
        return StateReads(hit, None, frozenset()) if hit is not None \
            else StateReads(None, pin, excluded)


async def _none() -> None:
    return None
