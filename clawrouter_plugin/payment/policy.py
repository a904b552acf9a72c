"""What the wallet may sign. Checked before every signature; a refusal signs nothing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..config import BASE_MAINNET, BASE_USDC, PaymentConfig
from ..errors import PaymentRefused
from .wire import PaymentRequired, Requirement

# EIP-712 domains of known tokens, used when a 402 leaves out ``extra.name/version``.
KNOWN_DOMAINS = {(BASE_MAINNET, BASE_USDC.lower()): ("USD Coin", "2")}
MIN_TIMEOUT_SECONDS = 10  # the facilitator wants validBefore >= now + 6
MAX_TIMEOUT_SECONDS = 3600  # longer-lived authorizations are refused


@dataclass(frozen=True)
class PaymentPolicy:
    """Allowed (network, asset) pairs, the per-request cap and an optional pinned payTo."""

    allowed: frozenset[tuple[str, str]]
    max_per_request_usd: float = 1.0
    pay_to: str | None = None

    @classmethod
    def from_config(cls, payment: PaymentConfig) -> PaymentPolicy:
        return cls.create([(a.network, a.asset) for a in payment.allowed_assets],
                          max_per_request_usd=payment.max_per_request_usd,
                          pay_to=payment.pay_to)

    @classmethod
    def create(cls, allowed: Iterable[tuple[str, str]], *, max_per_request_usd: float = 1.0,
               pay_to: str | None = None) -> PaymentPolicy:
        return cls(frozenset((network, asset.lower()) for network, asset in allowed),
                   max_per_request_usd, pay_to.lower() if pay_to else None)

    def problem(self, req: Requirement, max_amount_usd: float | None = None) -> str | None:
        """Why ``req`` may not be signed (None when it may)."""
        if req.scheme != "exact":
            return f"unsupported scheme '{req.scheme}' (only 'exact' is signed)"
        if (req.network, req.asset.lower()) not in self.allowed:
            allowed = ", ".join(f"{a} on {n}" for n, a in sorted(self.allowed)) or "nothing"
            return f"network/asset not allowed (payment.allowedAssets: {allowed})"
        if self.pay_to and req.pay_to.lower() != self.pay_to:
            return f"payTo is not the pinned payment.payTo {self.pay_to}"
        if req.amount <= 0:
            return "the amount is zero"
        if req.usd > self.max_per_request_usd:
            return f"above the per-request cap payment.maxPerRequestUsd ${self.max_per_request_usd}"
        if max_amount_usd is not None and req.usd > max_amount_usd + 1e-12:
            return f"above this request's limit ${max(max_amount_usd, 0):.6f}"
        if not MIN_TIMEOUT_SECONDS <= req.max_timeout_seconds <= MAX_TIMEOUT_SECONDS:
            return (f"invalid validity window maxTimeoutSeconds={req.max_timeout_seconds} "
                    f"(allowed {MIN_TIMEOUT_SECONDS}..{MAX_TIMEOUT_SECONDS})")
        if domain_of(req) is None:
            return "missing EIP-712 domain (extra.name / extra.version) for an unknown token"
        return None

    def choose(self, required: PaymentRequired, max_amount_usd: float | None = None
               ) -> Requirement:
        """The cheapest acceptable entry, else :class:`PaymentRefused` saying why."""
        acceptable = [r for r in required.accepts if self.problem(r, max_amount_usd) is None]
        if acceptable:
            return min(acceptable, key=lambda r: r.amount)
        reasons = [f"{r.describe()}: {self.problem(r, max_amount_usd)}" for r in required.accepts]
        reasons += list(required.malformed)
        raise PaymentRefused("payment refused, nothing was signed: " + "; ".join(reasons))


def domain_of(req: Requirement) -> tuple[str, str] | None:
    """(name, version) of the token's EIP-712 domain."""
    name, version = req.extra.get("name"), req.extra.get("version")
    if isinstance(name, str) and name and isinstance(version, str) and version:
        return name, version
    return KNOWN_DOMAINS.get((req.network, req.asset.lower()))
