"""In-flight coalescing: identical concurrent requests share one upstream call (and one payment).

The first caller for a key (the leader) runs ``factory()`` itself, in its own task: no extra
task or event-loop round trip on the common path, where nobody else asks the same thing.
Callers that arrive while it runs (followers) wait for its result. If the leader fails, every
follower gets the same error. If the leader is cancelled (its caller went away, or the work
was cancelled from elsewhere), the followers are not stranded: one of them becomes the new
leader and does the work for its own request, the others follow it. The entry is removed as
soon as the leader finishes, fails or is cancelled, so nobody can wait on a request that will
never complete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class _Entry:
    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future | None = None  # created when the first follower arrives


class InFlight:
    """Coalesces concurrent calls that share a key."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    async def run(self, key: str, factory: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``(result, shared)``: shared is False for the caller whose ``factory`` ran."""
        while (entry := self._entries.get(key)) is not None:
            if entry.future is None:
                entry.future = asyncio.get_running_loop().create_future()
            try:
                return await asyncio.shield(entry.future), True
            except asyncio.CancelledError:
                if entry.future.cancelled() and not _being_cancelled():
                    continue  # the leader went away: lead (or follow the new leader)
                raise
        entry = _Entry()
        self._entries[key] = entry
        try:
            result = await factory()
        except BaseException as exc:
            self._forget(key, entry)
            if entry.future is not None:
                if isinstance(exc, asyncio.CancelledError):
                    entry.future.cancel()
                else:
                    entry.future.set_exception(exc)
            raise
        self._forget(key, entry)
        if entry.future is not None:
            entry.future.set_result(result)
        return result, False

    def _forget(self, key: str, entry: _Entry) -> None:
        if self._entries.get(key) is entry:
            del self._entries[key]

    def in_flight(self) -> int:
        """How many distinct keys are being worked on right now."""
        return len(self._entries)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


__all__ = ["InFlight"]
