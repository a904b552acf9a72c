"""What the x402 client hands back: the upstream response and what was paid for it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..errors import UpstreamError, UpstreamTimeout

SETTLED, UNCONFIRMED, REFUSED = "settled", "unconfirmed", "refused"


@dataclass(frozen=True)
class PaymentRecord:
    """One signed payment and what became of it (amounts in USD and atomic units).

    ``status``: ``settled`` (the receipt says so), ``unconfirmed`` (it may have moved funds:
    no receipt, a receipt saying failed or pending, or no answer at all) or ``refused`` (the
    upstream turned it down or did not charge it: nothing moved)."""

    amount_usd: float
    amount_atomic: int
    network: str
    asset: str
    pay_to: str
    payer: str
    transaction: str | None
    status: str
    nonce: str

    @property
    def settled(self) -> bool:
        """The upstream confirmed settlement in PAYMENT-RESPONSE."""
        return self.status == SETTLED

    @property
    def spent_usd(self) -> float:
        """What counts as spent: the amount unless the payment was refused."""
        return 0.0 if self.status == REFUSED else self.amount_usd


def transport_error(exc: BaseException, host: str) -> UpstreamError:
    """The clean error for a connection problem or timeout."""
    if isinstance(exc, asyncio.TimeoutError):
        return UpstreamTimeout(f"upstream {host} did not answer in time")
    detail = str(exc) or type(exc).__name__
    return UpstreamError(f"cannot reach upstream {host}: {detail}")


class UpstreamResponse:
    """The final upstream answer (any status except a payment 402)."""

    def __init__(self, raw: aiohttp.ClientResponse, payment: PaymentRecord | None, host: str):
        self._raw = raw
        self._host = host
        self._body: bytes | None = None
        self.status: int = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self.payment = payment
        self.content: aiohttp.StreamReader = raw.content

    async def read(self) -> bytes:
        """The whole body (connection problems become UpstreamError/UpstreamTimeout)."""
        if self._body is None:
            try:
                self._body = await self._raw.read()
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise transport_error(exc, self._host) from None
        return self._body

    async def json(self) -> Any:
        """The body parsed as JSON (UpstreamError when it is not JSON)."""
        data = await self.read()
        try:
            return json.loads(data)
        except (UnicodeDecodeError, ValueError):
            raise UpstreamError(
                f"upstream {self._host} answered {self.status} with a non-JSON body") from None

    def release(self) -> None:
        self._raw.release()

    def __repr__(self) -> str:
        return f"UpstreamResponse(status={self.status}, payment={self.payment})"
