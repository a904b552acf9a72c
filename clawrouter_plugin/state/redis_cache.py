"""The redis backend's response cache: one cache for every proxy process of a team.

Same keys as the local cache (:func:`~clawrouter_plugin.state.cache_key.cache_key`), so a
response stored through one process is a hit on all. Each entry is one Redis string
(``<prefix>:cache:e:<key>``: the metadata as JSON, a newline, the body) that expires by
itself after its ttl. The cap is enforced here, without any server configuration: a sorted
set indexes the entries by expiry, a hash holds their sizes and a counter their total, and
one Lua script per store drops expired entries, then the ones closest to expiry (with the
default ttl: the oldest stored) until both ``maxSize`` entries and ``maxBytes`` bytes hold.
A hit is one GET and does not refresh an entry. Hit and miss counters are per process, like
the local cache's; size and bytes are the team's.
"""

from __future__ import annotations

import time

import orjson

from .cache import CachedResponse
from .redis_conn import RedisLink
from .redis_guard import RedisGuard
from .redis_pending import cache_name

# Lua: store ``value`` under ``prefix .. member`` for ``ttl`` ms within the caps; returns how
# many entries were evicted. Also the cache store of the request state's closing script,
# which runs on every answer: the entry count and total size are read once and kept in
# local variables while entries are dropped, and the total is written once at the end
# (ZPOPMIN needs Redis 5; the project asks for 6).
PUT_FUNCTION = """
local function cache_put(index, sizes, total, prefix, member, value, ttl, max_entries, max_bytes)
  ttl, max_entries, max_bytes = tonumber(ttl), tonumber(max_entries), tonumber(max_bytes)
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  local count = redis.call('ZCARD', index)
  local used = tonumber(redis.call('GET', total) or '0')
  local function drop(name)  -- an entry already out of the index
    used = used - tonumber(redis.call('HGET', sizes, name) or '0')
    count = count - 1
    redis.call('HDEL', sizes, name)
    redis.call('DEL', prefix .. name)
  end
  if count > 0 then
    for _, name in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, 64)) do
      redis.call('ZREM', index, name)
      drop(name)
    end
    if redis.call('ZREM', index, member) == 1 then drop(member) end
  end
  local size = string.len(value)
  local evicted = 0
  while count > 0 and (count >= max_entries or used + size > max_bytes) do
    drop(redis.call('ZPOPMIN', index)[1])
    evicted = evicted + 1
  end
  redis.call('SET', prefix .. member, value, 'PX', ttl)
  redis.call('ZADD', index, now + ttl, member)
  redis.call('HSET', sizes, member, size)
  redis.call('SET', total, math.max(used, 0) + size)
  return evicted
end
"""

_PUT = PUT_FUNCTION + "return cache_put(KEYS[1], KEYS[2], KEYS[3], unpack(ARGV))\n"

_CLEAR = """
local names = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, name in ipairs(names) do redis.call('DEL', ARGV[1] .. name) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return #names
"""


class RedisCache:
    """A :class:`~clawrouter_plugin.state.stores.CacheStore` in Redis (see the module doc)."""

    def __init__(self, link: RedisLink, *, max_size: int = 200, default_ttl: float = 600,
                 max_item_size: int = 1_048_576, max_bytes: int = 64 * 1024 * 1024):
        if min(max_size, default_ttl, max_item_size, max_bytes) <= 0:
            raise ValueError("max_size, default_ttl, max_item_size and max_bytes must be positive")
        self._link = link
        self._guard = RedisGuard(link, "response cache",
                                 "responses are neither cached nor served from the cache")
        self._max_size = max_size
        self._default_ttl = default_ttl
        self._max_item_size = max_item_size
        self._max_bytes = max_bytes
        self._entry_prefix = link.key("cache", "e", "")
        self._meta = (link.key("cache", "index"), link.key("cache", "sizes"),
                      link.key("cache", "bytes"))
        self._put = link.client.register_script(_PUT)
        self._clear = link.client.register_script(_CLEAR)
        self._hits = self._misses = self._evictions = 0

    async def get(self, key: str) -> CachedResponse | None:
        """The stored response for ``key``; a miss when absent, expired, unreadable or when
        Redis cannot be reached."""
        await self._link.pending.settled(cache_name(key))
        client = self._link.client
        return self.looked_up(
            await self._guard.run(lambda: client.get(self._entry_prefix + key), None))

    def looked_up(self, value: bytes | None) -> CachedResponse | None:
        """The response a stored ``value`` holds (None: a miss), counted as a hit or a miss
        (also for lookups made by the request state's opening script)."""
        found = _decode(value) if value is not None else None
        if found is None:
            self._misses += 1
        else:
            self._hits += 1
        return found

    @property
    def meta_keys(self) -> tuple[str, str, str]:
        """The keys of the entries' index, their sizes and their total size."""
        return self._meta

    def entry_key(self, key: str) -> str:
        """The Redis key holding the entry for ``key``."""
        return self._entry_prefix + key

    def put_args(self, key: str, response: CachedResponse, ttl: float | None = None
                 ) -> list | None:
        """The arguments of ``cache_put`` (:data:`PUT_FUNCTION`) after the three meta keys,
        storing ``response`` under ``key``; None when it is not to be stored (see
        :meth:`put`)."""
        ttl = self._default_ttl if ttl is None else ttl
        if (ttl <= 0 or len(response.body) > self._max_item_size
                or not 200 <= response.status < 300):
            return None
        value = _encode(response)
        if len(value) > self._max_bytes:
            return None
        return [self._entry_prefix, key, value, max(1, int(ttl * 1000)), self._max_size,
                self._max_bytes]

    def evicted(self, count: int) -> None:
        """Count entries evicted by a store (made here or by the closing script)."""
        self._evictions += int(count)

    async def put(self, key: str, response: CachedResponse, ttl: float | None = None) -> bool:
        """Store a 2xx response (see :meth:`ResponseCache.put
        <clawrouter_plugin.state.cache.ResponseCache.put>`); entries bigger than
        ``max_item_size`` (or the whole cap) are refused."""
        args = self.put_args(key, response, ttl)
        if args is None:
            return False
        evicted = await self._guard.run(lambda: self._put(keys=self._meta, args=args), None)
        if evicted is None:
            return False
        self.evicted(evicted)
        return True

    async def stats(self) -> dict:
        """Like the local cache's, plus ``bytes`` and ``maxBytes``; ``size`` and ``bytes``
        are those of the team's cache (0 while Redis cannot be reached)."""
        index, _, total = self._meta
        await self._link.pending.drain()

        async def read() -> tuple[int, int]:
            async with self._link.client.pipeline(transaction=False) as pipe:
                pipe.zcount(index, f"({int(time.time() * 1000)}", "+inf")
                pipe.get(total)
                size, used = await pipe.execute()
            return int(size), int(used or 0)

        size, used = await self._guard.run(read, (0, 0))
        lookups = self._hits + self._misses
        return {
            "size": size,
            "maxSize": self._max_size,
            "bytes": used,
            "maxBytes": self._max_bytes,
            "hits": self._hits,
            "misses": self._misses,
            "evictions": self._evictions,
            "hitRate": f"{self._hits / lookups * 100:.1f}%" if lookups else "0%",
        }

    async def clear(self) -> None:
        """Remove every entry of the team's cache and reset this process's counters."""
        await self._link.pending.drain()
        await self._guard.must(lambda: self._clear(keys=self._meta, args=[self._entry_prefix]))
        self._hits = self._misses = self._evictions = 0

    async def aclose(self) -> None:
        """Nothing to save: the link is closed by its owner."""


def _encode(response: CachedResponse) -> bytes:
    meta = orjson.dumps({"status": response.status, "headers": response.headers,
                         "model": response.model, "stored_at": response.stored_at})
    return meta + b"\n" + response.body  # JSON from orjson never holds a raw newline


def _decode(value: bytes) -> CachedResponse | None:
    """The stored response, or None for a value that is not one (written by something else)."""
    meta_json, sep, body = value.partition(b"\n")
    try:
        meta = orjson.loads(meta_json) if sep else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(meta, dict):
        return None
    status, headers, model, stored_at = (meta.get("status"), meta.get("headers"),
                                         meta.get("model"), meta.get("stored_at"))
    if (type(status) is not int or not isinstance(headers, dict)
            or not all(isinstance(v, str) for v in headers.values())
            or not (model is None or isinstance(model, str))
            or type(stored_at) not in (int, float)):
        return None
    return CachedResponse(status=status, headers=headers, body=body, model=model,
                          stored_at=stored_at)
