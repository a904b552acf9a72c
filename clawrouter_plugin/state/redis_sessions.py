"""The redis backend's session pins and ``/model`` preferences, shared by every process.

A pin is a hash (``<prefix>:pin:<sid>``: model, tier, table, requests, last_used), a
preference a string (``<prefix>:pref:<sid>``); both expire after ``sessions.ttlSeconds``
without use, counted by Redis. Nothing is kept in this process, so a pin or preference set
through one process steers the next request on any other. Each change is one Lua script
(one round trip, atomic across processes). Each call first waits for this process's pin
updates of the same session still in flight (:mod:`.redis_pending`). While Redis cannot be
reached, routing goes on without pins (see :mod:`.redis_guard`); ``/model`` says it cannot
save the choice.
"""

from __future__ import annotations

import time

from .redis_conn import RedisLink
from .redis_guard import RedisGuard
from .redis_pending import session_name
from .sessions import Pin

_PIN = """
local requests = redis.call('HINCRBY', KEYS[1], 'requests', 1)
redis.call('HSET', KEYS[1], 'model', ARGV[1], 'tier', ARGV[2], 'table', ARGV[3],
           'last_used', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return requests
"""

# ARGV[3]: the model that answered (set_model), or '' for one more request (touch)
_USED = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[3] == '' then
    redis.call('HINCRBY', KEYS[1], 'requests', 1)
  else
    redis.call('HSET', KEYS[1], 'model', ARGV[3])
  end
  redis.call('HSET', KEYS[1], 'last_used', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if ARGV[3] == '' then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 0
"""

# Lua: after an answer of ``model`` to a request routed to ``tier`` (see
# SessionPins.answered); ``now`` and the idle ``ttl`` in ms. Also the pin update of the
# request state's closing script.
ANSWERED_FUNCTION = """
local function pin_answered(pin, pref, model, tier, tbl, now, ttl)
  local rank = {SIMPLE = 0, MEDIUM = 1, COMPLEX = 2, REASONING = 3}
  local pinned = redis.call('HMGET', pin, 'tier', 'model', 'requests')
  local requests = (tonumber(pinned[3]) or 0) + 1
  if not pinned[1] or (rank[tier] or -1) > (rank[pinned[1]] or -1) then
    redis.call('HSET', pin, 'model', model, 'tier', tier, 'table', tbl, 'requests', requests,
               'last_used', now)
    redis.call('PEXPIRE', pref, ttl)
  elseif pinned[2] ~= model then
    redis.call('HSET', pin, 'model', model, 'last_used', now)
  else
    redis.call('HSET', pin, 'requests', requests, 'last_used', now)
    redis.call('PEXPIRE', pref, ttl)
  end
  redis.call('PEXPIRE', pin, ttl)
  return 0
end
"""

_ANSWERED = ANSWERED_FUNCTION + "return pin_answered(KEYS[1], KEYS[2], unpack(ARGV))\n"


class RedisSessions:
    """A :class:`~clawrouter_plugin.state.stores.SessionPins` in Redis (see the module doc)."""

    def __init__(self, link: RedisLink, ttl_seconds: float = 3600):
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._link = link
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._guard = RedisGuard(link, "session pins", "routing goes on without session pins")
        self._pin = link.client.register_script(_PIN)
        self._used = link.client.register_script(_USED)
        self._answered = link.client.register_script(_ANSWERED)

    async def get(self, sid: str) -> Pin | None:
        """The session's pin, or None (also while Redis cannot be reached)."""
        await self._link.pending.settled(session_name(sid))
        client = self._link.client
        fields = await self._guard.run(lambda: client.hgetall(self._link.key("pin", sid)), {})
        return pin_from(fields)

    async def pin(self, sid: str, model: str, tier: str, table: str) -> Pin:
        """Pin ``sid`` to ``model``/``tier``; while Redis cannot be reached the pin is not
        kept (the answer is still what it would have been)."""
        await self._link.pending.settled(session_name(sid))
        now = time.time()
        args = [model, tier, table, repr(now), self._ttl_ms]
        requests = await self._guard.run(lambda: self._pin(keys=self.keys(sid), args=args), 1)
        return Pin(model=model, tier=tier, table=table, requests=int(requests), last_used=now)

    async def touch(self, sid: str) -> None:
        """One more request under the existing pin: count it and refresh both idle timers."""
        await self._link.pending.settled(session_name(sid))
        args = [repr(time.time()), self._ttl_ms, ""]
        await self._guard.run(lambda: self._used(keys=self.keys(sid), args=args), 0)

    async def set_model(self, sid: str, model: str) -> None:
        """Record the model that answered after a fallback; no-op without a pin."""
        await self._link.pending.settled(session_name(sid))
        args = [repr(time.time()), self._ttl_ms, model]
        await self._guard.run(lambda: self._used(keys=self.keys(sid), args=args), 0)

    async def answered(self, sid: str, model: str, tier: str, table: str) -> None:
        """See :meth:`~.stores.SessionPins.answered`: one script, so the check and the change
        are one round trip and atomic across processes."""
        await self._link.pending.settled(session_name(sid))
        args = self.answered_args(model, tier, table)
        await self._guard.run(lambda: self._answered(keys=self.keys(sid), args=args), 0)

    def keys(self, sid: str) -> list[str]:
        """The keys of ``sid``'s pin and preference."""
        return [self._link.key("pin", sid), self._link.key("pref", sid)]

    def answered_args(self, model: str, tier: str, table: str) -> list:
        """The arguments of ``pin_answered`` (:data:`ANSWERED_FUNCTION`) after the two keys."""
        return [model, tier, table, repr(time.time()), self._ttl_ms]

    async def set_preference(self, sid: str, model: str) -> None:
        """Remember ``/model``'s choice for every process; StateUnavailable while Redis
        cannot be reached."""
        await self._link.pending.settled(session_name(sid))
        client = self._link.client
        await self._guard.must(lambda: client.set(self._link.key("pref", sid), model,
                                                  px=self._ttl_ms))

    async def preference(self, sid: str) -> str | None:
        """The preferred model (its idle timer restarts), or None."""
        await self._link.pending.settled(session_name(sid))
        client = self._link.client
        value = await self._guard.run(
            lambda: client.getex(self._link.key("pref", sid), px=self._ttl_ms), None)
        return value.decode() if value is not None else None

    async def clear(self, sid: str | None = None) -> None:
        """Forget one session's pin and preference, or every session's (StateUnavailable
        while Redis cannot be reached)."""
        client = self._link.client
        if sid is not None:
            await self._link.pending.settled(session_name(sid))
            await self._guard.must(lambda: client.delete(*self.keys(sid)))
            return
        await self._link.pending.drain()

        async def clear_all() -> None:
            for pattern in (self._link.key("pin", "*"), self._link.key("pref", "*")):
                batch = []
                async for key in client.scan_iter(match=pattern, count=500):
                    batch.append(key)
                    if len(batch) >= 500:
                        await client.unlink(*batch)
                        batch.clear()
                if batch:
                    await client.unlink(*batch)

        await self._guard.must(clear_all)


def pin_from(fields: dict[bytes, bytes]) -> Pin | None:
    """The pin a hash holds, or None for no (or a damaged) hash."""
    try:
        return Pin(model=fields[b"model"].decode(), tier=fields[b"tier"].decode(),
                   table=fields[b"table"].decode(), requests=int(fields[b"requests"]),
                   last_used=float(fields[b"last_used"]))
    except (KeyError, ValueError):
        return None
