"""The x402 client used for every upstream call.

Sequence: send → 402 → parse the requirements → policy check → sign once (fresh nonce) →
resend with ``PAYMENT-SIGNATURE`` → read ``PAYMENT-RESPONSE``. With pre-authorisation the
first send already carries a payment pre-signed from the last requirements seen for the same
(path, price key); a 402 refusing it without a settlement report means nothing moved, and the
normal flow runs once with a new signature. A payment whose settlement was attempted (any
``PAYMENT-RESPONSE`` but a successful one: failed, pending) may have moved funds: it is
``unconfirmed`` and the request ends with :class:`PaymentUnconfirmed`, never paid again.
A signed payment is sent exactly once, to exactly one request; redirects are never
followed. Each signature is written to the payment journal before it is sent, and added to
the caller's :class:`PaymentTab` so it ends up in exactly one usage record. A caller
spending from a budget passes ``claim``: each amount is claimed from the budget just before
it is signed, so concurrent requests cannot overspend it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict

from .. import USER_AGENT
from ..errors import InsufficientFunds, PaymentFailed, PaymentRefused, PaymentUnconfirmed
from ..state.dedup import before_signing
from .journal import PaymentJournal
from .policy import PaymentPolicy
from .preauth import PreAuthCache, PreAuthStore
from .response import (
    REFUSED,
    SETTLED,
    UNCONFIRMED,
    PaymentRecord,
    UpstreamResponse,
    transport_error,
)
from .signer import SignedPayment, sign_payment, valid_before
from .tab import PaymentTab
from .wallet import Wallet
from .wire import (
    SIGNATURE_HEADER,
    V1_SIGNATURE_HEADER,
    PaymentRequired,
    Requirement,
    WireError,
    failure_reason,
    is_insufficient_funds,
    parse_payment_required,
    parse_settlement,
)

log = logging.getLogger(__name__)
MAX_402_BODY = 256 * 1024
# set by this client (or by aiohttp), never taken from the caller
_NOT_FORWARDED = frozenset({SIGNATURE_HEADER.lower(), V1_SIGNATURE_HEADER.lower(), "host",
                            "content-length"})
Claim = Callable[[float], Awaitable[None]]  # holds a USD amount against a budget, or raises


class X402Client:
    """Sends requests to ``api_base`` and pays 402s within the policy."""

    def __init__(self, session: aiohttp.ClientSession, wallet: Wallet, policy: PaymentPolicy,
                 *, api_base: str, preauth: PreAuthStore | bool | None = True,
                 on_payment: Callable[[PaymentRecord], None] | None = None,
                 user_agent: str = USER_AGENT, journal: PaymentJournal | None = None):
        self._session = session
        self._wallet = wallet
        self._policy = policy
        self._api_base = api_base.rstrip("/")
        self._host = urlsplit(self._api_base).netloc or self._api_base
        # True: a pre-authorisation cache of this process's own; False or None: none
        self._preauth: PreAuthStore | None = PreAuthCache() if preauth is True else None
        if not isinstance(preauth, bool) and preauth is not None:
            self._preauth = preauth  # a given store (in Redis for a team)
        self._on_payment = on_payment
        self._user_agent = user_agent
        self._journal = journal

    def open(self, method: str, path: str, *, body: bytes | None = None,
             headers: Mapping[str, str] | None = None,
             max_amount_usd: float | None = None, price_key: str | None = None,
             timeout: aiohttp.ClientTimeout | None = None, claim: Claim | None = None,
             tab: PaymentTab | None = None) -> _Opening:
        """``async with client.open(...) as response``: the upstream's answer, paid if it
        asked for payment; the connection is released on exit.

        Raises PaymentRefused (nothing signed), PaymentFailed/InsufficientFunds (the upstream
        refused our payment), UpstreamError/UpstreamTimeout (transport), PaymentUnconfirmed
        (a payment was sent and may have been settled, but no answer says so), or what
        ``claim`` raises: it gets each amount (USD) just before it is signed, and nothing is
        signed if it raises. Every payment signed is added to ``tab`` and kept up to date.
        """
        send = _Send(self, method, self._api_base + path, body,
                     self._headers(headers, body is not None), timeout, tab)
        return _Opening(self, send, (path, price_key), max_amount_usd, claim, tab)

    def _answered(self, raw: aiohttp.ClientResponse, signed: SignedPayment | None,
                  tab: PaymentTab | None, send: _Send) -> UpstreamResponse:
        """Wrap the final response and report what it cost (nothing when refused)."""
        record = self._resolve(raw, signed, tab) if signed is not None else None
        response = UpstreamResponse(raw, record if record and record.status != REFUSED else None,
                                    self._host)
        if response.payment is not None:
            log.debug("paid $%.6f for %s %s (tx %s)", response.payment.amount_usd, send.method,
                      send.url, response.payment.transaction)
            if self._on_payment is not None:
                try:
                    self._on_payment(response.payment)
                except Exception:
                    log.exception("on_payment callback failed")
        return response

    async def request(self, method: str, path: str, **kwargs) -> tuple[UpstreamResponse, bytes]:
        """Like :meth:`open`, reading the whole body and releasing the connection."""
        async with self.open(method, path, **kwargs) as response:
            data = await response.read()
        return response, data

    def _headers(self, extra: Mapping[str, str] | None, has_body: bool) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict({"User-Agent": self._user_agent})
        for name, value in (extra or {}).items():
            if name.lower() not in _NOT_FORWARDED:
                headers[name] = value
        if has_body and "Content-Type" not in headers:
            headers["Content-Type"] = "application/json"
        return headers

    async def _exchange(self, send: _Send, key: tuple[str, str | None],
                        max_amount_usd: float | None, claim: Claim | None,
                        tab: PaymentTab | None
                        ) -> tuple[aiohttp.ClientResponse, SignedPayment | None]:
        signed = None
        cached = await self._preauth.get(key) if self._preauth is not None else None
        if cached is not None and self._policy.problem(cached[1], max_amount_usd) is None:
            signed = await self._sign(*cached, claim, tab)
        raw = await send(signed)
        if raw.status != 402:
            return raw, signed
        if signed is not None:
            await self._preauth.drop(key)  # type: ignore[union-attr]
            if self._resolve(raw, signed, tab).status != REFUSED:
                raw.release()
                raise self._unconfirmed(signed, failure_reason(raw.headers, b""))
            # The pre-signed payment was refused, and nothing was settled: negotiate afresh.
            data = await self._drain(raw)
            reason = failure_reason(raw.headers, data)
            if is_insufficient_funds(reason):
                raise InsufficientFunds(f"the upstream refused the payment of "
                                        f"{signed.requirement.describe()}: {reason}")
            log.info("pre-signed payment for %s refused (%s); negotiating again", key[0], reason)
            try:
                required = parse_payment_required(raw.headers, data)
            except WireError:
                raw = await send(None)
                if raw.status != 402:
                    return raw, None
                data = await self._drain(raw)
                required = self._parse(raw, data)
        else:
            data = await self._drain(raw)
            required = self._parse(raw, data)
        chosen = self._policy.choose(required, max_amount_usd)
        signed = await self._sign(required, chosen, claim, tab)
        raw = await send(signed)
        if raw.status == 402:
            if self._resolve(raw, signed, tab).status != REFUSED:
                raw.release()
                raise self._unconfirmed(signed, failure_reason(raw.headers, b""))
            reason = failure_reason(raw.headers, await self._drain(raw))
            error = InsufficientFunds if is_insufficient_funds(reason) else PaymentFailed
            raise error(f"the upstream rejected the payment of {chosen.describe()}: {reason}")
        if self._preauth is not None:
            await self._preauth.put(key, required, chosen)
        return raw, signed

    async def _sign(self, required: PaymentRequired, req: Requirement, claim: Claim | None,
                    tab: PaymentTab | None) -> SignedPayment:
        """Sign ``req`` once ``claim`` (if any) holds its amount and the task's
        :data:`~clawrouter_plugin.state.dedup.before_signing` watcher (if any) has been told
        its validBefore; journal it and put it on the tab as ``unconfirmed`` before it can be
        sent."""
        now = int(time.time())
        if claim is not None:
            await claim(req.usd)
        watcher = before_signing.get()
        if watcher is not None:
            await watcher(valid_before(req, now))
        signed = sign_payment(self._wallet, required, req, now=now)
        record = self._payment(signed, UNCONFIRMED, None, req.amount)
        if self._journal is not None:
            self._journal.begin(record, tab)
        if tab is not None:
            tab.add(record)
        return signed

    @staticmethod
    def _unconfirmed(signed: SignedPayment, reason: str) -> PaymentUnconfirmed:
        return PaymentUnconfirmed(
            f"the upstream reported the settlement of {signed.requirement.describe()} as not "
            f"done ({reason}); it may still have been settled, so it is not paid again",
            amount_usd=signed.requirement.usd)

    def _parse(self, raw: aiohttp.ClientResponse, data: bytes) -> PaymentRequired:
        try:
            return parse_payment_required(raw.headers, data)
        except WireError as exc:
            raise PaymentRefused(f"payment refused, nothing was signed: the upstream "
                                 f"{self._host} sent an unusable 402: {exc}") from None

    async def _drain(self, raw: aiohttp.ClientResponse) -> bytes:
        """Up to MAX_402_BODY bytes of a 402 body, then release the connection."""
        chunks, size = [], 0
        try:
            async for chunk in raw.content.iter_chunked(16384):
                chunks.append(chunk)
                size += len(chunk)
                if size >= MAX_402_BODY:
                    break
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_error(exc, self._host) from None
        finally:
            raw.release()
        return b"".join(chunks)[:MAX_402_BODY]

    def _resolve(self, raw: aiohttp.ClientResponse, signed: SignedPayment,
                 tab: PaymentTab | None) -> PaymentRecord:
        """What became of ``signed`` according to this answer; the tab is updated. A
        successful receipt: settled. Any other receipt (failed, pending), or a success status
        without one: unconfirmed. No receipt on an error status: refused (x402 servers
        settle only what they serve)."""
        req = signed.requirement
        settlement = parse_settlement(raw.headers)
        amount, transaction = req.amount, None
        if settlement is None:
            status = REFUSED if raw.status >= 400 else UNCONFIRMED
        else:
            transaction = settlement.get("transaction")
            if settlement.get("success") is True:
                status = SETTLED
                amount = _settled_amount(settlement.get("amount"), req.amount)
            else:
                status = UNCONFIRMED
        record = self._payment(signed, status, transaction, amount)
        if tab is not None:
            tab.update(record)
        return record

    def _payment(self, signed: SignedPayment, status: str, transaction: object,
                 amount: int) -> PaymentRecord:
        req = signed.requirement
        return PaymentRecord(amount_usd=amount / 1_000_000, amount_atomic=amount,
                             network=req.network, asset=req.asset, pay_to=req.pay_to,
                             payer=self._wallet.address,
                             transaction=_transaction(transaction), status=status,
                             nonce=signed.nonce)


def _transaction(value: object) -> str | None:
    """A receipt's transaction hash when it looks like one (0x and up to 64 hex digits)."""
    if isinstance(value, str) and 2 < len(value) <= 66 and value.startswith("0x"):
        try:
            int(value[2:], 16)
        except ValueError:
            return None
        return value if value.isascii() else None
    return None


def _settled_amount(reported: object, signed_for: int) -> int:
    """The atomic amount a receipt reports when it is plain ASCII digits from 1 to
    ``signed_for``, else ``signed_for`` (no ``int()`` of "²" or of thousands of digits)."""
    if isinstance(reported, str) and reported.isascii() and reported.isdigit() \
            and len(reported) <= len(str(signed_for)) and 0 < int(reported) <= signed_for:
        return int(reported)
    return signed_for


class _Opening:
    """The async context manager :meth:`X402Client.open` returns (a plain class: cheaper than
    an ``asynccontextmanager`` generator on every upstream call)."""

    __slots__ = ("_client", "_send", "_key", "_max_amount_usd", "_claim", "_tab", "_raw")

    def __init__(self, client: X402Client, send: _Send, key: tuple[str, str | None],
                 max_amount_usd: float | None, claim: Claim | None,
                 tab: PaymentTab | None) -> None:
        self._client, self._send, self._key = client, send, key
        self._max_amount_usd, self._claim, self._tab = max_amount_usd, claim, tab
        self._raw: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> UpstreamResponse:
        client = self._client
        raw, signed = await client._exchange(self._send, self._key, self._max_amount_usd,
                                              self._claim, self._tab)
        self._raw = raw
        return client._answered(raw, signed, self._tab, self._send)

    async def __aexit__(self, *exc: object) -> None:
        if self._raw is not None:
            self._raw.release()


class _Send:
    """One logical request, sent once per attempt with or without a payment."""

    def __init__(self, client: X402Client, method: str, url: str, body: bytes | None,
                 headers: CIMultiDict[str], timeout: aiohttp.ClientTimeout | None,
                 tab: PaymentTab | None):
        self.client, self.method, self.url = client, method, url
        self.body, self.headers, self.timeout = body, headers, timeout
        self.tab = tab

    async def __call__(self, payment: SignedPayment | None) -> aiohttp.ClientResponse:
        headers = self.headers.copy()
        if payment is not None:
            headers[payment.header_name] = payment.header_value
        kwargs = {"timeout": self.timeout} if self.timeout is not None else {}
        try:
            return await self.client._session.request(
                self.method, self.url, data=self.body, headers=headers, allow_redirects=False,
                **kwargs)
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = transport_error(exc, self.client._host)
            if payment is None:
                raise error from None  # nothing was paid: safe to retry
            if isinstance(exc, aiohttp.ClientConnectorError):  # never connected: nothing left
                if self.tab is not None:
                    self.tab.update(self.client._payment(payment, REFUSED, None,
                                                         payment.requirement.amount))
                raise error from None
            raise PaymentUnconfirmed(
                f"{error.message} after a payment of {payment.requirement.describe()} was "
                "sent; it may have been settled",
                amount_usd=payment.requirement.usd, status=error.status) from None
