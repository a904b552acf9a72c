"""The one Redis connection of a proxy process in team mode (``state.backend: redis``).

Every Redis-backed store takes a :class:`RedisLink`: the asyncio client (a connection pool),
the connection that carries each request's scripts (:mod:`.redis_wire`), the key prefix, and
what the process last learnt about the server's health, for ``/health``.
Nothing here ever prints the URL with its password: use :func:`redacted_url`.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from ..config import StateConfig
from .redis_pending import PendingWrites
from .redis_wire import ScriptWire

REDIS_ERRORS: tuple[type[BaseException], ...] = (aioredis.RedisError, OSError)

_PROCESS = secrets.token_hex(8)  # drawn once per process (workers are fresh interpreters)
_SERIAL = itertools.count()


def unique_id() -> str:
    """An id no other call, in this process or any other, returns: this process's random
    part and a counter (for a lock's holder or a budget hold; nobody gains by guessing one,
    so reading the system's randomness each time, a system call, buys nothing)."""
    return f"{_PROCESS}{next(_SERIAL):x}"


def redacted_url(url: str) -> str:
    """``url`` with any user name and password replaced by ``***`` (safe for logs and errors)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


@dataclass
class RedisLink:
    """A process's Redis client, its key prefix and the last known state of the server."""

    client: aioredis.Redis
    wire: ScriptWire  # each request's two scripts, see redis_request_state.py
    prefix: str
    url: str  # redacted: safe to show
    secret: str | None = field(default=None, repr=False)  # the URL's password, scrubbed from errors
    healthy: bool = True
    last_error: str | None = None
    changed_at: float = field(default_factory=time.time)
    # writes sent without waiting (a request's closing script), see redis_pending.py
    pending: PendingWrites = field(default_factory=PendingWrites, repr=False)

    def key(self, *parts: str) -> str:
        """A key in this proxy's namespace, e.g. ``key("pin", sid)`` → ``clawrouter:pin:<sid>``."""
        return ":".join((self.prefix, *parts))

    def mark_down(self, error: BaseException) -> None:
        """Note that a command failed because the server could not be reached."""
        text = str(error)
        if self.secret:
            text = text.replace(self.secret, "***")
        message = f"{type(error).__name__}: {text}"
        if self.healthy or self.last_error != message:
            self.changed_at = time.time()
        self.healthy, self.last_error = False, message

    def mark_up(self) -> None:
        """Note that a command succeeded."""
        if not self.healthy:
            self.healthy, self.changed_at = True, time.time()

    async def ping(self) -> bool:
        """Ask the server for a PONG; updates and returns the health flag."""
        try:
            await self.client.ping()
        except REDIS_ERRORS as exc:
            self.mark_down(exc)
        else:
            self.mark_up()
        return self.healthy

    def health(self) -> dict:
        """What ``/health`` shows about Redis."""
        status: dict = {"backend": "redis", "url": self.url, "connected": self.healthy}
        if not self.healthy:
            status["error"] = self.last_error
            status["since"] = self.changed_at
        return status

    async def aclose(self) -> None:
        """Let the writes in flight finish, then close the connections."""
        await self.pending.drain()
        await self.wire.aclose()
        await self.client.aclose()


def open_link(config: StateConfig) -> RedisLink:
    """A client for ``config.redis_url`` (no connection is made until the first command).

    Commands time out after ``config.timeout_seconds`` and are retried briefly on a dropped
    connection, so a restarted server is picked up again without a restart of the proxy.
    """
    timeout = config.timeout_seconds
    client = aioredis.Redis.from_url(
        config.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        retry_on_error=[ConnectionError, TimeoutError],
        health_check_interval=15,
        decode_responses=False,
    )
    return RedisLink(client=client, wire=ScriptWire(config.redis_url, timeout),
                     prefix=config.key_prefix, url=redacted_url(config.redis_url),
                     secret=urlsplit(config.redis_url).password or None)
