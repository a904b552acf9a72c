"""Spend budgets (``maxCostPerRun`` per session, and an API key's budgets): the interface and
its local implementation.

A request first :meth:`~SpendTracker.reserve`\\ s its estimated cost; the hold counts against
every budget the request spends from (:mod:`.budget`) until the request
:meth:`~Reservation.commit`\\ s what it actually paid or :meth:`~Reservation.release`\\ s the
hold. A payment about to be signed is first :meth:`~Reservation.claim`\\ ed, which raises the
hold to its amount if every budget allows. Concurrent requests therefore cannot together
overspend. An account idle for its lifetime (with nothing held) starts afresh.

Two implementations share this interface and :class:`Reservation`: :class:`SpendTracker`
(this process only, the default) and :class:`~.redis_spend.RedisSpend` (team mode: one
budget for every process, claimed atomically in Redis). The methods are ``async`` for the
second; the local ones never wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .budget import EPSILON, Account, Budget, accounts_for, amount, over_budget, tightest
from .expiring import ExpiringMap

if TYPE_CHECKING:
    from ..keys.model import ApiKey


class Ledger(Protocol):
    """What a :class:`Reservation` asks of its backend."""

    async def _hold(self, reservation: Reservation, usd: float, what: str,
                    signing: bool = False) -> None:
        """Raise the reservation's hold to at least ``usd`` (``signing``: for a payment about
        to be signed); :class:`BudgetExceeded` if it does not fit, :class:`StateUnavailable`
        if it cannot be checked. Sets ``reservation.amount``."""

    async def _settle(self, reservation: Reservation, actual: float) -> None:
        """Drop the hold and count ``actual`` as spent; never raises for the backend's sake."""


class Spend(Protocol):
    """The spend interface the pipeline uses (both backends implement it)."""

    limit: float | None

    async def reserve(self, sid: str, usd: float, *, api_key: ApiKey | None = None
                      ) -> Reservation: ...

    async def remaining(self, sid: str, *, api_key: ApiKey | None = None) -> float | None: ...

    async def budget(self, sid: str, *, api_key: ApiKey | None = None) -> Budget | None: ...

    async def spent(self, sid: str) -> float: ...

    async def record(self, sid: str, usd: float, *, api_key: ApiKey | None = None) -> None: ...


class Reservation:
    """An estimate held against a request's budgets. Settle it once: the first
    :meth:`commit` or :meth:`release` counts, later calls do nothing. As an async context
    manager it releases the hold on exit unless committed.

    ``available`` is what the budgets left for this request when it was reserved (its own
    hold included), None when no limit applies: the most a payment for it may ask.
    """

    __slots__ = ("_ledger", "accounts", "sid", "amount", "available", "settled", "signed",
                 "hold_id")

    def __init__(self, ledger: Ledger, sid: str, accounts: tuple[Account, ...],
                 available: float | None, hold_id: str = "") -> None:
        self._ledger = ledger
        self.sid = sid
        self.accounts = accounts
        self.amount = 0.0
        self.available = available
        self.settled = False
        self.signed = False  # a payment was claimed: the hold may be money that moved
        self.hold_id = hold_id

    async def commit(self, actual_usd: float) -> None:
        """Release the hold and record ``actual_usd`` as spent."""
        actual = amount(actual_usd)
        if not self.settled:
            self.settled = True
            await self._ledger._settle(self, actual)

    async def claim(self, usd: float) -> None:
        """Hold at least ``usd`` (a payment about to be signed), before settling;
        :class:`BudgetExceeded` if the budgets cannot cover it with everything else."""
        await self._ledger._hold(self, amount(usd), "payment", signing=True)

    async def release(self) -> None:
        """Drop the hold without spending anything (the request failed or cost nothing)."""
        if not self.settled:
            self.settled = True
            await self._ledger._settle(self, 0.0)

    async def __aenter__(self) -> Reservation:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


@dataclass
class _Account:
    spent: float = 0.0
    held: float = 0.0
    holds: int = 0


class SpendTracker:
    """Budgets of this process only (``state.backend: local``). ``limit_usd`` is the
    session's ``maxCostPerRun`` (None = no limit)."""

    def __init__(
        self,
        limit_usd: float | None,
        ttl_seconds: float = 3600,
        clock: Callable[[], float] = time.monotonic,
        max_sessions: int = 10000,
    ):
        self.limit = None if limit_usd is None else amount(limit_usd)
        self.ttl = ttl_seconds
        self._clock = clock
        self._max = max_sessions
        self._maps: dict[float, ExpiringMap[_Account]] = {}  # one per account lifetime

    def _map(self, account: Account) -> ExpiringMap[_Account]:
        found = self._maps.get(account.ttl)
        if found is None:
            found = self._maps[account.ttl] = ExpiringMap(
                account.ttl, self._max, keep=lambda state: state.holds > 0)
        return found

    def _state(self, account: Account, create: bool = True) -> _Account | None:
        accounts = self._map(account)
        now = self._clock()
        state = accounts.get("\0".join(account.key), now, refresh=create)
        if state is None and create:
            state = _Account()
            accounts.set("\0".join(account.key), state, now)
        return state

    def _accounts(self, sid: str, api_key: ApiKey | None) -> tuple[Account, ...]:
        return accounts_for(sid, api_key, self.limit, self.ttl)

    def _left(self, accounts: tuple[Account, ...]) -> list[float | None]:
        left: list[float | None] = []
        for account in accounts:
            state = self._state(account, create=False)
            used = state.spent + state.held if state is not None else 0.0
            left.append(None if account.limit is None else account.limit - used)
        return left

    async def spent(self, sid: str) -> float:
        """USD actually spent in this session (holds not included)."""
        state = self._state(self._accounts(sid, None)[0], create=False)
        return state.spent if state is not None else 0.0

    async def budget(self, sid: str, *, api_key: ApiKey | None = None) -> Budget | None:
        """The tightest budget of a request by ``api_key`` in ``sid``; None without limits."""
        accounts = self._accounts(sid, api_key)
        return tightest(accounts, self._left(accounts))

    async def remaining(self, sid: str, *, api_key: ApiKey | None = None) -> float | None:
        """USD still available (limit - spent - held of the tightest budget, never
        negative); None without a limit."""
        found = await self.budget(sid, api_key=api_key)
        return None if found is None else found.remaining

    async def record(self, sid: str, usd: float, *, api_key: ApiKey | None = None) -> None:
        """Add ``usd`` to the spend of every budget of the request, without a reservation."""
        usd = amount(usd)
        for account in self._accounts(sid, api_key):
            self._state(account).spent += usd  # type: ignore[union-attr]

    async def reserve(self, sid: str, usd: float, *, api_key: ApiKey | None = None
                      ) -> Reservation:
        """Hold ``usd`` against every budget; :class:`BudgetExceeded` if one cannot take it.

        A zero estimate (the free model) always fits.
        """
        usd = amount(usd)
        accounts = self._accounts(sid, api_key)
        states = [self._state(account) for account in accounts]
        left = tightest(accounts, [None if account.limit is None else
                                   account.limit - state.spent - state.held  # type: ignore
                                   for account, state in zip(accounts, states)])
        reservation = Reservation(self, sid, accounts, None if left is None else left.remaining)
        self._raise(reservation, states, usd, "est")  # type: ignore[arg-type]
        for state in states:
            state.holds += 1  # type: ignore[union-attr]
        return reservation

    async def _hold(self, reservation: Reservation, usd: float, what: str,
                    signing: bool = False) -> None:
        if usd > reservation.amount:
            states = [self._state(account) for account in reservation.accounts]
            self._raise(reservation, states, usd, what)  # type: ignore[arg-type]

    @staticmethod
    def _raise(reservation: Reservation, states: list[_Account], usd: float, what: str) -> None:
        """Raise the reservation's hold to ``usd`` on every account, or on none."""
        extra = usd - reservation.amount
        if extra <= 0:
            return
        for account, state in zip(reservation.accounts, states):
            if account.limit is not None and state.spent + state.held + extra \
                    > account.limit + EPSILON:
                raise over_budget(account, state.spent, state.held, extra, what)
        for state in states:
            state.held += extra
        reservation.amount = usd

    async def _settle(self, reservation: Reservation, actual: float) -> None:
        for account in reservation.accounts:
            state = self._state(account)
            assert state is not None
            state.holds = max(0, state.holds - 1)
            state.held = max(0.0, state.held - reservation.amount) if state.holds else 0.0
            state.spent += actual
