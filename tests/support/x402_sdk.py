"""The official x402 SDK wired to the in-memory ledger: requirements, verify and settle."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from x402 import x402Facilitator, x402ResourceServer
from x402.http.utils import (
    decode_payment_signature_header,
    encode_payment_required_header,
    encode_payment_response_header,
)
from x402.mechanisms.evm.constants import ERR_INSUFFICIENT_BALANCE
from x402.mechanisms.evm.exact.facilitator import ExactEvmScheme as ExactFacilitator
from x402.mechanisms.evm.exact.server import ExactEvmScheme as ExactServer
from x402.mechanisms.evm.exact.v1.facilitator import ExactEvmSchemeV1 as ExactFacilitatorV1
from x402.schemas import AssetAmount, PaymentPayload, ResourceConfig, ResourceInfo
from x402.schemas.v1 import PaymentPayloadV1, PaymentRequiredV1, PaymentRequirementsV1

from .ledger import Ledger, LedgerSigner, Settlement

if TYPE_CHECKING:
    from .x402_upstream import X402TestUpstream

V1_NAMES = {"eip155:8453": "base", "eip155:84532": "base-sepolia"}


@dataclass
class Rejection:
    """Why the SDK refused a payment, and who was asked for how much."""

    reason: str
    payer: str | None = None
    amount: int = 0


class SdkStack:
    """SDK resource server + facilitator (v2, and v1 for legacy peers) for one network."""

    def __init__(self, network: str, ledger: Ledger):
        self.network = network
        self.ledger = ledger
        self.signer = LedgerSigner(ledger, int(network.split(":")[1]), set())
        self.facilitator = x402Facilitator().register([network], ExactFacilitator(self.signer))
        self.v1_name = V1_NAMES.get(network, network)
        self.facilitator.register_v1([self.v1_name], ExactFacilitatorV1(self.signer))
        self.server = x402ResourceServer(self.facilitator)
        self.server.register(network, ExactServer())
        self.server.initialize()

    def requirements(self, up: X402TestUpstream, usd: float, url: Any) -> list[Any]:
        """The ``accepts`` list for a price in USD."""
        amount = str(round(usd * 1_000_000))
        extra = {"name": up.token_name, "version": up.token_version}
        if up.protocol == 1:
            return [PaymentRequirementsV1(
                scheme="exact", network=self.v1_name, max_amount_required=amount,
                resource=str(url), description="test resource", mime_type="application/json",
                pay_to=up.pay_to, max_timeout_seconds=up.max_timeout_seconds, asset=up.asset,
                extra=extra)]
        return self.server.build_payment_requirements(ResourceConfig(
            scheme="exact", pay_to=up.pay_to, network=up.network,
            price=AssetAmount(amount=amount, asset=up.asset, extra=extra),
            max_timeout_seconds=up.max_timeout_seconds))

    async def payment_required(self, up: X402TestUpstream, requirements: list[Any], url: Any,
                               error: str) -> web.Response:
        """A 402 in the peer's protocol version."""
        usd = int(_amount(requirements[0])) / 1_000_000
        body = {"error": "Payment Required",
                "price": {"amount": f"{usd:.6f}", "currency": "USD"}}
        if up.protocol == 1:
            v1 = PaymentRequiredV1(error=error, accepts=requirements)
            return web.json_response(v1.model_dump(by_alias=True, exclude_none=True), status=402)
        resource = ResourceInfo(url=str(url), description="test resource",
                                mime_type="application/json")
        required = await self.server.create_payment_required_response(
            requirements, resource, error)
        return web.json_response(body, status=402, headers={
            "PAYMENT-REQUIRED": encode_payment_required_header(required)})

    async def verify(self, up: X402TestUpstream, header: str,
                     requirements: list[Any]) -> tuple[Any, Any] | Rejection:
        """(payload, matched requirements) when the SDK accepts the payment."""
        try:
            payload = decode_payment_signature_header(header)
        except Exception as exc:
            return Rejection(f"invalid_payment_header: {exc}")
        try:
            if up.protocol == 1:
                match = _match_v1(requirements, payload)
            elif isinstance(payload, PaymentPayload):
                match = self.server.find_matching_requirements(requirements, payload)
            else:
                match = None
            if match is None:
                return Rejection("No matching payment requirements", _payer(payload))
            if up.protocol == 1:
                result = await self.facilitator.verify(payload, match)
            else:
                result = await self.server.verify_payment(payload, match)
        except Exception as exc:
            return Rejection(f"verification_error: {exc}", _payer(payload))
        if not result.is_valid:
            return Rejection(result.invalid_reason or "invalid", _payer(payload),
                             int(_amount(match)))
        return payload, match

    async def settle(self, up: X402TestUpstream, payload: Any,
                     requirements: Any) -> tuple[dict[str, str], Settlement | None]:
        """Settle through the SDK; returns the response headers and the ledger entry."""
        if up.protocol == 1:
            result = await self.facilitator.settle(payload, requirements)
            name = "X-PAYMENT-RESPONSE"
        else:
            result = await self.server.settle_payment(payload, requirements)
            name = "PAYMENT-RESPONSE"
        headers = {name: encode_payment_response_header(result)}
        if not result.success:
            return headers, None
        found = [s for s in self.ledger.settlements if s.transaction == result.transaction]
        return headers, found[0] if found else None


def _amount(requirements: Any) -> str:
    return getattr(requirements, "amount", None) or requirements.max_amount_required


def _payer(payload: Any) -> str | None:
    try:
        return payload.payload["authorization"]["from"]
    except (AttributeError, KeyError, TypeError):
        return None


def _match_v1(requirements: list[Any], payload: Any) -> Any:
    if not isinstance(payload, PaymentPayloadV1):
        return None
    for req in requirements:
        if req.scheme == payload.scheme and req.network == payload.network:
            return req
    return None


def blockrun_failure_body(rejection: Rejection, ledger: Ledger) -> dict[str, Any]:
    """BlockRun's answer to a rejected payment (as ClawRouter's transformPaymentError reads it)."""
    if rejection.reason == ERR_INSUFFICIENT_BALANCE:
        have = ledger.balance(rejection.payer) if rejection.payer else 0
        details = {"isValid": False, "invalidReason": "insufficient_funds",
                   "invalidMessage": f"insufficient balance: {have} < {rejection.amount}",
                   "payer": rejection.payer}
        code = "PAYMENT_UNFUNDED"
    else:
        details = {"isValid": False, "invalidReason": "invalid_payload",
                   "invalidMessage": rejection.reason, "payer": rejection.payer}
        code = "PAYMENT_INVALID"
    return {"error": "Payment verification failed",
            "details": "Verification failed: " + json.dumps(details) + "\n",
            "sdkReason": rejection.reason, "code": code}
