"""In-flight coalescing: identical concurrent requests share one upstream call (and one payment).

The first caller for a key (the leader) runs ``factory()`` itself, in its own task: no extra
task or event-loop round trip on the common path, where nobody else asks the same thing.
Callers that arrive while it runs (followers) wait for its result. If the leader fails, every
follower gets the same error. If the leader is cancelled (its caller went away, or the work
was cancelled from elsewhere), the followers are not stranded: one of them becomes the new
leader and does the work for its own request, the others follow it. The entry is removed as
soon as the leader finishes, fails or is cancelled, so nobody can wait on a request that will
never complete.

This is the local implementation; :class:`~.redis_dedup.SharedInFlight` adds sharing with
the other processes of a team on top of it. Both take the same arguments: ``share`` says
how a result crosses to another process (None: it never does, e.g. a request that bypasses
the cache).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Protocol, TypeVar

T = TypeVar("T")

# Called with a payment's validBefore (Unix time) just before the x402 client signs it, in the
# task that pays; raising stops the signature. Set by the leader of a group shared across
# processes (see redis_dedup), which must announce a payment before it can exist.
before_signing: ContextVar[Callable[[int], Awaitable[None]] | None] = ContextVar(
    "clawrouter_before_signing", default=None)


class Shareable(Protocol[T]):
    """How a result is handed to identical requests waiting in other processes."""

    def encode(self, result: T) -> bytes: ...

    def decode(self, data: bytes) -> T: ...


class _Entry:
    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future | None = None  # created when the first follower arrives


class InFlight:
    """Coalesces concurrent calls that share a key."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    async def run(self, key: str, factory: Callable[[], Awaitable[T]],
                  share: Shareable[T] | None = None) -> tuple[T, bool]:
        """``(result, shared)``: shared is False for the caller whose ``factory`` ran.
        ``share`` is for the shared implementation; here nothing leaves the process."""
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

    def busy(self, key: str) -> bool:
        """Whether a call for ``key`` is being worked on in this process."""
        return key in self._entries

    def in_flight(self) -> int:
        """How many distinct keys are being worked on right now."""
        return len(self._entries)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


__all__ = ["InFlight", "Shareable", "before_signing"]
