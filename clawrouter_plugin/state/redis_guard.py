"""How the Redis stores behave while the server cannot be reached.

A store runs each Redis call through its :class:`RedisGuard`. A failure marks the process's
:class:`~.redis_conn.RedisLink` down (``/health`` shows it), is logged once per outage and
per store (not once per request), and the call answers its fallback: a cache miss, no pin,
the exclusions last seen, no pre-authorisation. While the link is down, one call per
:data:`RETRY_SECONDS` asks the server again and the others answer the fallback at once, so an
unreachable (even silent) Redis costs requests next to nothing; the client reconnects by
itself once the server is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..errors import StateUnavailable
from .redis_conn import REDIS_ERRORS, RedisLink

log = logging.getLogger("clawrouter.redis")
RETRY_SECONDS = 1.0  # after a failure, how long calls skip the server while it is down

T = TypeVar("T")


class RedisGuard:
    """Runs one store's Redis calls. ``what`` names the store in logs and errors,
    ``meanwhile`` says in the log what happens while the server is down."""

    def __init__(self, link: RedisLink, what: str, meanwhile: str):
        self.link = link
        self.what = what
        self.meanwhile = meanwhile
        self._retry_at = float("-inf")
        self._down = False  # this store has logged the current outage

    def ready(self) -> bool:
        """Whether a call should ask the server now: always while it is reachable, once
        per :data:`RETRY_SECONDS` while it is down (False: answer the fallback at once)."""
        if self.link.healthy:
            return True
        now = time.monotonic()
        if now < self._retry_at:
            return False
        self._retry_at = now + RETRY_SECONDS  # this call asks; the others wait for none
        return True

    async def run(self, call: Callable[[], Awaitable[T]], fallback: T) -> T:
        """``await call()``, or ``fallback`` when Redis cannot be reached."""
        if not self.ready():
            return fallback
        try:
            result = await call()
        except REDIS_ERRORS as exc:
            self._failed(exc)
            return fallback
        self._succeeded()
        return result

    async def read(self, reply: Awaitable[T], fallback: T) -> T:
        """``await reply``, the reply to a command already written, or ``fallback`` when
        Redis cannot be reached. Never skipped while the server is down, unlike :meth:`run`:
        reading is what gives the command's connection back to the pool."""
        try:
            result = await reply
        except REDIS_ERRORS as exc:
            self._failed(exc)
            return fallback
        self._succeeded()
        return result

    def settled(self, reply: asyncio.Future, fallback: T) -> T:
        """Like :meth:`read` for a reply that has arrived (``reply`` is done), from a
        callback: its result, or ``fallback`` when Redis could not be reached (or the call
        was cancelled)."""
        if reply.cancelled():
            return fallback
        error = reply.exception()
        if error is None:
            self._succeeded()
            return reply.result()
        if isinstance(error, REDIS_ERRORS):
            self._failed(error)
            return fallback
        raise error

    async def must(self, call: Callable[[], Awaitable[T]]) -> T:
        """``await call()`` for a change the user asked for: StateUnavailable when Redis
        cannot be reached (the change is not made, and the user is told)."""
        try:
            result = await call()
        except REDIS_ERRORS as exc:
            self._failed(exc)
            raise StateUnavailable(
                f"the shared state server (Redis) cannot be reached, so the {self.what} "
                "cannot be changed right now; try again in a moment") from None
        self._succeeded()
        return result

    def _failed(self, exc: BaseException) -> None:
        self.link.mark_down(exc)
        self._retry_at = time.monotonic() + RETRY_SECONDS
        if not self._down:
            self._down = True
            log.warning("Redis at %s unreachable (%s): %s", self.link.url, self.link.last_error,
                        self.meanwhile)

    def _succeeded(self) -> None:
        self.link.mark_up()
        if self._down:
            self._down = False
            log.info("Redis at %s reachable again: %s back to normal", self.link.url, self.what)

