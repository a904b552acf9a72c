"""Turns finished requests into usage-log records (cost actually paid vs the Opus baseline).

Every payment signed for a request ends up in exactly one record: the answer's record
carries the payment that bought it, and :func:`record_payments` writes one record for each
other payment of the request's :class:`~clawrouter_plugin.payment.tab.PaymentTab` (an
attempt that paid and then failed, a refused payment, a request that got no answer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..usage import UsageLog, UsageRecord, utc_now_iso
from .chat_format import token_counts

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..payment.tab import PaymentTab
    from ..router import RoutingDecision
    from .upstream_chat import Attempt


class UsageRecorder:
    """Writes one usage record per answered request and per other signed payment."""

    def __init__(self, log: UsageLog, catalog: "Catalog") -> None:
        self.log = log
        self.baseline = catalog.baseline

    def chat(self, *, session: str, requested: str, decision: "RoutingDecision",
             attempt: "Attempt", latency_ms: float, tab: "PaymentTab") -> None:
        """Record an upstream answer, with the payment that bought it (taken off ``tab``).
        Its baseline is what the baseline model would have been charged for the same request:
        the same input and the same output cap (the upstream prices the cap, not the tokens
        used), so cost and baseline compare like for like."""
        baseline = self.baseline.charge(attempt.input_tokens, decision.output_tokens)
        payment = attempt.payment
        tab.take(payment)
        self.log.append(UsageRecord(
            timestamp=utc_now_iso(), session=session, requested_model=requested,
            model=attempt.model, tier=decision.tier, input_tokens=attempt.input_tokens,
            output_tokens=attempt.output_tokens, cost=attempt.paid_usd, baseline_cost=baseline,
            savings=baseline - attempt.paid_usd, latency_ms=round(latency_ms, 2),
            cache_hit=False, fallbacks=attempt.fallbacks, profile=decision.profile,
            paid=payment.amount_usd if payment else 0.0,
            payment=payment.status if payment else None,
            transaction=payment.transaction if payment else None,
            nonce=payment.nonce if payment else None, key=tab.key,
        ))

    def cache_hit(self, *, session: str, requested: str, model: str, tier: str,
                  completion: dict, latency_ms: float, key: str | None = None) -> None:
        """Record a reply served from the response cache (nothing paid) to the API key
        ``key``, if any."""
        input_tokens, output_tokens = token_counts(completion, 0, 0)
        baseline = self.baseline.cost(input_tokens, output_tokens)
        self.log.append(UsageRecord(
            timestamp=utc_now_iso(), session=session, requested_model=requested, model=model,
            tier=tier, input_tokens=input_tokens, output_tokens=output_tokens, cost=0.0,
            baseline_cost=baseline, savings=baseline, latency_ms=round(latency_ms, 2),
            cache_hit=True, fallbacks=0, profile=None, key=key,
        ))


def record_payments(log: UsageLog, tab: "PaymentTab", *, requested: str, tier: str,
                    latency_ms: float, profile: str | None = None) -> None:
    """One record for each payment of ``tab`` that no record carries yet. No tokens are
    counted, and the baseline is the cost itself: no saving is claimed for them."""
    for model, payment in tab.rest():
        cost = payment.spent_usd
        log.append(UsageRecord(
            timestamp=utc_now_iso(), session=tab.session, requested_model=requested or model,
            model=model, tier=tier, input_tokens=0, output_tokens=0, cost=cost,
            baseline_cost=cost, savings=0.0, latency_ms=round(latency_ms, 2), cache_hit=False,
            fallbacks=0, profile=profile, kind=tab.kind,
            path=tab.path if tab.kind == "forward" else None, paid=payment.amount_usd,
            payment=payment.status, transaction=payment.transaction, nonce=payment.nonce,
            key=tab.key,
        ))
