"""Cost-aware tier choice: from calibrated p(tier), the tier with the lowest expected loss.

For each candidate tier ``t`` the expected loss is

    price(t) + sum over tiers k of p(k) * (under * max(0, k - t) + over * max(0, t - k))

``price(t)`` is what the profile's model for ``t`` costs for a typical request, as a share of
the baseline (premium) model's price for the same tokens. ``under`` is the quality lost per
tier a request is routed below what it needs, ``over`` the (small) cost of each tier above it
beyond the price. Under-routing is penalised more than over-routing, and per profile: eco
accepts more risk (a low ``under``), premium less (a high one). The penalties live in
``data/routing.yaml`` under ``penalties`` and were tuned on the corpus's validation split.
"""

from __future__ import annotations

from typing import NamedTuple

from ..catalog import Catalog
from .settings import TIERS

# a typical request: the tokens at which tier prices are compared
REFERENCE_INPUT_TOKENS = 1500
REFERENCE_OUTPUT_TOKENS = 600


class Policy(NamedTuple):
    """The tier choice of one profile: relative tier prices and its two penalties."""

    prices: tuple[float, ...]  # per tier, share of the baseline model's price
    under: float
    over: float

    def choose(self, probabilities: tuple[float, ...] | list[float]) -> int:
        """Index (into TIERS) of the tier with the lowest expected loss; the lower tier wins
        a tie."""
        best, best_loss = 0, 0.0
        tiers = len(self.prices)
        for t in range(tiers):
            loss = self.prices[t]
            for k in range(tiers):
                if k > t:
                    loss += probabilities[k] * self.under * (k - t)
                elif k < t:
                    loss += probabilities[k] * self.over * (t - k)
            if t == 0 or loss < best_loss:
                best, best_loss = t, loss
        return best


def tier_prices(table: dict[str, tuple[str, ...]], catalog: Catalog) -> tuple[float, ...]:
    """Each tier's primary model price at the reference tokens, over the baseline's."""
    baseline = catalog.chat[catalog.baseline_model].cost(REFERENCE_INPUT_TOKENS,
                                                         REFERENCE_OUTPUT_TOKENS)
    prices = []
    for tier in TIERS:
        cost = catalog.chat[table[tier][0]].cost(REFERENCE_INPUT_TOKENS, REFERENCE_OUTPUT_TOKENS)
        prices.append(cost / baseline if baseline > 0 else 0.0)
    return tuple(prices)


def policies(tables: dict[str, dict[str, tuple[str, ...]]],
             penalties: dict[str, tuple[float, float]], catalog: Catalog) -> dict[str, Policy]:
    """A :class:`Policy` per profile that has penalties (its own tier table's prices)."""
    return {profile: Policy(tier_prices(tables[profile], catalog), under, over)
            for profile, (under, over) in penalties.items()}
