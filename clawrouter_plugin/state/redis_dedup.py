"""In-flight dedup across the processes of a team (``state.backend: redis``).

Identical concurrent requests (same cache key) pay once, whichever processes they reach.
Within a process, :class:`~.dedup.InFlight` still shares one piece of work between its
callers without asking Redis; that work joins the team-wide group of its key:

- **Leader.** The first process to take the group's lock (``SET NX PX`` in a script that
  also numbers the leaders of the group: its token is ``<generation>:<unique id>``) does the
  work and keeps its lock alive (every third of ``lock_seconds``, one timer of the process
  renews the locks of all its leaders still working). When it is done it
  stores its answer, or its error, tagged with its token, for ``result_seconds`` and drops
  the lock, in one script.
- **Waiters** poll (10 ms growing to 100 ms, bounded by ``max_wait_seconds``) until the
  answer of the leader they waited for (or of a later one) appears, and return it as a
  shared answer, or raise its error. An answer older than the leader they waited for is
  never taken: it was not produced for them.
- **Before the leader signs a payment** it writes a *paying* marker holding the payment's
  ``validBefore``, which expires at ``validBefore`` plus a margin. The marker is written only
  while the leader still holds the lock (one script), otherwise nothing is signed. It is
  removed with the lock when the leader finishes, whatever the outcome (its payment is then
  recorded and its waiters get its answer or error).
- **Leader death rule.** When the lock expires without an answer (the leader's process died,
  or its work was cancelled), the next waiter to look *takes over* only if there is no
  paying marker: then the leader never signed anything and exactly one waiter (the one whose
  ``SET NX`` wins) does the work and pays; a waiter that looks after that one already
  finished takes its answer. With a marker, the leader's payment may still
  settle until ``validBefore``: nobody pays again, and every waiter (and any identical request
  until then) gets :class:`IdenticalRequestPending` (503, ``Retry-After``). Once
  ``validBefore`` has passed the authorization can no longer move money, the marker is
  gone, and the next identical request pays normally.
- **Redis down.** Joining a group fails: the request goes on with in-process dedup only (and
  its payment claim then refuses to sign while budgets cannot be checked). A waiter that
  loses Redis gets :class:`StateUnavailable`: the leader's answer cannot be fetched, and this
  request is not paid instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import orjson
from redis.exceptions import ResponseError

from ..errors import (
    ClawRouterError,
    IdenticalRequestPending,
    StateUnavailable,
    UpstreamError,
    UpstreamTimeout,
)
from .dedup import InFlight, Shareable, before_signing
from .redis_conn import REDIS_ERRORS, RedisLink, unique_id
from .redis_pending import cache_name
from .redis_spend import unavailable

T = TypeVar("T")
Joined = tuple[bytes, bytes]  # what group_join answered: (state, value), see JOIN_FUNCTION
# a leader's closing script: (lock, paying, done, token, answer)
Finish = Callable[[str, str, str, str, bytes], Awaitable[None]]
log = logging.getLogger("clawrouter.dedup")

LOCK_SECONDS = 10.0
RESULT_SECONDS = 60.0
MAX_WAIT_SECONDS = 900.0
SETTLE_MARGIN_SECONDS = 60  # the paying marker outlives validBefore by this (clock skew)
POLL_FIRST, POLL_MAX = 0.01, 0.1
_OK, _ERROR = b"o", b"e"

# Lua: join the group of ``lock`` (and its paying, done and generation keys); ``random`` is
# the unique part of a token, ``lock_ms`` the lock's life, ``vanished`` the generation of a
# leader that vanished while this waiter waited for it (else ''). A leader's token is
# '<generation>:<unique id>'; its answer is stored as '<token>\n<answer>'. Returns
# {'lead', token}, {'wait', holder}, {'done', answer} or {'pending', validBefore}. Also the
# join of the request state's opening script.
JOIN_FUNCTION = """
local function group_join(lock, paying, done, generation, random, lock_ms, vanished)
  local holder = redis.call('GET', lock)
  if holder then return {'wait', holder} end
  if vanished ~= '' then
    local answer = redis.call('GET', done)
    if answer and tonumber(string.match(answer, '^(%d+):')) > tonumber(vanished) then
      return {'done', answer}
    end
  end
  local marker = redis.call('GET', paying)
  if marker then return {'pending', marker} end
  local token = redis.call('INCR', generation) .. ':' .. random
  redis.call('PEXPIRE', generation, 86400000)
  redis.call('SET', lock, token, 'PX', lock_ms)
  return {'lead', token}
end
"""

_JOIN = JOIN_FUNCTION + "return group_join(KEYS[1], KEYS[2], KEYS[3], KEYS[4], unpack(ARGV))\n"

# KEYS: lock, paying. ARGV: token, validBefore, lock ms, margin s.
_SIGNING = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local valid = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), tonumber(ARGV[2]))
redis.call('SET', KEYS[2], string.format('%d', valid), 'EXAT',
           string.format('%d', valid + tonumber(ARGV[4])))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS: lock. ARGV: token, lock ms.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# Lua: the leader holding ``token`` hands its ``answer`` to the group for ``result_ms`` and
# drops its lock and paying marker. Also the end of the request state's closing script.
FINISH_FUNCTION = """
local function group_finish(lock, paying, done, token, answer, result_ms)
  redis.call('SET', done, token .. '\\n' .. answer, 'PX', result_ms)
  if redis.call('GET', lock) == token then redis.call('DEL', lock, paying) end
  return 1
end
"""

_FINISH = FINISH_FUNCTION + "return group_finish(KEYS[1], KEYS[2], KEYS[3], unpack(ARGV))\n"

# KEYS: lock. ARGV: token. The paying marker stays: a payment signed may still settle.
_ABANDON = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SharedInFlight:
    """Coalesces concurrent calls that share a key, across every process on ``link``."""

    def __init__(self, link: RedisLink, *, lock_seconds: float = LOCK_SECONDS,
                 result_seconds: float = RESULT_SECONDS,
                 max_wait_seconds: float = MAX_WAIT_SECONDS) -> None:
        self.link = link
        self.local = InFlight()
        self.lock_ms = max(30, int(lock_seconds * 1000))
        self.result_ms = max(1000, int(result_seconds * 1000))
        self.max_wait = max_wait_seconds
        client = link.client
        self._join = client.register_script(_JOIN)
        self._signing = client.register_script(_SIGNING)
        self._renew_script = client.register_script(_RENEW)
        self._finish_script = client.register_script(_FINISH)
        self._abandon_script = client.register_script(_ABANDON)
        self._held: dict[str, str] = {}  # token → lock, of this process's leaders at work
        self._keeper: asyncio.TimerHandle | None = None  # renews them while there are any

    async def run(self, key: str, factory: Callable[[], Awaitable[T]],
                  share: Shareable[T] | None = None, *, joined: Joined | None = None,
                  finish: Finish | None = None) -> tuple[T, bool]:
        """``(result, shared)``: shared is False for the caller whose ``factory`` ran.
        Without ``share`` only callers in this process share the work. ``joined`` is what
        joining the group already answered (the request state's opening script joins in
        the same round trip as its reads); ``finish`` replaces the leader's closing script
        (the request state's adds its own writes to it)."""
        if share is None:
            return await self.local.run(key, factory)
        if joined is not None and joined[0] == b"lead" and self.local.busy(key):
            # this request holds the team's lock (its opening script took it) and another
            # request of this process, which opened later, got here first and now waits for
            # this one's answer: lead without it, which then gets the answer from Redis
            return await self._group(key, factory, share, joined, finish)
        (result, remote), shared = await self.local.run(
            key, lambda: self._group(key, factory, share, joined, finish))
        return result, shared or remote

    @staticmethod
    def keys(group: str) -> list[str]:
        """The lock, paying, done and generation keys of the group ``group``
        (``link.key("dedup", key)``)."""
        return [group + ":lock", group + ":paying", group + ":done", group + ":generation"]

    def join_args(self) -> list:
        """The arguments of ``group_join`` (:data:`JOIN_FUNCTION`) after the four keys, for
        the first join of a request."""
        return [unique_id(), self.lock_ms, ""]

    def abandon(self, key: str, joined: Joined | None) -> None:
        """Drop the lock of ``key``'s group if ``joined`` holds it (taken by a request that
        will not run after all), in the background."""
        if joined is not None and joined[0] == b"lead":
            lock = self.keys(self.link.key("dedup", key))[0]
            self._spawn(self._abandon_script(keys=[lock], args=[joined[1]]), cache_name(key))

    def in_flight(self) -> int:
        """How many distinct keys this process is working on or waiting for."""
        return self.local.in_flight()

    async def _group(self, key: str, factory: Callable[[], Awaitable[T]],
                     share: Shareable[T], joined: Joined | None,
                     finish: Finish | None) -> tuple[T, bool]:
        keys = self.keys(self.link.key("dedup", key))
        lock, paying, done = keys[:3]
        vanished = ""  # the generation of a leader that vanished while we waited for it
        deadline = time.monotonic() + self.max_wait
        while time.monotonic() < deadline:
            if joined is not None:
                state, value = joined
                joined = None
            else:
                try:
                    state, value = await self._join(keys=keys, args=[
                        unique_id(), self.lock_ms, vanished])
                except REDIS_ERRORS as exc:
                    unavailable(self.link, exc)
                    log.info("Redis unusable: identical requests are shared in this process "
                             "only")
                    return await factory(), False
                self.link.mark_up()
            if state == b"lead":
                return await self._lead(lock, paying, done, value.decode(), factory,
                                        share, finish or self._finish), False
            if state == b"pending":
                raise IdenticalRequestPending(int(value), time.time(), SETTLE_MARGIN_SECONDS)
            data = value if state == b"done" else await self._wait(lock, done, value, deadline)
            if data is not None:
                return _result(data.partition(b"\n")[2], share), True
            vanished = value.split(b":", 1)[0].decode()
        raise _too_long(self.max_wait)

    async def _wait(self, lock: str, done: str, holder: bytes, deadline: float) -> bytes | None:
        """The stored answer of the leader holding ``holder`` (or of a later one), or None
        when that leader vanished without one."""
        generation = _generation(holder)
        delay = POLL_FIRST
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, POLL_MAX)
            try:
                current, data = await self.link.client.mget(lock, done)
            except REDIS_ERRORS as exc:
                self.link.mark_down(exc)
                raise StateUnavailable(
                    "an identical request is being answered by another clawrouter process, "
                    "and its answer cannot be fetched while the shared state (Redis) is "
                    "unreachable; this request was not paid. Try again in a few seconds") from None
            if data is not None and _generation(data) >= generation:
                return data
            if current != holder:
                return None
        raise _too_long(self.max_wait)

    async def _lead(self, lock: str, paying: str, done: str, token: str,
                    factory: Callable[[], Awaitable[T]], share: Shareable[T],
                    finish: Finish) -> T:
        async def announce(valid_before: int) -> None:
            """The paying marker, before a payment is signed (see the module docstring)."""
            try:
                held = await self._signing(keys=[lock, paying], args=[
                    token, valid_before, self.lock_ms, SETTLE_MARGIN_SECONDS])
            except REDIS_ERRORS as exc:
                raise unavailable(self.link, exc) from None
            if not held:
                raise StateUnavailable(
                    "this request lost the lead of identical concurrent requests (its lock "
                    "in the shared state expired), so it was not paid; send it again")

        self._held[token] = lock
        if self._keeper is None:
            self._keeper = asyncio.get_running_loop().call_later(self.lock_ms / 3000,
                                                                 self._keep_held)
        mark = before_signing.set(announce)
        try:
            result = await factory()
        except asyncio.CancelledError:
            self._spawn(self._abandon_script(keys=[lock], args=[token]))
            raise
        except BaseException as exc:
            await finish(lock, paying, done, token, _ERROR + _error_payload(exc))
            raise
        finally:
            before_signing.reset(mark)
            del self._held[token]
        await finish(lock, paying, done, token, _OK + share.encode(result))
        return result

    def _keep_held(self) -> None:
        """Every third of ``lock_seconds`` while this process leads: extend the lock of each
        leader still at work by ``lock_seconds``, in the background. A leader's lock is first
        renewed within a third of its life of the leader starting its work, then every
        third (one timer for all leaders: most finish long before a round)."""
        self._keeper = None
        if not self._held:
            return
        for token, lock in self._held.items():
            self._spawn(self._renew_script(keys=[lock], args=[token, self.lock_ms]))
        self._keeper = asyncio.get_running_loop().call_later(self.lock_ms / 3000,
                                                             self._keep_held)

    async def _finish(self, lock: str, paying: str, done: str, token: str, answer: bytes) -> None:
        try:
            await self._finish_script(keys=[lock, paying, done], args=[token, answer,
                                                                       self.result_ms])
        except ResponseError:
            log.exception("could not hand an answer to identical requests in other processes")
        except REDIS_ERRORS as exc:
            self.link.mark_down(exc)
            log.warning("could not hand an answer to identical requests in other processes: %s",
                        type(exc).__name__)

    def _spawn(self, work: Awaitable, *names: str) -> None:
        """Send ``work`` without waiting for it; this process's later requests of ``names``
        (see :mod:`.redis_pending`) wait for it."""
        async def quietly() -> None:
            try:
                await work
            except REDIS_ERRORS as exc:
                self.link.mark_down(exc)

        self.link.pending.start(quietly(), names)


def _generation(token: bytes) -> int:
    """The generation of a leader's token, or of the stored answer that starts with it."""
    return int(token.split(b":", 1)[0])


def _error_payload(exc: BaseException) -> bytes:
    error = exc if isinstance(exc, ClawRouterError) else \
        UpstreamError("an identical request failed in another clawrouter process")
    return orjson.dumps({**error.to_dict(), "status": error.status})


def _result(data: bytes, share: Shareable[T]) -> T:
    """The shared answer, or the leader's error raised here."""
    if data[:1] == _OK:
        return share.decode(data[1:])
    body = orjson.loads(data[1:])
    raise ClawRouterError.from_dict(body, body.get("status"))


def _too_long(seconds: float) -> UpstreamTimeout:
    return UpstreamTimeout(f"an identical request answered by another clawrouter process did "
                           f"not finish within {seconds:.0f} s")
