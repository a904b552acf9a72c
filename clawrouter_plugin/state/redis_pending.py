"""Writes to Redis that a process sends without waiting for them (the closing script of a
request, see :mod:`.redis_request_state`), and the rule that keeps them safe: a later
command of this process about the same session or cache key waits until they are done.

So within a process every request, ``/model`` change or pin lookup sees what an earlier
answer wrote, exactly as if the write had been awaited; the answer itself just does not wait
for Redis. Closing the link waits for whatever is still in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable


class PendingWrites:
    """Background writes by the names (``"s:<sid>"``, ``"c:<cache key>"``) they touch."""

    def __init__(self) -> None:
        self._by_name: dict[str, asyncio.Future] = {}
        self._writes: set[asyncio.Future] = set()

    def __bool__(self) -> bool:
        """Whether any write is still in flight."""
        return bool(self._writes)

    def start(self, write: Awaitable[None], names: tuple[str, ...]) -> None:
        """Run ``write`` in the background (a future, such as a reply on its way, is
        tracked as it is; anything else gets a task); later :meth:`settled` calls for
        ``names`` wait for it. The caller handles its errors."""
        future = asyncio.ensure_future(write)
        self._writes.add(future)
        for name in names:
            self._by_name[name] = future
        future.add_done_callback(lambda done: self._forget(done, names))

    def _forget(self, future: asyncio.Future, names: tuple[str, ...]) -> None:
        self._writes.discard(future)
        for name in names:
            if self._by_name.get(name) is future:
                del self._by_name[name]

    async def settled(self, *names: str) -> None:
        """Wait until the background writes touching any of ``names`` are done."""
        if not self._by_name:
            return
        writes = {write for name in names if (write := self._by_name.get(name)) is not None}
        if writes:
            await asyncio.wait(writes)

    async def drain(self) -> None:
        """Wait until every background write is done."""
        while self._writes:
            await asyncio.wait(set(self._writes))


def session_name(sid: str) -> str:
    """The name of writes to session ``sid``'s pin."""
    return "s:" + sid


def cache_name(key: str) -> str:
    """The name of writes to the cache entry and dedup group of ``key``."""
    return "c:" + key
