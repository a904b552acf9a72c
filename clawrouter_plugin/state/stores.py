"""The interfaces of the state a proxy process may share with others: one small async
interface per kind, each with a local implementation (this process and its data directory)
and a Redis one (every process of a team). :func:`clawrouter_plugin.services.build_services`
picks one of each from ``state.backend``; the pipeline and the commands only see these.

Methods are async because the Redis implementations talk to a server; the local ones answer
at once. A Redis store never fails a request because the server is unreachable: the cache
misses, pins are absent, exclusions stay as last seen (see :mod:`.redis_guard`). Changes a
user asked for (``/model``, ``/exclude``) raise :class:`~clawrouter_plugin.errors.StateUnavailable`
instead of being silently dropped.
"""

from __future__ import annotations

from typing import Protocol

from .cache import CachedResponse
from .sessions import Pin


class CacheStore(Protocol):
    """Responses by :func:`~clawrouter_plugin.state.cache_key.cache_key`."""

    async def get(self, key: str) -> CachedResponse | None:
        """The stored response, or None (a miss)."""

    async def put(self, key: str, response: CachedResponse, ttl: float | None = None) -> bool:
        """Store a 2xx response for ``ttl`` seconds (the configured default when None); False
        when it is not stored (disabled, too big, not 2xx, server unreachable)."""

    async def stats(self) -> dict:
        """``GET /cache``: ``size``, ``maxSize``, ``hits``, ``misses``, ``evictions``,
        ``hitRate`` (lookups counted per process)."""

    async def clear(self) -> None:
        """Remove every entry and reset the counters."""

    async def aclose(self) -> None:
        """Save what must be saved and let go of files (not of a shared Redis link)."""


class SessionPins(Protocol):
    """Per-conversation pins and chat-host model preferences, expiring after an idle ttl."""

    async def get(self, sid: str) -> Pin | None:
        """The session's pin (a copy), or None."""

    async def pin(self, sid: str, model: str, tier: str, table: str) -> Pin:
        """Pin ``sid`` (create or overwrite, counting the request)."""

    async def touch(self, sid: str) -> None:
        """One more request served under the existing pin (no-op without one)."""

    async def set_model(self, sid: str, model: str) -> None:
        """The model that actually answered (after a fallback); no-op without a pin."""

    async def set_preference(self, sid: str, model: str) -> None:
        """The model a chat host's user chose for this session (``/model``)."""

    async def preference(self, sid: str) -> str | None:
        """The session's preferred model; looking it up keeps it alive."""

    async def clear(self, sid: str | None = None) -> None:
        """Forget one session (pin and preference), or all of them."""


class ModelExclusions(Protocol):
    """Models the router never picks: the config's ``excludeModels`` plus a list users edit."""

    warnings: list[str]  # problems with the stored list, shown by /health

    async def all(self) -> frozenset[str]:
        """Every excluded catalog id (read on every routed request)."""

    async def add(self, name: str) -> str:
        """Exclude ``name`` (aliases resolved); the catalog id. Unknown: BadRequest."""

    async def remove(self, name: str) -> str:
        """Stop excluding ``name``; what was removed. Not excluded: BadRequest."""

    async def clear(self) -> None:
        """Empty the edited list (config exclusions stay)."""
