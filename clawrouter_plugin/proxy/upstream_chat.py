"""Calling the upstream for a chat completion, model by model along the fallback chain."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
import orjson

from ..errors import (
    ClawRouterError,
    InsufficientFunds,
    PaymentUnconfirmed,
    UpstreamError,
)
from .chat_format import CompletionAssembler, completion_to_chunks, token_counts
from .fallback import error_message, should_try_next
from .spend_guard import charge
from .upstream_body import upstream_body

if TYPE_CHECKING:
    from ..keys.model import ApiKey
    from ..payment.client import Claim
    from ..payment.response import PaymentRecord
    from ..payment.tab import PaymentTab
    from ..router import RoutingDecision
    from ..services import Services
    from .reply import ChunkChannel

CHAT_PATH = "/v1/chat/completions"
MAX_EVENT_BYTES = 8 * 1024 * 1024  # a streamed event (one SSE line) larger than this is refused
_JSON_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


@dataclass
class Attempt:
    """The answer that finally came back, and what it took to get it."""

    model: str
    completion: dict
    encoded: bytes  # ``completion`` as JSON: the upstream's own bytes when it sent JSON
    paid_usd: float
    fallbacks: int
    input_tokens: int
    output_tokens: int
    payment: PaymentRecord | None = None  # what bought this answer (settled or unconfirmed)


class _Failed(Exception):
    """One model failed; ``retry`` says whether the next model should be tried."""

    def __init__(self, error: ClawRouterError, *, retry: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry = retry


class UpstreamChat:
    """Tries each model of a chain until one answers (see docs/proxy.md, "Fallback")."""

    def __init__(self, services: "Services", on_insufficient_funds: Callable[[], None]) -> None:
        self.services = services
        self.on_insufficient_funds = on_insufficient_funds  # the wallet is treated as empty
        upstream = services.config.upstream
        self.timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=10, sock_read=upstream.attempt_timeout_seconds
        )

    def order(self, chain: tuple[str, ...]) -> list[str]:
        """The models of ``chain`` in the order they are tried: at most ``maxAttempts`` paid
        ones, then the free model (after a paid attempt, only the free model may follow)."""
        free = self.services.catalog.free_model
        paid = [model for model in chain if model != free][: self.services.config.upstream.max_attempts]
        return paid + [free] if free in chain else paid

    async def call(
        self,
        body: dict,
        chain: tuple[str, ...],
        sid: str,
        decision: "RoutingDecision",
        sink: ChunkChannel | None,
        tab: PaymentTab,
        api_key: "ApiKey | None" = None,
    ) -> Attempt:
        """Answer ``body`` with the first model of ``chain`` that succeeds.

        Each payment is claimed from the session's budget (and ``api_key``'s) as it is
        signed and goes on ``tab``; what the tab says an attempt spent (settled or unconfirmed) is what the
        budget keeps. Once an attempt has paid (or may have), only the free model may
        follow, so one request is never paid twice.
        """
        services = self.services
        models = self.order(chain)
        free = services.catalog.free_model
        last_error: ClawRouterError | None = None
        index = 0
        tried = 0
        while index < len(models):
            model = models[index]
            index += 1
            tried += 1
            # hold what the attempt will likely be charged (the guard's measure): an estimate
            # below the upstream's minimum charge would leave too little held, and concurrent
            # requests' claims could then all be refused while the budget has room for some
            estimate = services.router.cost(model, decision.input_tokens, decision.output_tokens)[0]
            reservation = await services.spend.reserve(sid, charge(estimate), api_key=api_key)
            tab.model = model
            mark = tab.mark()
            try:
                completion, raw, payment = await self._attempt(
                    model, body, decision.output_tokens, sink, reservation.available,
                    reservation.claim, tab)
            except InsufficientFunds as exc:
                self.on_insufficient_funds()
                last_error = exc
                if free in models[index:]:
                    index = models.index(free)
                continue
            except PaymentUnconfirmed as exc:  # counted by the tab: it may have been settled
                last_error = exc
            except _Failed as failure:
                last_error = failure.error
                if not failure.retry:
                    raise failure.error from None
            else:
                input_tokens, output_tokens = token_counts(
                    completion, decision.input_tokens, decision.output_tokens)
                return Attempt(
                    model=model,
                    completion=completion,
                    encoded=raw if raw is not None else orjson.dumps(completion),
                    paid_usd=payment.spent_usd if payment else 0.0,
                    fallbacks=tried - 1,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    payment=payment,
                )
            finally:
                await reservation.commit(tab.spent_usd(mark))
            if tab.spent_usd(mark) > 0:
                if free not in models[index:]:
                    break
                index = models.index(free)
        raise last_error or UpstreamError("no model was available for this request")

    async def _attempt(
        self, model: str, body: dict, output_cap: int, sink: ChunkChannel | None,
        budget_left: float | None, claim: Claim, tab: PaymentTab,
    ) -> tuple[dict, bytes | None, PaymentRecord | None]:
        """The completion, the JSON body it came in (None when it was streamed) and the
        payment that bought it. The payment, if any, is claimed from the budget with
        ``claim`` before it is signed, and goes on ``tab``."""
        payload = orjson.dumps(upstream_body(
            body, self.services.catalog.chat[model], output_cap, sink is not None))
        try:
            async with self.services.client.open(
                "POST", CHAT_PATH, body=payload, headers=_JSON_HEADERS,
                max_amount_usd=budget_left, price_key=model, timeout=self.timeout, claim=claim,
                tab=tab,
            ) as resp:
                payment = resp.payment
                if resp.status != 200:
                    data = await resp.read()
                    error = UpstreamError(error_message(resp.status, data),
                                          status=resp.status if 400 <= resp.status < 500 else 502)
                    raise _Failed(error, retry=should_try_next(resp.status, data))
                if sink is not None and "text/event-stream" in resp.headers.get("content-type", ""):
                    return await _relay_stream(resp.content, sink), None, payment
                data = await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _Failed(UpstreamError(f"the upstream connection failed: {exc!r}"), retry=True) from None
        except UpstreamError as exc:  # unreachable, timed out
            raise _Failed(exc, retry=True) from None
        try:
            completion = orjson.loads(data)
        except ValueError:
            raise _Failed(UpstreamError(f"{model} answered with invalid JSON"), retry=True) from None
        if not isinstance(completion, dict) or not isinstance(completion.get("choices"), list):
            raise _Failed(UpstreamError(f"{model} answered without choices"), retry=True)
        if sink is not None:
            for chunk in completion_to_chunks(completion):
                sink.put_nowait(chunk)
        return completion, data, payment


async def _relay_stream(content: aiohttp.StreamReader, sink: ChunkChannel) -> dict:
    """Pass upstream SSE chunks on as they arrive; return the assembled completion.

    Reads whatever bytes have arrived (not line by line: far fewer calls per event) and
    splits them into lines itself, keeping a partial last line for the next read.
    """
    assembler = CompletionAssembler()
    started = False
    pending = b""
    try:
        async for data in content.iter_any():
            lines = (pending + data).split(b"\n")
            pending = lines.pop()
            if len(pending) > MAX_EVENT_BYTES:
                raise _Failed(UpstreamError("the upstream sent a streamed event larger than "
                                            f"{MAX_EVENT_BYTES // 1_048_576} MB"),
                              retry=not started)
            for raw in lines:
                if len(raw) < 6:  # the blank line after each event; too short for "data:x"
                    continue
                event = _event(raw)
                if event is None:
                    continue
                if event is _DONE_EVENT:
                    return assembler.completion()
                if event.get("error") and not event.get("choices"):
                    error = event["error"]
                    message = error.get("message") if isinstance(error, dict) else error
                    raise _Failed(UpstreamError(f"upstream stream error: {message}"),
                                  retry=not started)
                assembler.add(event)
                sink.put_nowait(event)
                started = True
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise _Failed(UpstreamError(f"the upstream stream broke off: {exc!r}"), retry=not started) from None
    if _event(pending) is _DONE_EVENT:
        return assembler.completion()
    raise _Failed(UpstreamError("the upstream stream ended without [DONE]"), retry=not started)


_DONE_EVENT: dict = {}


def _event(raw: bytes) -> dict | None:
    """The JSON object of one ``data:`` line, :data:`_DONE_EVENT` for ``[DONE]``, else None
    (comments, other fields, blank lines and unparsable data are skipped)."""
    line = raw.strip()
    if not line.startswith(b"data:"):
        return None
    data = line[5:].strip()
    if data == b"[DONE]":
        return _DONE_EVENT
    try:
        event = orjson.loads(data)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None
