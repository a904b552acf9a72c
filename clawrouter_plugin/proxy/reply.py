"""What the pipeline hands back: a finished completion, or a live stream of chunks.

Both doors read it the way they need: the HTTP proxy as JSON or SSE bytes (with heartbeats
while waiting), the in-process provider hook as JSON or plain text deltas.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, AsyncIterator

import orjson

from ..errors import ClawRouterError, ShuttingDown, UpstreamError
from .chat_format import (
    DONE,
    HEARTBEAT,
    CompletionAssembler,
    completion_to_chunks,
    sse_event,
)

HEARTBEAT_SECONDS = 2.0
log = logging.getLogger("clawrouter.reply")


class ChunkChannel(deque):
    """Chunks handed from the task producing a reply to the one reading it: a deque that the
    reader checks and pops directly, plus one waiter.

    Lighter than :class:`asyncio.Queue` plus :func:`asyncio.wait` for every chunk: the
    reader waits on one future that a new chunk, the producer's end or a timer resolves.
    """

    __slots__ = ("_waiter",)

    def __init__(self) -> None:
        super().__init__()
        self._waiter: asyncio.Future | None = None

    def put_nowait(self, item: Any) -> None:
        """Hand over one chunk (never blocks)."""
        self.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def drain(self) -> list:
        """Every chunk waiting, in order (the channel is empty afterwards)."""
        items = list(self)
        self.clear()
        return items

    def wake(self, *_: object) -> None:
        """End the reader's current :meth:`wait` (also the producer task's done callback)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: float | None) -> None:
        """Until a chunk arrives, :meth:`wake` is called or ``timeout`` seconds pass."""
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        timer = loop.call_later(timeout, self.wake) if timeout is not None else None
        try:
            await self._waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()


class Reply:
    """A chat reply. Streaming replies are fed by a background task through a queue.

    The task's result is ``(outcome, shared)``: when ``shared`` is true the reply was
    produced for an identical concurrent request, and its completion is replayed here.
    """

    def __init__(
        self,
        *,
        headers: dict[str, str],
        decision: Any = None,
        completion: dict | None = None,
        encoded: bytes | None = None,
        channel: ChunkChannel | None = None,
        task: asyncio.Task | None = None,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.status = 200
        self.headers = headers
        self.decision = decision
        self._completion = completion
        self._encoded = encoded  # ``completion`` as JSON bytes, when already at hand
        self._channel = channel
        self._task = task
        if task is not None and channel is not None:
            task.add_done_callback(channel.wake)
            task.add_done_callback(_seen)
        self._heartbeat = heartbeat
        self._peeked: dict | None = None
        self._still_waiting = False

    @property
    def streaming(self) -> bool:
        return self._task is not None

    async def _batches(self, heartbeats: bool) -> AsyncIterator[list[dict] | None]:
        """Chunks in order, in batches of whatever has arrived (so that a burst goes out in
        one write); ``None`` marks a heartbeat. Raises the producer's error."""
        first = [] if self._peeked is None else [self._peeked]
        self._peeked = None
        if self._task is None:
            chunks = first + completion_to_chunks(self._completion or {})
            if chunks:
                yield chunks
            return
        channel, task = self._channel, self._task
        assert channel is not None
        if first:
            yield first + channel.drain()
        while True:
            if channel:
                yield channel.drain()
                continue
            if task.done():
                replay = self._replay(task)
                if replay:
                    yield replay
                return
            await channel.wait(self._heartbeat if heartbeats else None)
            if not channel and not task.done():
                yield None

    async def _chunks(self) -> AsyncIterator[dict]:
        """Chunks in order, one at a time, no heartbeats."""
        async for batch in self._batches(heartbeats=False):
            for chunk in batch or ():
                yield chunk

    @staticmethod
    def _outcome(task: asyncio.Task) -> tuple[Any, bool]:
        """The finished producer's result; raises its error (:class:`ShuttingDown` when it was
        cancelled: only a shutdown cancels it)."""
        if task.cancelled():
            raise ShuttingDown()
        return task.result()

    @staticmethod
    def _replay(task: asyncio.Task) -> list[dict]:
        outcome, shared = Reply._outcome(task)
        if shared and outcome is not None:
            return completion_to_chunks(outcome.completion)
        return []

    async def first(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the first chunk; raise if the request failed before it.

        Lets the HTTP layer answer early failures with a proper status instead of an SSE
        error event.
        """
        channel, task = self._channel, self._task
        if task is None or self._peeked is not None:
            return
        assert channel is not None
        if not channel and not task.done():
            await channel.wait(timeout)
        if channel:
            self._peeked = channel.popleft()
            return
        if task.done():
            self._outcome(task)  # raises the producer's error, if it failed
        self._still_waiting = not task.done()

    async def json(self) -> dict:
        """The whole ``chat.completion``."""
        if self._task is None:
            return self._completion or {}
        assembler = CompletionAssembler()
        async for chunk in self._chunks():
            assembler.add(chunk)
        return assembler.completion()

    async def json_bytes(self) -> bytes:
        """:meth:`json` encoded (a cached reply's stored bytes as they are)."""
        if self._encoded is not None:
            return self._encoded
        return orjson.dumps(await self.json())

    async def sse(self) -> AsyncIterator[bytes]:
        """Server-sent-event bytes: chunks (those that arrived together in one piece),
        ``: heartbeat`` comments while waiting, and last :data:`DONE` on its own.

        A failure after the stream started becomes an error event before ``[DONE]``.
        """
        if self._still_waiting:
            yield HEARTBEAT  # tell the client at once that work is under way
        try:
            async for batch in self._batches(heartbeats=True):
                yield HEARTBEAT if batch is None else b"".join(map(sse_event, batch))
        except ClawRouterError as exc:
            yield sse_event(exc.to_dict())
        except Exception:  # noqa: BLE001 - the stream must always end cleanly
            yield sse_event(UpstreamError("the reply stream failed").to_dict())
        yield DONE

    async def text_deltas(self) -> AsyncIterator[str]:
        """The assistant text as it arrives (first choice)."""
        assembler = CompletionAssembler()
        async for chunk in self._chunks():
            text = assembler.add(chunk)
            if text:
                yield text


def _seen(task: asyncio.Task) -> None:
    """A producer is done: mark its error as retrieved, since its reader may be gone (the
    client disconnected) and must not leave "Task exception was never retrieved" behind.
    Unexpected errors are logged here (readers only get a generic error event)."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None and not isinstance(error, ClawRouterError):
        log.error("a chat reply failed", exc_info=error)
