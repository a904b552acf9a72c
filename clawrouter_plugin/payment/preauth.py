"""Pre-authorisation: remember the last 402 per (path, price key) to pre-sign next time.

A cached entry only saves the unpaid round trip; every use still signs a fresh payment
(new nonce, new window) that the policy checks again. A 402 answer drops the entry.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from .wire import PaymentRequired, Requirement

Key = tuple[str, str | None]


class PreAuthCache:
    """Bounded, time-limited map (path, price_key) -> (402 requirements, chosen entry)."""

    def __init__(self, ttl_seconds: float = 3600, max_entries: int = 512):
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[Key, tuple[float, PaymentRequired, Requirement]] = \
            OrderedDict()

    def get(self, key: Key) -> tuple[PaymentRequired, Requirement] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1], entry[2]

    def put(self, key: Key, required: PaymentRequired, chosen: Requirement) -> None:
        self._entries[key] = (time.monotonic() + self.ttl_seconds, required, chosen)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def drop(self, key: Key) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
