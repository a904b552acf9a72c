"""x402 wire format: base64 JSON headers, 402 requirements (v2 header or v1 body), receipts.

Parsing is strict and never raises anything but :class:`WireError`, whose message says what
was wrong (never a traceback, never secrets).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

REQUIRED_HEADER = "PAYMENT-REQUIRED"
SIGNATURE_HEADER = "PAYMENT-SIGNATURE"
RESPONSE_HEADER = "PAYMENT-RESPONSE"
V1_SIGNATURE_HEADER = "X-PAYMENT"
V1_RESPONSE_HEADER = "X-PAYMENT-RESPONSE"
MAX_HEADER_CHARS = 64 * 1024
USDC_DECIMALS = 6
# v1 spelled networks by name; the policy works in CAIP-2.
V1_NETWORKS = {"base": "eip155:8453", "base-sepolia": "eip155:84532", "ethereum": "eip155:1"}

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_AMOUNT = re.compile(r"[0-9]{1,30}")
_INSUFFICIENT = re.compile(
    r"insufficient[_ ](funds|balance)|transfer amount exceeds balance|payment_unfunded",
    re.IGNORECASE)


class WireError(ValueError):
    """A payment message that cannot be understood."""


@dataclass(frozen=True)
class Requirement:
    """One ``accepts`` entry. ``raw`` is the entry verbatim (echoed as ``accepted``)."""

    scheme: str
    network: str  # CAIP-2
    asset: str
    amount: int  # atomic units
    pay_to: str
    max_timeout_seconds: int
    extra: Mapping[str, Any]
    raw: Mapping[str, Any] = field(repr=False)
    wire_network: str = ""  # as sent (v1 names such as "base")

    @property
    def usd(self) -> float:
        return self.amount / 10**USDC_DECIMALS

    def describe(self) -> str:
        """``$0.001000 (1000 units of <asset> on <network> to <payTo>)``."""
        return (f"${self.usd:.6f} ({self.amount} units of {self.asset} on {self.network} "
                f"to {self.pay_to})")


@dataclass(frozen=True)
class PaymentRequired:
    """A parsed 402: usable entries, plus a description of each unusable one."""

    version: int
    accepts: tuple[Requirement, ...]
    malformed: tuple[str, ...]
    resource: Mapping[str, Any] | None
    extensions: Mapping[str, Any] | None
    error: str | None


def encode_header(value: Mapping[str, Any]) -> str:
    """base64(JSON) as x402 headers carry it."""
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode("ascii")


def decode_header(value: str, name: str) -> dict[str, Any]:
    """The JSON object inside a base64 header; :class:`WireError` otherwise."""
    text = value.strip()
    if not text or len(text) > MAX_HEADER_CHARS:
        raise WireError(f"{name} header is empty or too large")
    try:
        padded = text + "=" * (-len(text) % 4)
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise WireError(f"{name} header is not valid base64") from None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise WireError(f"{name} header is not valid JSON") from None
    if not isinstance(data, dict):
        raise WireError(f"{name} header is not a JSON object")
    return data


def _text(entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise WireError(f"missing or invalid '{key}'")
    return value


def parse_requirement(entry: Any, version: int) -> Requirement:
    """One ``accepts`` entry; :class:`WireError` says which field is wrong."""
    if not isinstance(entry, dict):
        raise WireError("entry is not an object")
    scheme = _text(entry, "scheme")
    wire_network = _text(entry, "network")
    network = V1_NETWORKS.get(wire_network, wire_network) if version == 1 else wire_network
    amount_key = "maxAmountRequired" if version == 1 else "amount"
    amount_value = entry.get(amount_key)
    if isinstance(amount_value, int) and not isinstance(amount_value, bool):
        amount_value = str(amount_value)
    if not isinstance(amount_value, str) or not _AMOUNT.fullmatch(amount_value):
        raise WireError(f"'{amount_key}' is not a whole number of atomic units")
    asset, pay_to = _text(entry, "asset"), _text(entry, "payTo")
    if not _ADDRESS.fullmatch(pay_to):
        raise WireError("'payTo' is not an EVM address")
    if not _ADDRESS.fullmatch(asset):
        raise WireError("'asset' is not an EVM token address")
    timeout = entry.get("maxTimeoutSeconds")
    if not isinstance(timeout, int) or isinstance(timeout, bool):
        raise WireError("missing or invalid 'maxTimeoutSeconds'")
    extra = entry.get("extra") or {}
    if not isinstance(extra, dict):
        raise WireError("'extra' is not an object")
    return Requirement(scheme=scheme, network=network, asset=asset, amount=int(amount_value),
                       pay_to=pay_to, max_timeout_seconds=timeout, extra=extra, raw=entry,
                       wire_network=wire_network)


def _requirements(data: Mapping[str, Any], version: int, where: str) -> PaymentRequired:
    accepts = data.get("accepts")
    if not isinstance(accepts, list) or not accepts:
        raise WireError(f"{where} has no 'accepts' list")
    good, bad = [], []
    for index, entry in enumerate(accepts[:32]):
        try:
            good.append(parse_requirement(entry, version))
        except WireError as exc:
            bad.append(f"accepts[{index}]: {exc}")
    resource = data.get("resource")
    extensions = data.get("extensions")
    error = data.get("error")
    return PaymentRequired(
        version=version, accepts=tuple(good), malformed=tuple(bad),
        resource=resource if isinstance(resource, dict) else None,
        extensions=extensions if isinstance(extensions, dict) and extensions else None,
        error=error if isinstance(error, str) else None)


def _is_version(data: Mapping[str, Any], number: int) -> bool:
    """Whether ``x402Version`` is exactly the JSON integer ``number`` (not true, not 2.0)."""
    version = data.get("x402Version")
    return type(version) is int and version == number


def parse_payment_required(headers: Mapping[str, str], body: bytes) -> PaymentRequired:
    """The requirements of a 402: the v2 ``PAYMENT-REQUIRED`` header, else a v1 JSON body."""
    header = headers.get(REQUIRED_HEADER)
    if header is not None:
        data = decode_header(header, REQUIRED_HEADER)
        if not _is_version(data, 2):
            raise WireError(f"{REQUIRED_HEADER} has unsupported x402Version "
                            f"{data.get('x402Version')!r}")
        return _requirements(data, 2, REQUIRED_HEADER)
    try:
        data = json.loads(body) if body else None
    except (UnicodeDecodeError, ValueError):
        data = None
    if isinstance(data, dict) and _is_version(data, 1):
        return _requirements(data, 1, "the 402 body")
    raise WireError("402 without payment requirements (no PAYMENT-REQUIRED header and no "
                    "x402 v1 body)")


def parse_settlement(headers: Mapping[str, str]) -> dict[str, Any] | None:
    """The decoded ``PAYMENT-RESPONSE`` (or v1 ``X-PAYMENT-RESPONSE``), None if absent/bad."""
    for name in (RESPONSE_HEADER, V1_RESPONSE_HEADER):
        value = headers.get(name)
        if value is not None:
            try:
                return decode_header(value, name)
            except WireError:
                return None
    return None


def failure_reason(headers: Mapping[str, str], body: bytes) -> str:
    """Why a payment was refused, from the receipt, the fresh 402, or the body."""
    parts: list[str] = []
    settlement = parse_settlement(headers)
    if settlement and not settlement.get("success", True):
        parts.append(str(settlement.get("errorReason") or "settlement failed"))
    if headers.get(REQUIRED_HEADER):
        try:
            error = decode_header(headers[REQUIRED_HEADER], REQUIRED_HEADER).get("error")
            if isinstance(error, str) and error:
                parts.append(error)
        except WireError:
            pass
    try:
        data = json.loads(body) if body else None
    except (UnicodeDecodeError, ValueError):
        data = None
    if isinstance(data, dict):
        for key in ("error", "details", "sdkReason", "code"):
            value = data.get(key)
            if isinstance(value, str) and value and value not in parts:
                parts.append(value.strip()[:300])
    elif body:
        parts.append(body[:300].decode("utf-8", "replace").strip())
    return "; ".join(parts) or "payment rejected"


def is_insufficient_funds(reason: str) -> bool:
    """Whether an upstream payment failure means the wallet lacks funds."""
    return bool(_INSUFFICIENT.search(reason))
