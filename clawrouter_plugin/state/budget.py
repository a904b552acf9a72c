"""Which budgets a request spends from, for both spend backends.

Every request spends from its session's account (limited by ``maxCostPerRun``, or only
counted). On a shared proxy the caller's API key adds up to two more: the key's budget per
session (``run_usd``) and per UTC day (``daily_usd``, across every process of the team). A
hold or a claim must fit every limited account at once, or it is refused and none is touched.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, NamedTuple

from ..errors import BudgetExceeded

if TYPE_CHECKING:
    from ..keys.model import ApiKey

EPSILON = 1e-9  # float slack when comparing dollar sums
DAY_TTL_SECONDS = 2 * 86_400  # a day's account outlives its day (a hold may cross midnight)
SESSION, KEY_RUN, KEY_DAY = "s", "kr", "kd"


class Account(NamedTuple):
    """One budget: where its spend is kept (``key``), its limit in USD (None: only counted),
    how long it lives without activity, and what messages call it. (A named tuple: one is
    made for every request, on the hot path.)"""

    key: tuple[str, ...]
    limit: float | None
    ttl: float
    label: str  # e.g. "the session's maxCostPerRun"


class Budget(NamedTuple):
    """What is left of the tightest limited account of a request."""

    remaining: float
    limit: float
    label: str


def amount(usd: float) -> float:
    """``usd`` as a float; ValueError unless it is a finite, non-negative number."""
    if isinstance(usd, bool) or not isinstance(usd, (int, float)) or not math.isfinite(usd):
        raise ValueError(f"amount must be a finite number of USD, got {usd!r}")
    if usd < 0:
        raise ValueError(f"amount must not be negative, got {usd!r}")
    return float(usd)


def utc_day(now: float | None = None) -> str:
    """``YYYY-MM-DD`` of the UTC day at ``now`` (default: the current time)."""
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() if now is None else now))


def accounts_for(sid: str, api_key: ApiKey | None, limit: float | None,
                 session_ttl: float) -> tuple[Account, ...]:
    """The accounts a request of session ``sid`` (by ``api_key``'s caller) spends from."""
    session = Account((SESSION, sid), limit, session_ttl, "the session's maxCostPerRun")
    if api_key is None or (api_key.run_usd is None and api_key.daily_usd is None):
        return (session,)
    found = [session]
    if api_key.run_usd is not None:
        found.append(Account((KEY_RUN, api_key.id, sid), float(api_key.run_usd), session_ttl,
                             f"API key {api_key.name!r}'s budget per session"))
    if api_key.daily_usd is not None:
        found.append(Account((KEY_DAY, api_key.id, utc_day()), float(api_key.daily_usd),
                             DAY_TTL_SECONDS, f"API key {api_key.name!r}'s daily budget (UTC)"))
    return tuple(found)


def limited(accounts: tuple[Account, ...]) -> bool:
    """Whether any of ``accounts`` has a limit."""
    return any(account.limit is not None for account in accounts)


def over_budget(account: Account, spent: float, held: float, amount_usd: float,
                what: str) -> BudgetExceeded:
    """The 429 for a hold of ``amount_usd`` that ``account`` cannot take."""
    projected = spent + held + amount_usd
    in_flight = f" + in flight ${held:.4f}" if held else ""
    detail = (f"projected spend ${projected:.4f} (spent ${spent:.4f}{in_flight} + {what} "
              f"${amount_usd:.4f}) would exceed limit ${account.limit or 0.0:.2f}")
    if account.key[0] == SESSION:
        return BudgetExceeded(f"ClawRouter cost cap exceeded: {detail}")
    return BudgetExceeded(f"{account.label} is exceeded: {detail}", code="key_budget_exceeded")


def tightest(accounts: tuple[Account, ...], left: list[float | None]) -> Budget | None:
    """The budget with the least left (``left[i]`` for ``accounts[i]``; None: unlimited)."""
    best: Budget | None = None
    for account, room in zip(accounts, left):
        if account.limit is None or room is None:
            continue
        room = max(0.0, room)
        if best is None or room < best.remaining:
            best = Budget(room, account.limit, account.label)
    return best
