"""Connection limits aiohttp does not enforce itself: a cap on open connections and deadlines
for a client that is slow to send its request.

:class:`ConnectionGuard` wraps aiohttp's protocol factory. Each connection is in one phase:

- ``IDLE``: waiting for a request (new, or after the last response): ``idle_seconds``;
- ``HEAD``: part of a request head arrived: the rest within ``header_seconds``;
- ``BODY``: the head is in, the body is not: the rest within ``body_seconds``;
- ``BUSY``: the proxy is answering (a stream may take minutes): no deadline.

A connection past its deadline is closed. The app tells the guard when a request reaches it
(:func:`request_started`); the guard sees the bytes arrive and the answer finish. Per request
that costs a few attribute updates: one timer per connection wakes at most every
``min(timeouts)`` seconds while the proxy waits for the client, and it is never cancelled.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

log = logging.getLogger("clawrouter.server")
IDLE, HEAD, BODY, BUSY = range(4)


@dataclass(frozen=True)
class ConnectionLimits:
    """How many connections may be open and how long a client may take to send a request."""

    max_connections: int
    idle_seconds: float
    header_seconds: float
    body_seconds: float


def _refusal() -> bytes:
    body = json.dumps({"error": {"message": "too many open connections to clawrouter; "
                                            "try again shortly",
                                 "type": "server_busy", "code": "too_many_connections"}})
    return (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body.encode()))


_REFUSAL = _refusal()


class ConnectionGuard:
    """A protocol factory for ``loop.create_server``: aiohttp's, with limits around it."""

    def __init__(self, factory: Callable[[], asyncio.Protocol], limits: ConnectionLimits):
        self.factory = factory
        self.limits = limits
        self.step = min(limits.idle_seconds, limits.header_seconds, limits.body_seconds)
        self.open = 0  # connections being served (refused ones are not counted)
        self.refused = 0

    def __call__(self) -> GuardedConnection:
        return GuardedConnection(self)


class GuardedConnection(asyncio.Protocol):
    """One connection: aiohttp's protocol inside, the deadlines of its phase around it."""

    __slots__ = ("_guard", "_inner", "_loop", "_transport", "_phase", "_deadline", "_timer",
                 "_payload")

    def __init__(self, guard: ConnectionGuard):
        self._guard = guard
        self._inner: Any = None  # aiohttp's RequestHandler, made once the connection is taken
        self._loop = asyncio.get_running_loop()
        self._transport: Any = None
        self._phase = IDLE
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._payload: Any = None  # the request body's stream while in BODY

    def connection_made(self, transport: Any) -> None:  # uvloop's is no asyncio.Transport
        guard = self._guard
        if guard.open >= guard.limits.max_connections:
            guard.refused += 1
            if guard.refused == 1 or guard.refused % 1000 == 0:
                log.warning("%d open connections (server.maxConnections): refusing new ones "
                            "(%d so far)", guard.open, guard.refused)
            transport.write(_REFUSAL)
            transport.close()
            return
        guard.open += 1
        self._transport = transport
        self._inner = guard.factory()
        self._inner.connection_made(transport)
        self._expect(IDLE, guard.limits.idle_seconds)

    def data_received(self, data: bytes) -> None:
        inner = self._inner
        if inner is None:
            return  # refused: nobody reads it
        inner.data_received(data)
        phase = self._phase
        if phase == IDLE:
            self._expect(HEAD, self._guard.limits.header_seconds)
        elif phase == BODY and self._payload.is_eof():
            self._phase, self._payload = BUSY, None

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is None:
            return
        self._guard.open -= 1
        self._transport = self._payload = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        inner, self._inner = self._inner, None
        inner.connection_lost(exc)

    def started(self, payload: Any) -> None:
        """A request reached the app: wait for its body, then for nothing until it is done."""
        if payload.is_eof():
            self._phase = BUSY
        else:
            self._payload = payload
            self._expect(BODY, self._guard.limits.body_seconds)

    def finished(self, _task: object = None) -> None:
        """The answer has been written: wait for the next request."""
        if self._transport is not None:
            self._payload = None
            self._expect(IDLE, self._guard.limits.idle_seconds)

    def _expect(self, phase: int, seconds: float) -> None:
        self._phase = phase
        now = self._loop.time()
        self._deadline = now + seconds
        if self._timer is None:  # a pending timer fires within `step`, before this deadline
            self._timer = self._loop.call_at(now + self._guard.step, self._expire)

    def _expire(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None or self._phase == BUSY:
            return  # finished() arms a timer again
        now = self._loop.time()
        if now < self._deadline or (self._phase == IDLE and transport.get_write_buffer_size()):
            if now >= self._deadline:  # the last answer is still leaving: not idle yet
                self._deadline = now + self._guard.limits.idle_seconds
            self._timer = self._loop.call_at(min(self._deadline, now + self._guard.step),
                                             self._expire)
            return
        log.debug("closing a connection that was %s for too long",
                  ("idle", "sending its request head", "sending its request body")[self._phase])
        transport.close()


def request_started(request: web.BaseRequest) -> None:
    """Tell the connection's guard (if it has one) that ``request`` reached the app."""
    transport = request.transport
    if transport is None:
        return
    connection = transport.get_protocol()
    if type(connection) is GuardedConnection:
        connection.started(request.content)
        task = asyncio.current_task()  # aiohttp's task for this request, answer included
        assert task is not None
        task.add_done_callback(connection.finished)
