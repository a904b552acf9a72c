"""Pre-authorisation: remember the last 402 per (path, price key) to pre-sign next time.

A cached entry only saves the unpaid round trip; every use still signs a fresh payment
(new nonce, new window) that the policy checks again. A 402 answer drops the entry.
:class:`PreAuthStore` is the interface; :class:`PreAuthCache` keeps entries in this process
(the local backend), :class:`~.redis_preauth.RedisPreAuth` in Redis for a whole team.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from .wire import PaymentRequired, Requirement

Key = tuple[str, str | None]


class PreAuthStore(Protocol):
    """(path, price_key) -> the last 402's requirements and the entry chosen from them."""

    async def get(self, key: Key) -> tuple[PaymentRequired, Requirement] | None:
        """The remembered 402 and choice, or None."""

    async def put(self, key: Key, required: PaymentRequired, chosen: Requirement) -> None:
        """Remember a 402 that was paid with ``chosen``."""

    async def drop(self, key: Key) -> None:
        """Forget ``key`` (its price changed)."""


class PreAuthCache:
    """Bounded, time-limited map (path, price_key) -> (402 requirements, chosen entry), in
    this process (async for :class:`PreAuthStore`; it answers at once)."""

    def __init__(self, ttl_seconds: float = 3600, max_entries: int = 512):
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[Key, tuple[float, PaymentRequired, Requirement]] = \
            OrderedDict()

    async def get(self, key: Key) -> tuple[PaymentRequired, Requirement] | None:
        """See :meth:`PreAuthStore.get`."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1], entry[2]

    async def put(self, key: Key, required: PaymentRequired, chosen: Requirement) -> None:
        """See :meth:`PreAuthStore.put`; beyond ``max_entries`` the least recently used go."""
        self._entries[key] = (time.monotonic() + self.ttl_seconds, required, chosen)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def drop(self, key: Key) -> None:
        """See :meth:`PreAuthStore.drop`."""
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
