"""What ``/stats`` answers, for one process (``state.backend: local``) or a whole team
(``redis``).

Every process writes its own usage log (the JSONL files in its data directory). With the
redis backend each record is also added, once, to the team's running totals in Redis: one
hash per UTC day (``<prefix>:usage:day:YYYY-MM-DD``) of sums by tier, model, kind, payment
status and API key. ``/stats`` then reads at most one small hash per day asked for, however
many requests the team made; it never scans records.

Exactly once: records gather for :data:`FLUSH_SECONDS`, then go as one numbered batch to a
Lua script that applies a batch only if its number is above the last one this process
applied (kept in ``<prefix>:usage:seq:<process token>``). A batch whose answer was lost is
sent again with the same number and is not counted twice; batches are sent in order. While
Redis is down, records keep gathering (the local log has them all) and are sent when it is
back; ``/stats`` then answers from this machine's log and says so (``scope``, ``teamError``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections import deque

from ..errors import ClawRouterError
from ..usage import MAX_DAYS, DaySums, Totals, UsageLog, UsageRecord, check_days, day_window
from .redis_conn import REDIS_ERRORS, RedisLink

log = logging.getLogger("clawrouter.usage")
FLUSH_SECONDS = 0.25  # records gather this long before one batch goes to Redis
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)  # waits before sending again while Redis is down
MAX_BATCHES = 2000  # batches waiting for Redis; older ones are dropped (the log keeps them)
SEQ_SECONDS = 7 * 86400  # a process's last batch number is kept this long after its last batch
DAY_SECONDS = (MAX_DAYS + 2) * 86400  # a day's totals are kept while /stats may ask for it
CLOSE_SECONDS = 2.0  # at shutdown, the last batch may take this long to send

# KEYS[1]: this process's last applied batch number; KEYS[2..]: the day hashes.
# ARGV: batch number, SEQ_SECONDS, DAY_SECONDS, then for each day hash its number of fields
# followed by that many (field, amount) pairs.
_APPLY = """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local i = 4
for k = 2, #KEYS do
  local count = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, count do
    redis.call('HINCRBYFLOAT', KEYS[k], ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  redis.call('EXPIRE', KEYS[k], ARGV[3])
end
return 1
"""


class LocalUsageStats:
    """``/stats`` from this process's usage log."""

    def __init__(self, usage: UsageLog) -> None:
        self.log = usage

    async def aggregate(self, days: int) -> dict:
        """Statistics over the last ``days`` days (files read in a thread)."""
        return await asyncio.to_thread(self.log.aggregate, check_days(days))

    async def clear(self) -> int:
        """Delete the usage files; returns how many."""
        return await asyncio.to_thread(self.log.clear)

    async def today_by_key(self) -> dict[str, dict]:
        """Requests and cost per API key id today."""
        return await asyncio.to_thread(self.log.today_by_key)

    async def aclose(self) -> None:
        """Nothing to send anywhere."""


class TeamUsageStats(LocalUsageStats):
    """``/stats`` for every process sharing one Redis; this process's records are added to
    the team's totals (see the module docstring)."""

    def __init__(self, usage: UsageLog, link: RedisLink) -> None:
        super().__init__(usage)
        self.link = link
        self._seq_key = link.key("usage", "seq", secrets.token_hex(8))
        self._apply = link.client.register_script(_APPLY)
        self._lock = threading.Lock()  # records may be appended from other threads
        self._pending: dict[str, DaySums] = {}  # UTC day → sums not in a batch yet
        self._batches: deque[tuple[int, dict[str, dict[str, float]]]] = deque()
        self._seq = 0
        self._sending = asyncio.Lock()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Future | None = None  # the background flush (kept: not collected)
        self._failures = 0
        self._closed = False
        usage.mirror = self.add

    def _day_key(self, day: str) -> str:
        return self.link.key("usage", "day", day)

    def add(self, record: UsageRecord) -> None:
        """Count ``record`` in the next batch (the usage log calls this for each record)."""
        with self._lock:
            day = record.timestamp[:10]  # our records' stamps are UTC: their date is the day
            sums = self._pending.get(day)
            if sums is None:
                sums = self._pending[day] = DaySums()
            sums.add_record(record)
        if threading.get_ident() == self._loop_thread:
            self._schedule(FLUSH_SECONDS)
        else:
            self._loop.call_soon_threadsafe(self._schedule, FLUSH_SECONDS)

    def _schedule(self, delay: float) -> None:
        if self._timer is None and not self._closed:
            self._timer = self._loop.call_later(delay, self._flush_soon)

    def _flush_soon(self) -> None:
        self._timer = None
        self._task = asyncio.ensure_future(self._flush_in_background())

    async def _flush_in_background(self) -> None:
        try:
            await self.flush()
        except REDIS_ERRORS:
            if not self._failures:
                log.warning("usage: cannot send usage totals to Redis (%s); retrying, this "
                            "machine's usage log keeps every record", self.link.last_error)
            self._failures += 1
            wait = RETRY_SECONDS[min(self._failures, len(RETRY_SECONDS)) - 1]
            self._schedule(wait)
        else:
            self._failures = 0

    def _new_batch(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        self._seq += 1
        self._batches.append((self._seq, {day: sums.fields() for day, sums in pending.items()}))
        while len(self._batches) > MAX_BATCHES:
            self._batches.popleft()
            log.warning("usage: Redis has been unreachable for long; the oldest unsent "
                        "usage totals are dropped (this machine's usage log keeps them)")

    async def flush(self) -> None:
        """Send what has gathered, in order; raises the Redis error if it cannot."""
        async with self._sending:
            self._new_batch()
            while self._batches:
                seq, days = self._batches[0]
                keys = [self._seq_key]
                args: list = [seq, SEQ_SECONDS, DAY_SECONDS]
                for day, fields in days.items():
                    keys.append(self._day_key(day))
                    args.append(len(fields))
                    for name, amount in fields.items():
                        args += (name, repr(float(amount)))
                try:
                    await self._apply(keys=keys, args=args)
                except REDIS_ERRORS as exc:
                    self.link.mark_down(exc)
                    raise
                self.link.mark_up()
                self._batches.popleft()

    async def aggregate(self, days: int) -> dict:
        """The team's statistics; this machine's own (with ``teamError``) without Redis."""
        dates = day_window(check_days(days))
        try:
            await self.flush()
            async with self.link.client.pipeline(transaction=False) as pipe:
                for day in dates:
                    pipe.hgetall(self._day_key(day.isoformat()))
                hashes = await pipe.execute()
        except REDIS_ERRORS as exc:
            self.link.mark_down(exc)
            own = await super().aggregate(days)
            own["scope"] = "local"
            own["teamError"] = ("Redis is unreachable: these are this machine's own numbers, "
                                "not the team's")
            return own
        self.link.mark_up()
        totals = Totals()
        for day, fields in zip(dates, hashes):
            totals.add_day(day, DaySums.of_fields(fields))
        result = totals.result(days)
        result["scope"] = "team"
        return result

    async def clear(self) -> int:
        """Delete this machine's usage files and the team's totals (records not sent yet are
        dropped with them)."""
        with self._lock:
            self._pending = {}
        self._batches.clear()
        deleted = await super().clear()
        days = [self._day_key(day.isoformat()) for day in day_window(MAX_DAYS + 1)]
        try:
            await self.link.client.delete(*days)
        except REDIS_ERRORS as exc:
            self.link.mark_down(exc)
            raise ClawRouterError("this machine's usage files were deleted, but the team's "
                                  "totals were not: Redis is unreachable", status=503,
                                  code="redis_unavailable") from None
        return deleted

    async def today_by_key(self) -> dict[str, dict]:
        """Requests and cost per API key id today, across the team."""
        return (await self.aggregate(1))["byKey"]

    async def aclose(self) -> None:
        """Send what is left (briefly: a Redis that is down does not hold up a shutdown)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            await asyncio.wait_for(self.flush(), CLOSE_SECONDS)
        except (asyncio.TimeoutError, *REDIS_ERRORS):
            log.warning("usage: Redis is unreachable; the last usage totals were not sent to "
                        "the team (this machine's usage log has them)")


def open_usage_stats(usage: UsageLog, link: RedisLink | None) -> LocalUsageStats:
    """Team statistics with a Redis link, else this process's own."""
    return LocalUsageStats(usage) if link is None else TeamUsageStats(usage, link)
