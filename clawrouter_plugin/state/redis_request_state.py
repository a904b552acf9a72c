"""The redis backend's :class:`~.request_state.RequestStates`: two round trips per request.

- **Opening script**, before routing: the cache entry (a hit returns it and nothing else),
  the session's pin, the version of the team's exclusions (the set itself only when the
  version is not the one this process last saw, see :mod:`.redis_exclusions`), and, for a
  request with a cache key that no other request of this process is already working on, the
  join of its in-flight dedup group (:mod:`.redis_dedup`: it takes the group's lock, or
  learns whom to wait for). Routing needs none of the group's state, and the group's key is
  the cache key, which is known before routing, so one script does it all.
- **Closing script**, after the answer: the cache store, the pin update and, for the leader
  of a group, the answer handed to the group and its lock (and paying marker) dropped, in
  one atomic script: a waiter in another process that sees the lock gone also finds the
  cache entry.

The pipeline starts the opening script and routes while Redis answers
(:meth:`RedisRequests.start`): with the exclusions this process last read and the tier of
the session's pin as this process last saw it (a small map, refreshed by each opening
reply and by each pin update this process sends). When the reply says otherwise it routes
again, so the decision is always the one the reply's pin and exclusions give.

A request that takes a group's lock but ends before its work (refused by a budget) drops
the lock at once (:meth:`RedisRequest.abandon`). Paid requests add the paying marker and
the budget claims of :mod:`.redis_spend`. While Redis cannot be reached the request is
served as each store's fallback says: a cache miss, no pin, the exclusions last read, dedup
within this process only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..router import tier_rank
from .cache import CachedResponse
from .dedup import Shareable
from .redis_cache import PUT_FUNCTION, RedisCache
from .redis_conn import RedisLink
from .redis_dedup import FINISH_FUNCTION, JOIN_FUNCTION, Joined, SharedInFlight
from .redis_exclusions import RedisExclusions
from .redis_guard import RedisGuard
from .redis_pending import cache_name, session_name
from .redis_sessions import ANSWERED_FUNCTION, RedisSessions, pin_from
from .request_state import Answered
from .sessions import Pin

T = TypeVar("T")

# KEYS: cache entry, pin, exclusions set, exclusions version, then the group's lock, paying,
# done and generation keys. ARGV: '1' to read the cache entry, '1' to read the pin, the
# exclusions version last seen, '1' to join the group, then group_join's arguments.
# Returns {1, entry} on a hit, else {0, pin fields, version, members or nil, join or nil}.
_OPEN = JOIN_FUNCTION + """
if ARGV[1] == '1' then
  local entry = redis.call('GET', KEYS[1])
  if entry then return {1, entry} end
end
local pin = {}
if ARGV[2] == '1' then pin = redis.call('HGETALL', KEYS[2]) end
local version = redis.call('GET', KEYS[4]) or ''
local members = false
if version ~= ARGV[3] then members = redis.call('SMEMBERS', KEYS[3]) end
local joined = false
if ARGV[4] == '1' then
  joined = group_join(KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[5], ARGV[6], ARGV[7])
end
return {0, pin, version, members, joined}
"""

# KEYS: the cache's three meta keys, the pin and preference keys, the group's lock, paying
# and done keys. ARGV[1] holds 'c' to store in the cache (cache_put's arguments in
# ARGV[2..7]), 'p' to update the pin (pin_answered's in ARGV[8..12]) and 'f' to finish the
# group (group_finish's in ARGV[13..15]), last. Returns how many cache entries were evicted.
_CLOSE = PUT_FUNCTION + ANSWERED_FUNCTION + FINISH_FUNCTION + """
local evicted = 0
if string.find(ARGV[1], 'c', 1, true) then
  evicted = cache_put(KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6],
                      ARGV[7])
end
if string.find(ARGV[1], 'p', 1, true) then
  pin_answered(KEYS[4], KEYS[5], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12])
end
if string.find(ARGV[1], 'f', 1, true) then
  group_finish(KEYS[6], KEYS[7], KEYS[8], ARGV[13], ARGV[14], ARGV[15])
end
return evicted
"""

_NO_CACHE: list = [""] * 6
_NO_PIN: list = [""] * 5
_NO_FINISH: list = [""] * 3
TIERS_KEPT = 4096  # sessions whose pin tier a process remembers, for routing early


class RedisRequests:
    """Opens :class:`RedisRequest` states (see the module doc). ``cache`` is None when the
    response cache is disabled."""

    def __init__(self, link: RedisLink, cache: RedisCache | None, sessions: RedisSessions,
                 exclusions: RedisExclusions, inflight: SharedInFlight):
        self.link = link
        self.cache, self.sessions, self.exclusions = cache, sessions, exclusions
        self.inflight = inflight
        self._unused = link.key("unused")  # stands for a key a script will not touch
        self._guard = RedisGuard(
            link, "request state", "responses are not cached, routing goes on without "
            "session pins and with the exclusions last read")
        self._open = link.client.register_script(_OPEN)
        self._close = link.client.register_script(_CLOSE)
        self._tiers: dict[str, str] = {}  # session → its pin's tier, as last seen (bounded)

    async def start(self, cache_key: str | None, sid: str | None) -> RedisOpening:
        """See :meth:`~.request_state.RequestStates.start`: the opening script is written
        to Redis (after this process's closing scripts for the same session or cache key,
        if any are in flight) before this returns; :meth:`RedisOpening.state` reads its
        reply."""
        tier = self._tiers.get(sid) if sid is not None else None
        excluded = self.exclusions.last_read()
        pending = self.link.pending
        if pending:
            await pending.settled(*_names(cache_key, sid))
        join = cache_key is not None and not self.inflight.local.busy(cache_key)
        sent = self._ask(cache_key, sid, self.cache is not None and cache_key is not None, join)
        return RedisOpening(self, cache_key, sid, join, sent, tier, excluded)

    async def open(self, cache_key: str | None, sid: str | None) -> RedisRequest:
        """See :meth:`~.request_state.RequestStates.open`: one round trip (after this
        process's closing scripts for the same session or cache key, if any are in flight)."""
        return await (await self.start(cache_key, sid)).state()

    async def _opened(self, cache_key: str | None, sid: str | None, join: bool,
                      sent: asyncio.Future | None) -> RedisRequest:
        """The request's state from the opening script's reply (``sent`` reads it; None:
        Redis cannot be reached)."""
        cache = self.cache if cache_key is not None else None
        reply = await self._guard.read(sent, None) if sent is not None else None
        if reply is not None and reply[0] == 1:
            assert cache is not None
            hit = cache.looked_up(reply[1])
            if hit is not None:
                return RedisRequest(self, cache_key, hit, None, frozenset(), None)
            # an entry that is not one of ours: a miss; read the rest without it
            sent = self._ask(cache_key, sid, False, join)
            reply = await self._guard.read(sent, None) if sent is not None else None
        elif cache is not None:
            cache.looked_up(None)
        if reply is None:  # Redis cannot be reached
            return RedisRequest(self, cache_key, None, None, self.exclusions.last_read(), None)
        _, fields, version, members, joined = reply
        pin = None
        if sid is not None:
            pin = pin_from(dict(zip(fields[::2], fields[1::2])))
            self._saw(sid, pin.tier if pin is not None else None)
        excluded = self.exclusions.current(version, members)
        return RedisRequest(self, cache_key, None, pin, excluded,
                            (joined[0], joined[1]) if joined else None)

    def in_flight(self) -> int:
        """See :meth:`~.request_state.RequestStates.in_flight`."""
        return self.inflight.in_flight()

    def _saw(self, sid: str, tier: str | None) -> None:
        """Remember ``tier`` as session ``sid``'s pin tier (None: no pin)."""
        tiers = self._tiers
        tiers.pop(sid, None)
        if tier is not None:
            tiers[sid] = tier
            if len(tiers) > TIERS_KEPT:
                del tiers[next(iter(tiers))]  # the least recently seen

    def _ask(self, cache_key: str | None, sid: str | None, cache: bool,
             join: bool) -> asyncio.Future | None:
        """Write the opening script; the future returned gets its reply (None: Redis is
        down and not asked again yet)."""
        if not self._guard.ready():
            return None
        unused = self._unused
        group = self.inflight.keys(self.link.key("dedup", cache_key)) if join \
            else [unused] * 4
        keys = [self.cache.entry_key(cache_key) if cache else unused,  # type: ignore[union-attr]
                self.sessions.keys(sid)[0] if sid is not None else unused,
                self.exclusions.key, self.exclusions.version_key, *group]
        args = ["1" if cache else "", "1" if sid is not None else "", self.exclusions.version,
                "1" if join else "", *self.inflight.join_args()]
        return self.link.wire.call(self._open, keys, args)

    async def close(self, cache_key: str | None, answered: Answered | None,
                    cached: CachedResponse | None,
                    finish: tuple[str, str, str, str, bytes] | None = None) -> None:
        """Send the closing script, without waiting for its reply: store ``cached`` under
        ``cache_key``, update the pin for ``answered`` and, with ``finish`` (lock, paying,
        done, token, answer), hand the group its answer and drop its lock. The script is
        written to Redis before this returns, so before the answer reaches the client;
        this process's later commands about the same session or cache key wait for its
        reply (:mod:`.redis_pending`)."""
        unused = self._unused
        what = ""
        keys = [unused] * 8
        args: list = []
        put = self.cache.put_args(cache_key, cached) if (
            self.cache is not None and cache_key is not None and cached is not None) else None
        if put is not None:
            what += "c"
            keys[0:3] = self.cache.meta_keys  # type: ignore[union-attr]
        args += put if put is not None else _NO_CACHE
        if answered is not None:
            what += "p"
            known = self._tiers.get(answered.sid)  # the pin update keeps the higher tier
            if known is None or tier_rank(answered.tier) > tier_rank(known):
                known = answered.tier
            self._saw(answered.sid, known)
            keys[3:5] = self.sessions.keys(answered.sid)
            args += self.sessions.answered_args(answered.model, answered.tier, answered.table)
        else:
            args += _NO_PIN
        if finish is not None:
            what += "f"
            keys[5:8] = finish[:3]
            args += [finish[3], finish[4], self.inflight.result_ms]
        else:
            args += _NO_FINISH
        if not what or not self._guard.ready():
            return
        reply = self.link.wire.call(self._close, keys, [what, *args])
        reply.add_done_callback(self._closed_cache if put is not None else self._closed)
        self.link.pending.start(reply, _names(cache_key, answered.sid if answered else None))

    def _closed(self, reply: asyncio.Future) -> None:
        """The closing script's reply has arrived (read in the event loop's callback)."""
        self._guard.settled(reply, None)

    def _closed_cache(self, reply: asyncio.Future) -> None:
        """Same, for a script that stored an answer: count what it evicted."""
        evicted = self._guard.settled(reply, None)
        if evicted is not None:
            self.cache.evicted(evicted)  # type: ignore[union-attr]


class RedisOpening:
    """An :class:`~.request_state.Opening` whose opening script is written, its reply on
    its way."""

    __slots__ = ("_states", "_key", "_sid", "_join", "_sent", "likely_tier", "likely_excluded")
    ready = None

    def __init__(self, states: RedisRequests, key: str | None, sid: str | None, join: bool,
                 sent: asyncio.Future | None, tier: str | None, excluded: frozenset[str]):
        self._states, self._key, self._sid, self._join, self._sent = states, key, sid, join, sent
        self.likely_tier, self.likely_excluded = tier, excluded

    async def state(self) -> RedisRequest:
        """See :meth:`~.request_state.Opening.state` (awaited once)."""
        return await self._states._opened(self._key, self._sid, self._join, self._sent)


def _names(cache_key: str | None, sid: str | None) -> tuple[str, ...]:
    """What a request's closing script touches, for :class:`~.redis_pending.PendingWrites`."""
    if cache_key is None:
        return () if sid is None else (session_name(sid),)
    return (cache_name(cache_key),) if sid is None else (cache_name(cache_key), session_name(sid))


class RedisRequest:
    """A :class:`~.request_state.RequestState` of :class:`RedisRequests`."""

    __slots__ = ("_states", "_key", "hit", "pin", "excluded", "_joined", "_kept")

    def __init__(self, states: RedisRequests, key: str | None, hit: CachedResponse | None,
                 pin: Pin | None, excluded: frozenset[str], joined: Joined | None):
        self._states, self._key = states, key
        self.hit, self.pin, self.excluded = hit, pin, excluded
        self._joined = joined  # what the opening script's join answered
        self._kept: tuple[Answered | None, CachedResponse | None] | None = None

    async def run(self, factory: Callable[[], Awaitable[T]],
                  share: Shareable[T] | None) -> tuple[T, bool]:
        """See :meth:`~.request_state.RequestState.run`: the leader of a group sends what
        :meth:`keep` was given with its closing script; otherwise it goes on its own after
        the work."""
        states, key = self._states, self._key
        if key is None:
            key = f"nocache:{id(self)}"
        if share is None:
            self.abandon()
        try:
            return await states.inflight.run(key, factory, share, joined=self._joined,
                                              finish=self._finish)
        finally:
            if self._kept is not None:
                kept, self._kept = self._kept, None
                await states.close(self._key, *kept)

    async def keep(self, answered: Answered | None, cached: CachedResponse | None) -> None:
        """See :meth:`~.request_state.RequestState.keep`: held for the closing script."""
        self._kept = (answered, cached)

    def abandon(self) -> None:
        """Drop the group's lock if the opening script took it."""
        if self._key is not None:
            self._states.inflight.abandon(self._key, self._joined)
        self._joined = None

    async def _finish(self, lock: str, paying: str, done: str, token: str,
                      answer: bytes) -> None:
        kept, self._kept = self._kept or (None, None), None
        await self._states.close(self._key, *kept, finish=(lock, paying, done, token, answer))
