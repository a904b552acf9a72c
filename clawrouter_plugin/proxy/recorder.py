"""Turns finished requests into usage-log records (cost actually paid vs the Opus baseline)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..usage import UsageLog, UsageRecord, utc_now_iso
from .chat_format import token_counts

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..router import RoutingDecision
    from .upstream_chat import Attempt


class UsageRecorder:
    """Writes one usage record per answered request."""

    def __init__(self, log: UsageLog, catalog: "Catalog") -> None:
        self.log = log
        self.baseline = catalog.baseline

    def chat(self, *, session: str, requested: str, decision: "RoutingDecision",
             attempt: "Attempt", latency_ms: float) -> None:
        """Record an upstream answer. Its baseline is what the baseline model would have been
        charged for the same request: the same input and the same output cap (the upstream
        prices the cap, not the tokens used), so cost and baseline compare like for like."""
        baseline = self.baseline.charge(attempt.input_tokens, decision.output_tokens)
        self.log.append(UsageRecord(
            timestamp=utc_now_iso(), session=session, requested_model=requested,
            model=attempt.model, tier=decision.tier, input_tokens=attempt.input_tokens,
            output_tokens=attempt.output_tokens, cost=attempt.paid_usd, baseline_cost=baseline,
            savings=baseline - attempt.paid_usd, latency_ms=round(latency_ms, 2),
            cache_hit=False, fallbacks=attempt.fallbacks, profile=decision.profile,
        ))

    def cache_hit(self, *, session: str, requested: str, model: str, tier: str,
                  completion: dict, latency_ms: float) -> None:
        """Record a reply served from the response cache (nothing paid)."""
        input_tokens, output_tokens = token_counts(completion, 0, 0)
        baseline = self.baseline.cost(input_tokens, output_tokens)
        self.log.append(UsageRecord(
            timestamp=utc_now_iso(), session=session, requested_model=requested, model=model,
            tier=tier, input_tokens=input_tokens, output_tokens=output_tokens, cost=0.0,
            baseline_cost=baseline, savings=baseline, latency_ms=round(latency_ms, 2),
            cache_hit=True, fallbacks=0, profile=None,
        ))

