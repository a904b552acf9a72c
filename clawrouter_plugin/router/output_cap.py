"""The output cap: how many output tokens a chat request is sent upstream with, and priced at.

The upstream is paid before it answers, so it prices a request by its output cap
(``max_completion_tokens`` / ``max_tokens``, at most the model's own maximum), not by the
tokens the answer really uses. An agent host that sends the model's whole output limit
(OpenClaw sends 128,000) would pay for all of it on every turn. The router therefore clamps
the cap to a ceiling for the request's tier (the general ceiling for an explicit model) and
supplies that ceiling when the request sets no cap, so that the price estimate, the spend
guard, the usage record and the forwarded request all use the same number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

DEFAULT_MAX_OUTPUT_TOKENS = 8192
# Why these: SIMPLE answers (greetings, look-ups) are short, but a thinking model spends some
# hidden tokens first and one agent tool call may carry a small file; MEDIUM is the general
# ceiling; COMPLEX may write a long file or a refactor in one turn, and REASONING models spend
# thousands of hidden reasoning tokens before the answer, which is lost when the cap cuts in.
DEFAULT_TIER_OUTPUT_TOKENS: Mapping[str, int] = MappingProxyType(
    {"SIMPLE": 4096, "MEDIUM": 8192, "COMPLEX": 16384, "REASONING": 16384})


@dataclass(frozen=True)
class OutputCaps:
    """Output ceilings: one per tier for routed requests, ``general`` for the rest."""

    general: int = DEFAULT_MAX_OUTPUT_TOKENS
    tiers: Mapping[str, int] = field(default_factory=lambda: DEFAULT_TIER_OUTPUT_TOKENS)

    def ceiling(self, tier: str) -> int:
        """The largest output cap for ``tier`` ("DIRECT" and unknown tiers: ``general``)."""
        return self.tiers.get(tier, self.general)

    def clamp(self, requested: int, tier: str) -> int:
        """The cap to send and price: ``requested`` (0 = the request set none) at most the
        tier's ceiling; the ceiling itself when the request set no cap."""
        ceiling = self.ceiling(tier)
        return requested if 0 < requested < ceiling else ceiling

