"""The connection that carries a request's two scripts (:mod:`.redis_request_state`).

One long-lived connection per process, with nothing between a script and the socket: a call
packs the command (hiredis), writes it at once and returns a future; the replies come back
in the order the commands went out, so each one resolves the oldest future still waiting
(``hiredis.Reader`` parses them as the bytes arrive, in the event loop's read callback).
Next to the connection pool this saves, per script, a checkout and a release (each with a
lock and bookkeeping), a read task with its timeout and, per reply, a trip through the
event loop; at concurrency 1 that was most of what the Redis backend added to a request.

- **Connecting** happens on the first call, and again on the first call after the
  connection was lost (a restarted server): calls made meanwhile are written, in order, as
  soon as it is up. The URL means what it means to the rest of the client (``redis-py``
  parses it): ``redis://``, ``rediss://`` with its TLS options, ``unix://``, a user and
  password (``AUTH``) and a database number (``SELECT``).
- **Errors**, all :data:`~.redis_conn.REDIS_ERRORS`: a server that cannot be reached, or
  does not answer a command within ``timeout`` seconds (the connection is then dropped),
  fails the calls waiting on the connection, and the next call connects again. What a store
  does meanwhile is :mod:`.redis_guard`'s business.
- **Scripts** go by their SHA1 (``EVALSHA``); a server that does not know one (restarted,
  ``SCRIPT FLUSH``) answers ``NOSCRIPT`` and gets the whole script (``EVAL``, which also
  keeps it for the next time). Nothing ran, so the script runs exactly once.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from typing import Any, Protocol

import hiredis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


class Script(Protocol):
    """A Lua script as ``register_script`` gives it: its SHA1 and its source."""

    sha: str
    script: str | bytes


# a command written and not yet answered: the future that gets its reply, the time by which
# it must come, and what to send instead if the server answers NOSCRIPT (None: nothing)
_Waiting = tuple[asyncio.Future, float, "tuple[Script, list, list] | None"]


class _Replies(asyncio.Protocol):
    """The connection's protocol: writes commands, matches replies to them in order."""

    def __init__(self, timeout: float) -> None:
        self.loop = asyncio.get_running_loop()
        self._timeout = timeout
        self._reader = hiredis.Reader(replyError=ResponseError)
        self._waiting: deque[_Waiting] = deque()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._failure: BaseException | None = None  # why the connection was dropped
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def send(self, packed: bytes, future: asyncio.Future,
             again: tuple[Script, list, list] | None = None) -> None:
        """Write one packed command; its reply (or error) goes to ``future``."""
        self._waiting.append((future, self.loop.time() + self._timeout, again))
        if self._timer is None:
            self._timer = self.loop.call_at(self._waiting[0][1], self._check)
        self._transport.write(packed)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        reader, waiting = self._reader, self._waiting
        reader.feed(data)
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self._drop(RedisConnectionError(f"Redis sent something unreadable: {exc}"))
                return
            if reply is False:
                return
            if not waiting:  # a reply nobody asked for: the stream cannot be trusted
                self._drop(RedisConnectionError("Redis sent a reply to no command"))
                return
            future, _, again = waiting.popleft()
            if isinstance(reply, ResponseError):
                if again is not None and str(reply).startswith("NOSCRIPT"):
                    script, keys, args = again
                    self.send(hiredis.pack_command(
                        ("EVAL", script.script, len(keys), *keys, *args)), future)
                    continue
                if not future.done():
                    future.set_exception(reply)
            elif not future.done():
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        error = self._failure or RedisConnectionError(
            f"Connection to Redis lost{f': {exc}' if exc else ''}")
        while self._waiting:
            future = self._waiting.popleft()[0]
            if not future.done():
                future.set_exception(error)

    def _check(self) -> None:
        """The oldest command has until its deadline to be answered, or the connection is
        dropped (each call's timeout, with one timer for them all)."""
        self._timer = None
        if not self._waiting:
            return
        deadline = self._waiting[0][1]
        if deadline <= self.loop.time():
            self._drop(RedisTimeoutError(f"Redis did not answer within {self._timeout:g} s"))
        else:
            self._timer = self.loop.call_at(deadline, self._check)

    def _drop(self, error: BaseException) -> None:
        self._failure = error
        self.closed = True
        if self._transport is not None:
            self._transport.abort()  # connection_lost fails what is waiting

    def close(self) -> None:
        """Close the connection (what is waiting fails)."""
        self._drop(RedisConnectionError("Connection to Redis closed"))


class ScriptWire:
    """The process's connection for request scripts (see the module doc)."""

    def __init__(self, url: str, timeout: float) -> None:
        self._params: dict[str, Any] = dict(parse_url(url))
        self._timeout = timeout
        self._replies: _Replies | None = None
        self._backlog: list[tuple[bytes, asyncio.Future, tuple[Script, list, list]]] = []
        self._connecting: asyncio.Task | None = None

    def call(self, script: Script, keys: list, args: list) -> asyncio.Future:
        """Run ``script`` with ``keys`` and ``args``: written now (or as soon as the
        connection is up), its reply in the future returned."""
        packed = hiredis.pack_command(("EVALSHA", script.sha, len(keys), *keys, *args))
        replies = self._replies
        if replies is not None and not replies.closed:
            future = replies.loop.create_future()
            replies.send(packed, future, (script, keys, args))
            return future
        future = asyncio.get_running_loop().create_future()
        self._backlog.append((packed, future, (script, keys, args)))
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        return future

    async def _connect(self) -> None:
        """Connect, then write the calls made meanwhile; on failure they fail with it."""
        try:
            replies = await asyncio.wait_for(self._open(), self._timeout)
        except RedisError as exc:
            self._fail_backlog(exc)
            return
        except OSError as exc:  # refused, unreachable, TLS, timed out
            self._fail_backlog(RedisConnectionError(
                f"Error connecting to Redis: {exc or type(exc).__name__}"))
            return
        except Exception as exc:  # not Redis's doing: shown as it is
            self._fail_backlog(exc)
            raise
        finally:
            self._connecting = None
        self._replies = replies
        backlog, self._backlog = self._backlog, []
        for packed, future, again in backlog:
            replies.send(packed, future, again)

    def _fail_backlog(self, error: BaseException) -> None:
        backlog, self._backlog = self._backlog, []
        for _, future, _ in backlog:
            if not future.done():
                future.set_exception(error)

    async def _open(self) -> _Replies:
        """A new connection, authenticated and on the URL's database."""
        loop = asyncio.get_running_loop()
        params = self._params
        timeout = self._timeout
        if "path" in params:
            _, replies = await loop.create_unix_connection(lambda: _Replies(timeout),
                                                           params["path"])
        else:
            tls = None
            if params.get("connection_class") is SSLConnection:  # rediss://: its TLS options
                options = {k: v for k, v in params.items() if k != "connection_class"}
                tls = SSLConnection(**options).ssl_context.get()
            transport, replies = await loop.create_connection(
                lambda: _Replies(timeout), params.get("host", "localhost"),
                params.get("port", 6379), ssl=tls)
            raw = transport.get_extra_info("socket")
            if raw is not None:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            first: list[asyncio.Future] = []
            if params.get("password"):
                user = (params["username"],) if params.get("username") else ()
                first.append(loop.create_future())
                replies.send(hiredis.pack_command(("AUTH", *user, params["password"])),
                             first[-1])
            if params.get("db"):
                first.append(loop.create_future())
                replies.send(hiredis.pack_command(("SELECT", params["db"])), first[-1])
            for future in first:
                await future
        except BaseException:
            replies.close()
            raise
        return replies

    async def aclose(self) -> None:
        """Close the connection (calls still waiting fail)."""
        if self._connecting is not None:
            self._connecting.cancel()
        self._fail_backlog(RedisConnectionError("Connection to Redis closed"))
        if self._replies is not None:
            self._replies.close()
            self._replies = None
