"""Per-session spend budget (``maxCostPerRun``).

A request first :meth:`~SpendTracker.reserve`\\ s its estimated cost; the hold counts against
the budget until the request :meth:`~Reservation.commit`\\ s what it actually paid or
:meth:`~Reservation.release`\\ s the hold. A payment about to be signed is first
:meth:`~Reservation.claim`\\ ed, which raises the hold to its amount if the budget allows.
Concurrent requests in one session therefore cannot together overspend. A session idle for
``ttl_seconds`` (with nothing held) starts afresh.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import BudgetExceeded
from .expiring import ExpiringMap

_EPSILON = 1e-9  # float slack when comparing dollar sums


@dataclass
class _Account:
    spent: float = 0.0
    held: float = 0.0
    holds: int = 0


def _amount(usd: float) -> float:
    if isinstance(usd, bool) or not isinstance(usd, (int, float)) or not math.isfinite(usd):
        raise ValueError(f"amount must be a finite number of USD, got {usd!r}")
    if usd < 0:
        raise ValueError(f"amount must not be negative, got {usd!r}")
    return float(usd)


class Reservation:
    """An estimate held against a session's budget. Settle it once: the first
    :meth:`commit` or :meth:`release` counts, later calls do nothing. As a context manager
    it releases the hold on exit unless committed."""

    def __init__(self, tracker: SpendTracker, sid: str, amount: float):
        self._tracker = tracker
        self.sid = sid
        self.amount = amount
        self.settled = False

    def commit(self, actual_usd: float) -> None:
        """Release the hold and record ``actual_usd`` as spent."""
        actual = _amount(actual_usd)
        if not self.settled:
            self.settled = True
            self._tracker._settle(self.sid, self.amount, actual)

    def claim(self, usd: float) -> None:
        """Hold at least ``usd`` (a payment about to be signed), before settling;
        :class:`BudgetExceeded` if the budget cannot cover it with everything else."""
        amount = _amount(usd)
        if amount > self.amount:
            self._tracker._hold(self.sid, amount - self.amount, "payment")
            self.amount = amount

    def release(self) -> None:
        """Drop the hold without spending anything (the request failed or cost nothing)."""
        if not self.settled:
            self.settled = True
            self._tracker._settle(self.sid, self.amount, 0.0)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class SpendTracker:
    """Spend per session against an optional limit in USD (None = no limit)."""

    def __init__(
        self,
        limit_usd: float | None,
        ttl_seconds: float = 3600,
        clock: Callable[[], float] = time.monotonic,
        max_sessions: int = 10000,
    ):
        self.limit = None if limit_usd is None else _amount(limit_usd)
        self._clock = clock
        self._accounts: ExpiringMap[_Account] = ExpiringMap(
            ttl_seconds, max_sessions, keep=lambda account: account.holds > 0
        )

    def _account(self, sid: str) -> _Account:
        now = self._clock()
        account = self._accounts.get(sid, now, refresh=True)
        if account is None:
            account = _Account()
            self._accounts.set(sid, account, now)
        return account

    def spent(self, sid: str) -> float:
        """USD actually spent in this session (holds not included)."""
        account = self._accounts.get(sid, self._clock())
        return account.spent if account is not None else 0.0

    def remaining(self, sid: str) -> float | None:
        """USD still available (limit - spent - held, never negative); None without a limit."""
        if self.limit is None:
            return None
        account = self._accounts.get(sid, self._clock())
        if account is None:
            return self.limit
        return max(0.0, self.limit - account.spent - account.held)

    def record(self, sid: str, usd: float) -> None:
        """Add ``usd`` to the session's spend without a reservation."""
        self._account(sid).spent += _amount(usd)

    def reserve(self, sid: str, usd: float) -> Reservation:
        """Hold ``usd`` against the budget; :class:`BudgetExceeded` if it does not fit.

        A zero estimate (the free model) always fits.
        """
        amount = _amount(usd)
        self._hold(sid, amount, "est").holds += 1
        return Reservation(self, sid, amount)

    def _hold(self, sid: str, amount: float, what: str) -> _Account:
        """Add ``amount`` to the session's holds; :class:`BudgetExceeded` if it does not fit."""
        account = self._account(sid)
        if self.limit is not None and amount > 0:
            projected = account.spent + account.held + amount
            if projected > self.limit + _EPSILON:
                held = f" + in flight ${account.held:.4f}" if account.held else ""
                raise BudgetExceeded(
                    f"ClawRouter cost cap exceeded: projected spend ${projected:.4f}"
                    f" (spent ${account.spent:.4f}{held} + {what} ${amount:.4f})"
                    f" would exceed limit ${self.limit:.2f}"
                )
        account.held += amount
        return account

    def _settle(self, sid: str, held: float, actual: float) -> None:
        account = self._account(sid)
        account.holds = max(0, account.holds - 1)
        account.held = max(0.0, account.held - held) if account.holds else 0.0
        account.spent += actual
