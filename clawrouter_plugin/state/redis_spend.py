"""Spend budgets shared by every process of a team (``state.backend: redis``).

Each budget account (:mod:`.budget`) is one Redis hash: ``s`` is what it spent, ``h:<id>``
one hold per live reservation (``usd|expires-ms|signed``), ``x:<id>`` what an expired hold
of a claimed payment was charged. Holding, claiming and settling are Lua scripts, so each
is one atomic step across every process, for every account of the request at once
(all-or-nothing): N processes under load never hold or claim more than a limit allows.

A hold expires ``hold_seconds`` after it was last raised (the script drops it; Redis's clock,
so the processes' clocks do not matter). A process that dies therefore blocks no budget for
long. An expired hold of a payment that was claimed (about to be signed, so maybe settled)
is not dropped but counted as spent, and its reservation's later commit replaces that
charge with what the payment really cost. Without a Redis to ask, nothing is signed:
a hold or claim raises :class:`StateUnavailable` (503). A commit that cannot be written is
logged; its hold then expires as described.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from redis.exceptions import ResponseError

from ..errors import StateUnavailable
from .budget import Account, Budget, accounts_for, amount, limited, over_budget, tightest
from .redis_conn import REDIS_ERRORS, RedisLink, unique_id
from .spend import Reservation

if TYPE_CHECKING:
    from ..keys.model import ApiKey

log = logging.getLogger("clawrouter.spend")
HOLD_SECONDS = 120.0

_SWEEP = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- spent and held (holds other than `own`) of one account at `now`. An expired hold is
-- dropped; one of a claimed payment counts as spent (with a tombstone for its commit).
local function sweep(key, now, own, write)
  local fields = redis.call('HGETALL', key)
  local spent, held = 0, 0
  for j = 1, #fields, 2 do
    local field, value = fields[j], fields[j + 1]
    if field == 's' then
      spent = spent + tonumber(value)
    elseif string.sub(field, 1, 2) == 'h:' and field ~= own then
      local usd, expires, signed = string.match(value, '^([^|]*)|([^|]*)|(.*)$')
      if tonumber(expires) > now then
        held = held + tonumber(usd)
      else
        if signed == '1' then
          spent = spent + tonumber(usd)
          if write then
            redis.call('HINCRBYFLOAT', key, 's', usd)
            redis.call('HSET', key, 'x:' .. string.sub(field, 3), usd)
          end
        end
        if write then redis.call('HDEL', key, field) end
      end
    end
  end
  return spent, held
end

local function text(x) return string.format('%.17g', x) end
"""

# KEYS: accounts. ARGV: hold id, usd, signed (0/1), lease ms, then (limit or '', ttl s) per key.
_CLAIM = _SWEEP + """
local now = now_ms()
local own = 'h:' .. ARGV[1]
local usd = tonumber(ARGV[2])
local value = ARGV[2] .. '|' .. string.format('%d', now + tonumber(ARGV[4])) .. '|' .. ARGV[3]
local room = false
for i, key in ipairs(KEYS) do
  local spent, held = sweep(key, now, own, true)
  local limit = ARGV[3 + 2 * i]
  if limit ~= '' then
    local left = tonumber(limit) - spent - held
    if usd > 0 and usd > left + 1e-9 then
      return {0, i, text(spent), text(held)}
    end
    if not room or left < room then room = left end
  end
end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, own, value)
  redis.call('EXPIRE', key, ARGV[4 + 2 * i])
end
if room then return {1, text(room)} end
return {1, ''}
"""

# KEYS: accounts. ARGV: hold id, actual usd, then ttl s per key.
_SETTLE = """
for i, key in ipairs(KEYS) do
  local tomb = 'x:' .. ARGV[1]
  local charged = tonumber(redis.call('HGET', key, tomb) or '0')
  redis.call('HDEL', key, 'h:' .. ARGV[1], tomb)
  local add = tonumber(ARGV[2]) - charged
  if add ~= 0 then redis.call('HINCRBYFLOAT', key, 's', string.format('%.17g', add)) end
  redis.call('EXPIRE', key, ARGV[2 + i])
end
return 1
"""

# KEYS: accounts. Returns spent and held per key (nothing is written).
_READ = _SWEEP + """
local now = now_ms()
local out = {}
for _, key in ipairs(KEYS) do
  local spent, held = sweep(key, now, '', false)
  table.insert(out, text(spent))
  table.insert(out, text(held))
end
return out
"""


def unavailable(link: RedisLink, error: BaseException) -> StateUnavailable:
    """Note that Redis failed (down, or refusing commands: out of memory, read-only, a
    script error, which is logged); the 503 that says nothing was signed."""
    if isinstance(error, ResponseError):
        log.error("Redis refused a team-mode state command: %s", error)
    else:
        link.mark_down(error)
    return StateUnavailable(
        "clawrouter cannot use its shared state (Redis) to check the budgets, so nothing "
        "was signed or paid; try again in a few seconds (GET /health shows the Redis state)")


class RedisSpend:
    """Budgets in Redis, shared by every process using the same ``link`` prefix. Same
    interface as :class:`~.spend.SpendTracker`."""

    def __init__(self, link: RedisLink, limit_usd: float | None, ttl_seconds: float = 3600,
                 hold_seconds: float = HOLD_SECONDS):
        self.link = link
        self.limit = None if limit_usd is None else amount(limit_usd)
        self.ttl = ttl_seconds
        self.hold_ms = max(1, int(hold_seconds * 1000))
        client = link.client
        self._claim_script = client.register_script(_CLAIM)
        self._settle_script = client.register_script(_SETTLE)
        self._read_script = client.register_script(_READ)

    def _keys(self, accounts: tuple[Account, ...]) -> list[str]:
        return [self.link.key("spend", *account.key) for account in accounts]

    async def _run(self, script, keys: list[str], args: list) -> list:
        try:
            result = await script(keys=keys, args=args)
        except REDIS_ERRORS as exc:
            raise unavailable(self.link, exc) from None
        self.link.mark_up()
        return result

    async def _read(self, accounts: tuple[Account, ...]) -> list[tuple[float, float]]:
        raw = await self._run(self._read_script, self._keys(accounts), [])
        return [(float(raw[i]), float(raw[i + 1])) for i in range(0, len(raw), 2)]

    async def budget(self, sid: str, *, api_key: ApiKey | None = None) -> Budget | None:
        """The tightest budget of a request by ``api_key`` in ``sid``; None without limits
        (then Redis is not asked)."""
        accounts = accounts_for(sid, api_key, self.limit, self.ttl)
        if not limited(accounts):
            return None
        used = await self._read(accounts)
        left: list[float | None] = [
            None if account.limit is None else account.limit - spent - held
            for account, (spent, held) in zip(accounts, used)]
        return tightest(accounts, left)

    async def remaining(self, sid: str, *, api_key: ApiKey | None = None) -> float | None:
        """USD still available in the tightest budget (never negative); None without limits."""
        found = await self.budget(sid, api_key=api_key)
        return None if found is None else found.remaining

    async def spent(self, sid: str) -> float:
        """USD spent in this session by every process (holds not included)."""
        return (await self._read(accounts_for(sid, None, self.limit, self.ttl)[:1]))[0][0]

    async def record(self, sid: str, usd: float, *, api_key: ApiKey | None = None) -> None:
        """Add ``usd`` to the spend of every budget of the request."""
        accounts = accounts_for(sid, api_key, self.limit, self.ttl)
        await self._run(self._settle_script, self._keys(accounts),
                        [unique_id(), repr(amount(usd)),
                         *(int(account.ttl) for account in accounts)])

    async def reserve(self, sid: str, usd: float, *, api_key: ApiKey | None = None
                      ) -> Reservation:
        """Hold ``usd`` against every budget at once; :class:`BudgetExceeded` if one cannot
        take it, :class:`StateUnavailable` if Redis cannot be asked. Without any limit nothing
        needs holding: Redis is first asked when a payment is claimed."""
        usd = amount(usd)
        accounts = accounts_for(sid, api_key, self.limit, self.ttl)
        reservation = Reservation(self, sid, accounts, None, unique_id())
        if usd > 0 and limited(accounts):
            await self._hold(reservation, usd, "est")
        return reservation

    async def _hold(self, reservation: Reservation, usd: float, what: str,
                    signing: bool = False) -> None:
        if usd <= reservation.amount and (reservation.signed or not signing):
            return
        new = max(usd, reservation.amount)
        signed = signing or reservation.signed
        accounts = reservation.accounts
        args: list = [reservation.hold_id, repr(new), "1" if signed else "0", self.hold_ms]
        for account in accounts:
            args += ["" if account.limit is None else repr(account.limit), int(account.ttl)]
        result = await self._run(self._claim_script, self._keys(accounts), args)
        if result[0] == 0:
            account = accounts[int(result[1]) - 1]
            raise over_budget(account, float(result[2]), float(result[3]) + reservation.amount,
                              new - reservation.amount, what)
        if reservation.available is None and result[1]:
            reservation.available = float(result[1])
        reservation.amount, reservation.signed = new, signed

    async def _settle(self, reservation: Reservation, actual: float) -> None:
        if reservation.amount == 0 and actual == 0:
            return  # nothing was ever held in Redis
        accounts = reservation.accounts
        try:
            await self._run(self._settle_script, self._keys(accounts),
                            [reservation.hold_id, repr(actual),
                             *(int(account.ttl) for account in accounts)])
        except StateUnavailable:
            log.warning("could not record $%.6f of spend in Redis; the hold of $%.6f expires "
                        "within %d s%s", actual, reservation.amount, self.hold_ms // 1000,
                        " and then counts as spent" if reservation.signed else "")
