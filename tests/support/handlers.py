"""Route handlers for :class:`~tests.support.x402_upstream.X402TestUpstream`.

A handler is ``async def handler(call: Call) -> web.StreamResponse``. Return an unprepared
response and the upstream settles the payment (only when the status is below 400) and adds
``PAYMENT-RESPONSE``; to stream, ``resp = await call.stream()`` settles first, then prepares.
The factories below build the behaviours tests usually need (status codes, delays, per-model
dispatch, dropped streams).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from x402.http.utils import encode_payment_response_header
from x402.schemas import SettleResponse

if TYPE_CHECKING:
    from .x402_upstream import Call

Handler = Callable[["Call"], Awaitable[web.StreamResponse]]

# A valid 1x1 transparent PNG.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def reply_text(body: Mapping[str, Any] | None) -> tuple[str, str]:
    """(model, reply text) the default chat handler answers for a request body."""
    body = body or {}
    model = str(body.get("model", "unknown"))
    last = ""
    for message in body.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            last = content if isinstance(content, str) else json.dumps(content)[:200]
    return model, f"Echo from {model}: {last[:200]}"


def _usage(call: Call, text: str) -> dict[str, int]:
    prompt = max(1, len(call.body) // 4)
    completion = max(1, len(text.split()))
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def chunk(model: str, delta: dict[str, Any], finish: str | None = None,
          completion_id: str = "chatcmpl-test") -> bytes:
    """One OpenAI ``chat.completion.chunk`` SSE event."""
    event = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()),
             "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


async def chat_handler(call: Call) -> web.StreamResponse:
    """OpenAI chat completion echoing the model and last user message, with usage.

    ``stream: true`` gets real SSE: a role chunk, one chunk per word, a finish chunk, a usage
    chunk and ``data: [DONE]``.
    """
    body = call.json()
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return web.json_response({"error": {"message": "messages required",
                                            "type": "invalid_request_error"}}, status=400)
    model, text = reply_text(body)
    usage = _usage(call, text)
    cid = "chatcmpl-" + uuid.uuid4().hex[:12]
    if not body.get("stream"):
        return web.json_response({
            "id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": usage,
        })
    resp = await call.stream()
    await resp.write(chunk(model, {"role": "assistant", "content": ""}, completion_id=cid))
    for i, word in enumerate(text.split(" ")):
        await resp.write(chunk(model, {"content": word if i == 0 else " " + word},
                               completion_id=cid))
    await resp.write(chunk(model, {}, "stop", completion_id=cid))
    usage_event = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                   "model": model, "choices": [], "usage": usage}
    await resp.write(b"data: " + json.dumps(usage_event).encode() + b"\n\n")
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


async def image_handler(call: Call) -> web.StreamResponse:
    """OpenAI images response; ``upstream.image_mode`` "url" serves a PNG, "b64" a data URI."""
    body = call.json()
    if not isinstance(body, dict) or not body.get("prompt"):
        return web.json_response({"error": "prompt required"}, status=400)
    count = int(body.get("n") or 1)
    if call.upstream.image_mode == "b64":
        url = "data:image/png;base64," + base64.b64encode(PNG_1X1).decode()
        data = [{"url": url} for _ in range(count)]
    else:
        data = [{"url": f"{call.upstream.origin}/files/img-{uuid.uuid4().hex[:8]}.png"}
                for _ in range(count)]
    return web.json_response({"created": int(time.time()), "data": data,
                               "model": body.get("model")})


async def generic_handler(call: Call) -> web.StreamResponse:
    """Echo what was asked: ``{"ok": true, "method", "path", "json"}``."""
    return web.json_response({"ok": True, "method": call.request.method, "path": call.path,
                              "json": call.json()})


def status(code: int, body: Any = None, headers: Mapping[str, str] | None = None) -> Handler:
    """Always answer ``code`` with a JSON ``body`` (default: an OpenAI-style error)."""
    payload = body if body is not None else {
        "error": {"message": f"test upstream error {code}", "type": "upstream_error"}}

    async def handler(call: Call) -> web.StreamResponse:
        return web.json_response(payload, status=code, headers=dict(headers or {}))
    return handler


def by_model(handlers: Mapping[str, Handler], default: Handler = chat_handler) -> Handler:
    """Dispatch on the request body's ``model``."""
    async def handler(call: Call) -> web.StreamResponse:
        body = call.json()
        model = body.get("model") if isinstance(body, dict) else None
        return await handlers.get(str(model), default)(call)
    return handler


def delayed(seconds: float, inner: Handler = chat_handler) -> Handler:
    """Wait ``seconds`` before running ``inner``."""
    async def handler(call: Call) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return await inner(call)
    return handler


def drop_mid_stream(chunks_before: int = 2, model: str | None = None) -> Handler:
    """Start an SSE stream, send ``chunks_before`` chunks, then cut the connection."""
    async def handler(call: Call) -> web.StreamResponse:
        body = call.json() if isinstance(call.json(), dict) else {}
        name = model or str(body.get("model", "unknown"))
        resp = await call.stream()
        for i in range(chunks_before):
            await resp.write(chunk(name, {"content": f"part{i} "}))
        await asyncio.sleep(0.05)
        if call.request.transport is not None:
            call.request.transport.close()
        return resp
    return handler


def settle_then_drop() -> Handler:
    """Settle the payment, then cut the connection before answering (the payer cannot know)."""
    async def handler(call: Call) -> web.StreamResponse:
        await call.settle()
        if call.request.transport is not None:
            call.request.transport.close()
        raise ConnectionResetError("dropped after settling")
    return handler


def raw(status_code: int, *, headers: Mapping[str, str] | None = None,
        body: bytes | str | Any = b"") -> Handler:
    """Answer exactly this status, headers and body (e.g. a hand-made or malformed 402)."""
    data = body.encode() if isinstance(body, str) else (
        body if isinstance(body, bytes) else json.dumps(body).encode())

    async def handler(call: Call) -> web.StreamResponse:
        return web.Response(status=status_code, body=data, headers=dict(headers or {}))
    return handler


def settle_then_report_failed(reason: str = "settlement_pending", status_code: int = 402
                              ) -> Handler:
    """Settle the payment (the ledger moves), then answer ``status_code`` with a
    PAYMENT-RESPONSE saying the settlement failed: what a facilitator that gave up waiting
    for the chain reports while the transfer still goes through."""
    async def handler(call: Call) -> web.StreamResponse:
        await call.settle()
        payer = call.settlement.payer if call.settlement else None
        report = SettleResponse(success=False, error_reason=reason, payer=payer,
                                transaction="", network=call.upstream.network)
        return web.json_response(
            {"error": "Settlement failed", "details": reason}, status=status_code,
            headers={"PAYMENT-RESPONSE": encode_payment_response_header(report)})
    return handler


def settle_then_stall(seconds: float, inner: Handler = chat_handler) -> Handler:
    """Settle the payment, then wait ``seconds`` before answering (longer than the
    client's timeout: the payer times out after paying)."""
    async def handler(call: Call) -> web.StreamResponse:
        await call.settle()
        await asyncio.sleep(seconds)
        return await inner(call)
    return handler
