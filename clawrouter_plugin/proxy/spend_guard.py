"""Before any money moves: fall back to the free model on an empty wallet, and keep each
session inside its ``maxCostPerRun`` budget (graceful: downgrade premium → auto → eco → free;
strict: refuse with 429)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import BudgetExceeded

if TYPE_CHECKING:
    from ..keys.model import ApiKey
    from ..router import RoutingDecision
    from ..services import Services

log = logging.getLogger("clawrouter.spend")

DOWNGRADE_ORDER = ("premium", "auto", "eco", "free")
MIN_CHARGE_USD = 0.001  # the smallest amount the upstream charges for a paid request
BALANCE_REFRESH_SECONDS = 5.0


class SpendGuard:
    """Adjusts a routing decision to what the wallet and the session budget allow."""

    def __init__(self, services: "Services") -> None:
        self.services = services
        self._checked_at = float("-inf")
        self._refresh: asyncio.Task | None = None

    async def check(
        self, body: dict, name: str, decision: "RoutingDecision", sid: str,
        as_tried: Callable[["RoutingDecision"], "RoutingDecision"],
        excluded: frozenset[str],
        api_key: "ApiKey | None" = None,
    ) -> tuple["RoutingDecision", str | None]:
        """The decision to use and an optional notice for the user; raises BudgetExceeded.
        ``as_tried`` puts a replacement decision's chain in the order it will be tried, so
        the budget is checked against, and a notice names, the model really tried first;
        replacements are routed without the ``excluded`` models, like ``decision``.
        The budget is the tightest of the session's and ``api_key``'s (see state/budget.py)."""
        services = self.services
        notice = None
        if decision.tier != "DIRECT" and decision.cost_estimate > 0 and self.wallet_empty():
            if not body.get("tools"):
                decision = as_tried(
                    services.router.route(body, "free", excluded=excluded))
                notice = "wallet empty: using the free model; fund your wallet to use paid models"
        if _charge(decision) == 0:  # free: fits any budget, no need to read one
            return decision, notice
        budget = await services.spend.budget(sid, api_key=api_key)
        if budget is None or _charge(decision) <= budget.remaining:
            return decision, notice
        remaining, limit = budget.remaining, budget.limit
        if services.config.max_cost_per_run_mode == "strict":
            raise BudgetExceeded(
                f"ClawRouter cost cap exceeded: this request is estimated at "
                f"${_charge(decision):.4f} but only ${remaining:.4f} of {budget.label} "
                f"(${limit:.2f}) remains"
            )
        for profile in self._cheaper_profiles(decision):
            candidate = as_tried(
                services.router.route(body, profile, excluded=excluded))
            if _charge(candidate) <= remaining:
                note = (f"budget: ${remaining:.4f} of ${limit:.2f} left, using {candidate.model} "
                        f"({profile}) instead of {decision.model}")
                return candidate, note
        raise BudgetExceeded(
            f"ClawRouter budget exhausted: ${remaining:.4f} remaining of {budget.label} "
            f"(${limit:.2f}), and no model that can answer this request fits. Raise that "
            "budget or start a new session.",
            code="budget_exhausted",
        )

    @staticmethod
    def _cheaper_profiles(decision: "RoutingDecision") -> tuple[str, ...]:
        if decision.profile in DOWNGRADE_ORDER:
            return DOWNGRADE_ORDER[DOWNGRADE_ORDER.index(decision.profile) + 1 :]
        return DOWNGRADE_ORDER[1:] if decision.profile == "agentic" else ("free",)

    def wallet_empty(self) -> bool:
        """Last known balance says empty. Never waits for the RPC: refreshes in the background."""
        now = time.monotonic()
        if now - self._checked_at > BALANCE_REFRESH_SECONDS and (
            self._refresh is None or self._refresh.done()
        ):
            self._checked_at = now
            self._refresh = asyncio.get_running_loop().create_task(self._update_balance())
        return self.services.balance.peek().empty

    def mark_empty(self) -> None:
        """The upstream said the wallet cannot pay: treat it as empty until the RPC says more."""
        self.services.balance.mark_empty()
        self._checked_at = time.monotonic()
        self._refresh = asyncio.get_running_loop().create_task(self._update_balance())

    async def _update_balance(self) -> None:
        try:
            info = await self.services.balance.get()
        except Exception:  # noqa: BLE001 - a balance problem must never break a request
            log.debug("balance check failed", exc_info=True)
            return
        callback = self.services.on_low_balance
        if info.low and callback is not None:
            callback(info)


def charge(estimate: float) -> float:
    """What an estimate will likely be charged: at least the minimum charge, unless free."""
    return 0.0 if estimate <= 0 else max(estimate, MIN_CHARGE_USD)


def _charge(decision: "RoutingDecision") -> float:
    """What a decision will likely be charged (see :func:`charge`)."""
    return charge(decision.cost_estimate)
