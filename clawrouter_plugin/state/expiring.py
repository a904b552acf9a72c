"""A bounded map whose entries expire after a period without use (shared by sessions and spend)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class ExpiringMap(Generic[V]):
    """Entries idle for longer than ``ttl`` are gone; beyond ``max_entries`` the least recently
    used go first. Entries for which ``keep(value)`` is true never expire or get pruned.
    Callers pass the current time, so one clock serves the whole owner."""

    def __init__(self, ttl: float, max_entries: int, keep: Callable[[V], bool] | None = None):
        if ttl <= 0 or max_entries < 1:
            raise ValueError("ttl and max_entries must be positive")
        self._ttl = ttl
        self._max = max_entries
        self._keep = keep
        self._data: OrderedDict[str, tuple[float, V]] = OrderedDict()  # least recently used first

    def _kept(self, value: V) -> bool:
        return self._keep is not None and self._keep(value)

    def get(self, key: str, now: float, *, refresh: bool = False) -> V | None:
        """The live value for ``key`` (an expired one is dropped); ``refresh`` marks it used."""
        item = self._data.get(key)
        if item is None:
            return None
        used, value = item
        if now - used > self._ttl and not self._kept(value):
            del self._data[key]
            return None
        if refresh:
            self._data[key] = (now, value)
            self._data.move_to_end(key)
        return value

    def set(self, key: str, value: V, now: float) -> None:
        """Insert or replace ``key`` and mark it used; prunes expired and excess entries."""
        if key not in self._data:
            self._prune(now, room=1)
        self._data[key] = (now, value)
        self._data.move_to_end(key)

    def pop(self, key: str) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def live(self, now: float) -> int:
        """Number of entries still alive at ``now``."""
        self._prune(now, room=0)
        return len(self._data)

    def _prune(self, now: float, room: int) -> None:
        doomed = []
        for key, (used, value) in self._data.items():  # oldest use first
            if now - used <= self._ttl:
                break
            if not self._kept(value):
                doomed.append(key)
        for key in doomed:
            del self._data[key]
        excess = len(self._data) + room - self._max
        if excess > 0:
            victims = []
            for key, (_, value) in self._data.items():
                if not self._kept(value):
                    victims.append(key)
                    if len(victims) == excess:
                        break
            for key in victims:
                del self._data[key]
