"""Odd shapes in what the upstream sends back, after it was paid: the client still gets a
well-formed answer (or a clear error), never a 500 or a hang, and the payment is recorded once."""

from __future__ import annotations

import base64
import json

import aiohttp
import pytest
from aiohttp import web

from tests.support import handlers as h
from tests.support.x402_upstream import CHAT_PATH

SSE = {"content-type": "text/event-stream"}
JSON = {"content-type": "application/json"}


def completion(**choice: object) -> dict:
    """A chat.completion whose one choice is ``choice`` (an ordinary one when empty)."""
    return {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [choice or {"index": 0, "finish_reason": "stop",
                                   "message": {"role": "assistant", "content": "fine"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}


ODD_COMPLETIONS = {
    "choices not objects": {**completion(), "choices": ["fine", 3, None, [1]]},
    "message a string": completion(index=0, message="fine", finish_reason="stop"),
    "message a list": completion(index=0, message=["fine"], finish_reason="stop"),
    "content a number": completion(index=0, message={"role": "assistant", "content": 42}),
    "content a list": completion(index=0, message={"role": "assistant", "content": ["fine"]}),
    "content null": completion(index=0, message={"role": "assistant", "content": None}),
    "tool_calls a string": completion(index=0, message={"role": "assistant", "tool_calls": "f"}),
    "tool_calls not objects": completion(index=0, message={"tool_calls": ["f", {"id": "t"}]}),
    "no model, unknown fields": {**{k: v for k, v in completion().items() if k != "model"},
                                 "x_extra": {"a": [1]}, "system_fingerprint": None},
}

GOOD = (b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"role":"assistant","content":"fi"},"finish_reason":null}]}\n\n')
END = (b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
       b'"choices":[{"index":0,"delta":{"content":"ne"},"finish_reason":"stop"}]}\n\n'
       b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}\n\n'
       b"data: [DONE]\n\n")

# (an odd event sent between two ordinary ones, the text the answer then holds)
ODD_EVENTS = {
    "a list": (b"data: [1, 2]", "fine"),
    "a string": (b'data: "fi"', "fine"),
    "not JSON": (b"data: {not json", "fine"),
    "choices an object": (b'data: {"choices": {"0": {"delta": {"content": "x"}}}}', "fine"),
    "choices a string": (b'data: {"choices": "abc"}', "fine"),
    "choices a number": (b'data: {"choices": 5}', "fine"),
    "choice not an object": (b'data: {"choices": ["x", null]}', "fine"),
    "delta a string": (b'data: {"choices": [{"index": 0, "delta": "x"}]}', "fine"),
    "delta a list": (b'data: {"choices": [{"index": 0, "delta": ["x"]}]}', "fine"),
    "content a number": (b'data: {"choices": [{"index": 0, "delta": {"content": 5}}]}', "fine"),
    "content a list": (b'data: {"choices": [{"index": 0, "delta": {"content": ["x"]}}]}', "fine"),
    "index a list": (b'data: {"choices": [{"index": [0], "delta": {"content": "!"}}]}', "fine"),
    "index a string": (b'data: {"choices": [{"index": "1", "delta": {"content": "!"}}]}', "fine"),
    "tool_calls a string": (b'data: {"choices": [{"delta": {"tool_calls": "f"}}]}', "fine"),
    "tool call odd": (b'data: {"choices": [{"delta": {"tool_calls": [7, {"index": [1], '
                      b'"function": {"name": 5, "arguments": {}}}]}}]}', "fine"),
    "usage odd": (b'data: {"choices": [], "usage": ["lots"]}', "fine"),
    "no space after data:": (b'data:{"choices": [{"index": 0, "delta": {"content": "!"}}]}', "fi!ne"),
}


async def post(proxy, body: dict) -> tuple[int, dict[str, str], str]:
    """Status, headers and text of one raw chat request to the proxy (never waits long)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.post(proxy.base_url + "/v1/chat/completions", json=body) as resp:
            return resp.status, dict(resp.headers), await resp.text()


def sse_payloads(text: str) -> list[dict]:
    """The events of a well-formed SSE answer that ends in [DONE] and carries no error."""
    events = [e for e in text.split("\n\n") if e and not e.startswith(":")]
    assert events[-1] == "data: [DONE]", text
    payloads = []
    for event in events[:-1]:
        assert event.startswith("data: "), text
        payloads.append(json.loads(event[6:]))
    assert all(isinstance(p, dict) and "error" not in p for p in payloads), text
    return payloads


def streamed_text(payloads: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in payloads
                   if isinstance(c.get("choices"), list) and c["choices"]
                   and isinstance(c["choices"][0], dict) and c["choices"][0].get("index") == 0
                   and isinstance(c["choices"][0].get("delta"), dict)
                   and isinstance(c["choices"][0]["delta"].get("content"), str))


def assert_paid_once(proxy, upstream) -> None:
    """One payment to the upstream, and exactly one paid record in the usage log."""
    assert upstream.count(path=CHAT_PATH, paid=True) == 1
    proxy.services.usage.flush()
    [log] = (proxy.services.data_dir / "logs").glob("usage-*.jsonl")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    paid = [r for r in records if not r["cacheHit"]]
    assert len(paid) == 1 and paid[0]["cost"] == pytest.approx(0.001)


@pytest.mark.parametrize("case", ODD_COMPLETIONS)
async def test_odd_json_answer_is_relayed_unchanged_then_replayed(proxy, x402_upstream, case):
    """A plain request gets the upstream's JSON as it is; the cached copy replays as a stream."""
    answer = ODD_COMPLETIONS[case]
    x402_upstream.set_handler(CHAT_PATH, h.raw(200, body=answer, headers=JSON))
    body = {"model": "auto", "messages": [{"role": "user", "content": f"odd json {case}"}]}
    status, _, text = await post(proxy, body)
    assert status == 200 and json.loads(text) == answer
    status, headers, text = await post(proxy, body)
    assert status == 200 and headers["x-clawrouter-cache"] == "HIT" and json.loads(text) == answer
    status, headers, text = await post(proxy, {**body, "stream": True})
    assert status == 200 and headers["x-clawrouter-cache"] == "HIT"
    sse_payloads(text)
    assert_paid_once(proxy, x402_upstream)


@pytest.mark.parametrize("case", ODD_COMPLETIONS)
async def test_odd_json_answer_to_a_stream_request(proxy, x402_upstream, case):
    """A JSON answer to ``stream: true`` becomes chunks, now and from the cache."""
    answer = ODD_COMPLETIONS[case]
    x402_upstream.set_handler(CHAT_PATH, h.raw(200, body=answer, headers=JSON))
    body = {"model": "auto", "stream": True,
            "messages": [{"role": "user", "content": f"odd json streamed {case}"}]}
    status, headers, text = await post(proxy, body)
    assert status == 200 and headers["x-clawrouter-cache"] == "MISS"
    first = sse_payloads(text)
    status, headers, text = await post(proxy, body)
    assert status == 200 and headers["x-clawrouter-cache"] == "HIT"
    assert sse_payloads(text) == first
    assert_paid_once(proxy, x402_upstream)


@pytest.mark.parametrize("case", ODD_EVENTS)
async def test_odd_streamed_event_is_relayed_and_the_answer_kept(proxy, x402_upstream, case):
    """The odd event goes on to the client as it came; the answer around it is kept and cached."""
    line, expected = ODD_EVENTS[case]
    x402_upstream.set_handler(CHAT_PATH, h.raw(200, body=GOOD + line + b"\n\n" + END, headers=SSE))
    body = {"model": "auto", "stream": True,
            "messages": [{"role": "user", "content": f"odd event {case}"}]}
    status, headers, text = await post(proxy, body)
    assert status == 200 and headers["x-clawrouter-cache"] == "MISS"
    payloads = sse_payloads(text)
    assert streamed_text(payloads) == expected
    if line.startswith(b"data: {") and b"not json" not in line:
        assert json.loads(line[6:]) in payloads  # relayed unchanged
    status, headers, text = await post(proxy, body)
    assert status == 200 and headers["x-clawrouter-cache"] == "HIT"
    assert streamed_text(sse_payloads(text)) == expected
    status, headers, text = await post(proxy, {**body, "stream": False})
    assert status == 200 and headers["x-clawrouter-cache"] == "HIT"
    assert json.loads(text)["choices"][0]["message"]["content"] == expected
    assert_paid_once(proxy, x402_upstream)


def receipt_amount(amount: object) -> h.Handler:
    """An ordinary answer whose PAYMENT-RESPONSE reports ``amount`` as the amount settled."""
    async def handler(call) -> web.StreamResponse:
        [(name, value)] = (await call.settle()).items()
        receipt = {**json.loads(base64.b64decode(value)), "amount": amount}
        encoded = base64.b64encode(json.dumps(receipt).encode()).decode()
        return web.json_response(completion(), headers={name: encoded})
    return handler


@pytest.mark.parametrize("amount", ["9" * 5000, "\u00b2", "-5", "1e3", 500.0, None])
async def test_odd_amount_in_the_payment_receipt(proxy, x402_upstream, amount):
    """An unreadable settled amount counts as the amount that was signed for."""
    x402_upstream.set_handler(CHAT_PATH, receipt_amount(amount))
    body = {"model": "auto", "messages": [{"role": "user", "content": f"receipt {amount!r:.20}"}]}
    status, headers, text = await post(proxy, body)
    assert status == 200 and json.loads(text)["choices"][0]["message"]["content"] == "fine"
    assert headers["x-clawrouter-cost"] == "0.001000"
    assert_paid_once(proxy, x402_upstream)
