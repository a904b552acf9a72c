"""A BlockRun-like x402 upstream on 127.0.0.1 whose payment side is the official ``x402`` SDK.

The SDK builds the 402 requirements, matches the client's ``accepted`` entry, verifies the
EIP-712 signature, time window, amount and payTo, and settles through
:class:`~tests.support.ledger.LedgerSigner` into an in-memory :class:`Ledger`. Our own
payment code is therefore checked against independent code.

Usage::

    async with X402TestUpstream() as up:          # or: up = await X402TestUpstream().start()
        up.ledger.fund(address, 10)               # dollars
        up.set_price("/v1/chat/completions", "0.002")
        up.set_handler("/v1/chat/completions", handlers.status(503))
        ... client with api_base=up.url ...
        assert up.ledger.total_paid(address) == 2000   # atomic USDC units
        assert up.count(path="/v1/chat/completions", paid=True) == 1

Prices are USD (str/float), ``None`` for free, or a callable ``price(call) -> USD|None``.
``protocol=1`` switches to a legacy v1 peer (402 body, ``X-PAYMENT``) verified by the SDK's v1
facilitator. ``failure_body="blockrun"`` (default) answers rejected payments like BlockRun
(``{"error": "Payment verification failed", "details": ...}``); ``"sdk"`` sends ``{}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from eth_utils import to_checksum_address

from . import handlers as h
from .ledger import Ledger, Settlement, current_path
from .local_server import LocalServer
from .x402_sdk import Rejection, SdkStack, blockrun_failure_body

BASE_MAINNET = "eip155:8453"
BASE_USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
CHAT_PATH = "/v1/chat/completions"
IMAGE_PATH = "/v1/images/generations"
IMAGE_EDIT_PATH = "/v1/images/image2image"

Price = str | float | None | Callable[["Call"], "str | float | None"]


@dataclass
class RecordedRequest:
    """One request the upstream received (402s included), for round-trip counting."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    paid: bool  # carried PAYMENT-SIGNATURE (or X-PAYMENT)
    status: int = 0
    settlement: Settlement | None = None
    rejection: str | None = None  # the SDK's reason when it refused the payment

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class _SettleFailed(Exception):
    def __init__(self, response: web.Response):
        self.response = response


@dataclass
class Call:
    """What a handler gets: the request, its body, and a way to stream after settling."""

    request: web.Request
    path: str
    body: bytes
    upstream: X402TestUpstream
    record: RecordedRequest
    _pending: Any = None  # (payload, requirements) to settle, when paid
    settlement: Settlement | None = None
    _json: Any = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        if not self._parsed:
            self._parsed = True
            try:
                self._json = json.loads(self.body) if self.body else None
            except ValueError:
                self._json = None
        return self._json

    async def settle(self) -> dict[str, str]:
        """Settle the verified payment now (once); returns the headers to send."""
        if self._pending is None:
            return {}
        pending, self._pending = self._pending, None
        return await self.upstream._settle(self, *pending)

    async def stream(self, status: int = 200, headers: dict[str, str] | None = None,
                     content_type: str = "text/event-stream") -> web.StreamResponse:
        """Settle, then start a streaming response carrying PAYMENT-RESPONSE."""
        extra = await self.settle()
        resp = web.StreamResponse(status=status, headers={
            "Content-Type": content_type, "Cache-Control": "no-cache", **extra,
            **(headers or {})})
        await resp.prepare(self.request)
        return resp


class X402TestUpstream(LocalServer):
    """The test upstream. See the module docstring."""

    def __init__(self, *, network: str = BASE_MAINNET, asset: str = BASE_USDC,
                 pay_to: str = "0x000000000000000000000000000000000000bEEF",
                 prefix: str = "/api", protocol: int = 2, failure_body: str = "blockrun",
                 max_timeout_seconds: int = 300, token_name: str = "USD Coin",
                 token_version: str = "2", image_mode: str = "url"):
        self.network, self.asset, self.pay_to = network, asset, to_checksum_address(pay_to)
        self.prefix, self.protocol, self.failure_body = prefix, protocol, failure_body
        self.max_timeout_seconds, self.image_mode = max_timeout_seconds, image_mode
        self.token_name, self.token_version = token_name, token_version
        self.ledger = Ledger()
        self.requests: list[RecordedRequest] = []
        self.prices: dict[str, Price] = {CHAT_PATH: "0.001", IMAGE_PATH: "0.04",
                                         IMAGE_EDIT_PATH: "0.02"}
        self.default_price: Price = None
        self.handlers: dict[str, h.Handler] = {CHAT_PATH: h.chat_handler,
                                               IMAGE_PATH: h.image_handler,
                                               IMAGE_EDIT_PATH: h.image_handler}
        self.default_handler: h.Handler = h.generic_handler
        self._stacks: dict[str, SdkStack] = {}

    # --- lifecycle -------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/files/{name}", self._file)
        app.router.add_route("*", self.prefix + "/{tail:.*}", self._dispatch)
        return app

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The API base to give the client (origin + prefix)."""
        return self.origin + self.prefix

    # --- configuration -----------------------------------------------------------------------
    def set_price(self, path: str, price: Price) -> None:
        self.prices[path] = price

    def set_handler(self, path: str, handler: h.Handler) -> None:
        self.handlers[path] = handler

    def count(self, *, path: str | None = None, paid: bool | None = None,
              status: int | None = None) -> int:
        """How many recorded requests match all the given filters."""
        return sum(1 for r in self.requests if (path is None or r.path == path)
                   and (paid is None or r.paid == paid) and (status is None or r.status == status))

    def stack(self) -> SdkStack:
        """The SDK server/facilitator for the current network (created on first use)."""
        if self.network not in self._stacks:
            self._stacks[self.network] = SdkStack(self.network, self.ledger)
        stack = self._stacks[self.network]
        stack.signer.tokens.add(self.asset.lower())
        self.ledger.token_name, self.ledger.token_version = self.token_name, self.token_version
        return stack

    # --- request handling --------------------------------------------------------------------
    async def _file(self, request: web.Request) -> web.Response:
        return web.Response(body=h.PNG_1X1, content_type="image/png")

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body = await request.read()
        header = request.headers.get("PAYMENT-SIGNATURE") if self.protocol == 2 else \
            request.headers.get("X-PAYMENT")
        record = RecordedRequest(request.method, path, dict(request.headers), body,
                                 paid=header is not None)
        self.requests.append(record)
        call = Call(request, path, body, self, record)
        token = current_path.set(path)
        try:
            resp = await self._serve(call, header)
        except _SettleFailed as failed:
            resp = failed.response
        finally:
            current_path.reset(token)
        record.status = resp.status
        return resp

    async def _serve(self, call: Call, header: str | None) -> web.StreamResponse:
        price = self.prices.get(call.path, self.default_price)
        if callable(price):
            price = price(call)
        handler = self.handlers.get(call.path, self.default_handler)
        if price is None:
            return await handler(call)
        stack = self.stack()
        requirements = stack.requirements(self, float(price), call.request.url)
        if header is None:
            return await stack.payment_required(self, requirements, call.request.url,
                                                "Payment required")
        verdict = await stack.verify(self, header, requirements)
        if isinstance(verdict, Rejection):
            return await self._rejected(stack, requirements, call, verdict)
        call._pending = verdict
        resp = await handler(call)
        if not resp.prepared and resp.status < 400:
            resp.headers.update(await call.settle())
        return resp

    async def _rejected(self, stack: SdkStack, requirements: Any, call: Call,
                        rejection: Rejection) -> web.Response:
        """402 with a fresh PAYMENT-REQUIRED whose error is the SDK's reason."""
        call.record.rejection = rejection.reason
        resp = await stack.payment_required(self, requirements, call.request.url,
                                            rejection.reason)
        body = blockrun_failure_body(rejection, self.ledger) if self.failure_body == "blockrun" \
            else {}
        resp.body = json.dumps(body).encode()
        return resp

    async def _settle(self, call: Call, payload: Any, requirements: Any) -> dict[str, str]:
        headers, settlement = await self.stack().settle(self, payload, requirements)
        if settlement is None:
            raise _SettleFailed(web.json_response(
                {"error": "Settlement failed"}, status=402, headers=headers))
        call.settlement = call.record.settlement = settlement
        return headers
