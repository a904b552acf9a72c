"""In-flight coalescing: identical concurrent requests share one upstream call (and one payment).

The first caller for a key starts ``factory()`` as a task; later callers with the same key
await that task. The task is shielded, so a caller that goes away (client disconnect) does not
cancel the work the others are waiting for; only when every caller has gone is it cancelled.
The entry is removed as soon as the task finishes, fails or is cancelled, so nobody can wait
on a request that will never complete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from ..errors import UpstreamError

T = TypeVar("T")


class _Entry(Generic[T]):
    __slots__ = ("task", "callers")

    def __init__(self, task: asyncio.Task[T]):
        self.task = task
        self.callers = 0


class InFlight:
    """Coalesces concurrent calls that share a key."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry[Any]] = {}

    async def run(self, key: str, factory: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``(result, shared)``: shared is False for the caller that ran ``factory``.

        If the factory raises, every caller gets that exception. If the shared task is
        cancelled while a caller still waits (not by that caller's own cancellation), the
        caller gets a 503 :class:`UpstreamError` asking to retry.
        """
        entry = self._entries.get(key)
        shared = entry is not None
        if entry is None:
            entry = _Entry(asyncio.ensure_future(factory()))
            self._entries[key] = entry
            entry.task.add_done_callback(lambda task: self._forget(key, task))
        entry.callers += 1
        try:
            result = await asyncio.shield(entry.task)
        except asyncio.CancelledError:
            if entry.task.cancelled() and not _being_cancelled():
                raise UpstreamError(
                    "The original identical request was cancelled; please retry",
                    code="dedup_origin_failed",
                    status=503,
                ) from None
            raise
        finally:
            entry.callers -= 1
            if entry.callers == 0 and not entry.task.done():
                # Every caller went away: nobody wants the result any more.
                self._forget(key, entry.task)
                entry.task.cancel()
        return result, shared

    def _forget(self, key: str, task: asyncio.Task[Any]) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry.task is task:
            del self._entries[key]

    def in_flight(self) -> int:
        """How many distinct keys are being worked on right now."""
        return len(self._entries)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
