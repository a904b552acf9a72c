"""Costs under an agent host: the output cap is clamped before pricing and forwarding, the free
profile never pays, /stats savings add up, and a budget notice names the model that answers.

The x402 test upstream prices each chat request by its input and output cap (see
tests/support/pricing.py), as a paid-up-front upstream does.
"""

from __future__ import annotations

import json

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from clawrouter_plugin.catalog import load_catalog
from commands.stats import render_stats
from tests.support import handlers
from tests.support.openclaw_turn import openclaw_turn, tool_history
from tests.support.pricing import atomic, chat_price, price_usd
from tests.support.x402_upstream import CHAT_PATH

CATALOG = load_catalog()
FREE = CATALOG.free_model


async def send(handle, body: dict, headers: dict | None = None,
               method: str = "POST", path: str = "/v1/chat/completions"):
    """(status, headers, body bytes) of one request to the proxy."""
    async with aiohttp.ClientSession() as session:
        async with session.request(method, handle.base_url + path, json=body,
                                   headers=headers) as resp:
            return resp.status, CIMultiDict(resp.headers), await resp.read()


def paid_requests(upstream) -> list:
    return [r for r in upstream.requests if r.path == CHAT_PATH and r.paid and r.settlement]


def usage_lines(handle) -> list[dict]:
    handle.services.usage.flush()
    lines = []
    for path in sorted((handle.services.data_dir / "logs").glob("usage-*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line]
    return lines


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "google/gemini-2.5-flash"])
async def test_an_openclaw_turn_is_sent_and_paid_with_the_clamped_cap(proxy, x402_upstream,
                                                                      model):
    x402_upstream.set_price(CHAT_PATH, chat_price)
    status, headers, data = await send(proxy, openclaw_turn("hello", model=f"blockrun/{model}"))
    assert status == 200 and data.rstrip().endswith(b"data: [DONE]")
    [request] = paid_requests(x402_upstream)
    sent = request.json()
    assert sent["max_completion_tokens"] == 8192 and "max_tokens" not in sent
    catalog_model = CATALOG.chat[model]
    [settlement] = x402_upstream.ledger.settlements
    assert settlement.amount == atomic(price_usd(catalog_model, len(request.body), 8192))
    uncapped = price_usd(catalog_model, len(request.body), 128_000)
    assert settlement.usd < uncapped * 0.6  # what the turn cost before the clamp
    # the headers, the spend guard and the usage record use the same clamped numbers
    assert headers["x-clawrouter-output-cap"] == "8192"
    assert float(headers["x-clawrouter-estimate"]) == pytest.approx(settlement.usd, rel=0.05)
    [line] = usage_lines(proxy)
    assert line["cost"] == pytest.approx(settlement.usd)
    assert line["baselineCost"] == pytest.approx(CATALOG.baseline.charge(line["inputTokens"], 8192))


async def test_a_smaller_cap_is_kept_and_max_tokens_is_clamped_in_place(proxy, x402_upstream):
    x402_upstream.set_price(CHAT_PATH, chat_price)
    small = {"model": "blockrun/openai/gpt-4o-mini", "max_tokens": 300,
             "messages": [{"role": "user", "content": "hi"}]}
    assert (await send(proxy, small))[0] == 200
    huge = {"model": "blockrun/openai/gpt-4o-mini", "max_tokens": 10**6,
            "messages": [{"role": "user", "content": "hi again"}]}
    assert (await send(proxy, huge))[0] == 200
    none = {"model": "blockrun/openai/gpt-4o-mini", "messages": [{"role": "user", "content": "?"}]}
    assert (await send(proxy, none))[0] == 200
    sent = [r.json() for r in paid_requests(x402_upstream)]
    assert [b.get("max_tokens") for b in sent] == [300, 8192, None]
    assert [b.get("max_completion_tokens") for b in sent] == [None, None, 8192]


def refuses_tools(model: str) -> handlers.Handler:
    """The chat handler, except that ``model`` refuses tool definitions and tool messages, as
    an upstream model without tool support does."""
    async def handler(call) -> web.StreamResponse:
        body = call.json()
        if isinstance(body, dict) and body.get("model") == model and (
                "tools" in body or "tool_choice" in body or any(
                    m.get("role") == "tool" or m.get("tool_calls") for m in body["messages"])):
            return web.json_response({"error": {"message": f"{model} does not support tools",
                                                "type": "invalid_request_error"}}, status=400)
        return await handlers.chat_handler(call)
    return handler


async def test_the_free_profile_with_tools_never_pays(proxy, x402_upstream):
    x402_upstream.set_price(CHAT_PATH, chat_price)
    x402_upstream.set_handler(CHAT_PATH, refuses_tools(FREE))
    session = {"x-session-id": "openclaw-free"}
    # an earlier paid turn pins a tool-capable model to the conversation
    status, _, _ = await send(proxy, openclaw_turn("list the files", model="blockrun/auto"),
                              session)
    assert status == 200 and len(x402_upstream.ledger.settlements) == 1
    for text in ("hello", "now add eggs to notes.md"):
        body = openclaw_turn(text, model="blockrun/free", history=tool_history())
        status, headers, data = await send(proxy, body, session)
        assert status == 200, data
        assert headers["x-clawrouter-model"] == FREE and headers["x-clawrouter-tools"] == "dropped"
        assert f'"model":"{FREE}"'.encode() in data
    assert len(x402_upstream.ledger.settlements) == 1  # the free turns paid nothing
    sent = [r.json() for r in x402_upstream.requests if r.json().get("model") == FREE]
    assert len(sent) == 2
    for body in sent:
        assert not {"tools", "tool_choice"} & set(body)
        assert all(m["role"] in ("system", "user", "assistant") and "tool_calls" not in m
                   for m in body["messages"])
        texts = json.dumps(body["messages"])
        assert "[called the tool read with" in texts and "buy milk" in texts


async def test_stats_savings_are_baseline_minus_cost_over_the_same_requests(proxy, x402_upstream):
    """An expensive session like the issue's: Sonnet and o1 answer agent turns; o1 costs more
    than the Opus baseline would have. Savings must not claim a saving that did not happen."""
    x402_upstream.set_price(CHAT_PATH, chat_price)
    session = {"x-session-id": "expensive"}

    def turn(text: str, model: str) -> dict:
        return openclaw_turn(text, model=model, max_completion_tokens=8192, stream=False)

    for n in range(3):
        assert (await send(proxy, turn(f"step {n}", "blockrun/br-sonnet"), session))[0] == 200
        assert (await send(proxy, turn(f"check {n}", "blockrun/openai/o1"), session))[0] == 200
    status, headers, _ = await send(proxy, turn("step 0", "blockrun/br-sonnet"), session)
    assert status == 200 and headers["x-clawrouter-cache"] == "HIT"  # free, still a saving
    status, _, raw = await send(proxy, None, method="GET", path="/stats?days=1")
    stats = json.loads(raw)
    ledger = sum(s.usd for s in x402_upstream.ledger.settlements)
    assert stats["totalRequests"] == 7 and stats["totalCost"] == pytest.approx(ledger, abs=1e-5)
    cost, baseline, saved = (stats[k] for k in ("totalCost", "totalBaselineCost", "totalSavings"))
    assert cost > baseline  # o1 at $60/M output costs more than Opus at $25/M
    assert saved == pytest.approx(baseline - cost, abs=1e-5)
    assert stats["savingsPercentage"] == pytest.approx(100 * saved / baseline, abs=0.1)
    for line in usage_lines(proxy):
        if not line["cacheHit"]:  # the same input and output cap, at the baseline's prices
            assert line["baselineCost"] == pytest.approx(
                CATALOG.baseline.charge(line["inputTokens"], 8192), rel=1e-6)
    daily = stats["dailyBreakdown"][-1]
    assert daily["saved"] == pytest.approx(baseline - cost, abs=1e-5)
    box = render_stats(stats)
    assert "Total Saved" not in box and "No saving" in box


async def test_a_budget_notice_names_the_model_that_answers(start, x402_upstream, tmp_path):
    """A session pinned to a paid model runs low on budget: either the pinned model still fits
    (no downgrade) or the downgrade's model answers; a notice never names another model."""
    x402_upstream.set_handler(CHAT_PATH, handlers.by_model(
        {"google/gemini-2.5-flash": handlers.status(503)}))
    results = []
    for budget in (0.0045, 0.0025):
        proxy = await start(maxCostPerRun=budget, data_dir=tmp_path / str(budget))
        session = {"x-session-id": f"pinned-{budget}"}
        first = {"model": "auto", "max_tokens": 10,
                 "messages": [{"role": "user", "content": "hi"}]}
        status, headers, _ = await send(proxy, first, session)
        assert status == 200 and headers["x-clawrouter-model"] == "deepseek/deepseek-chat"
        second = {"model": "auto", "messages": [{"role": "user", "content": "hello again"}]}
        status, headers, data = await send(proxy, second, session)
        assert status == 200, data
        answered = headers["x-clawrouter-model"]
        notice = headers.get("x-clawrouter-notice")
        assert notice is None or f"using {answered} " in notice, (answered, notice)
        results.append((answered, notice is not None))
    # enough left for the pinned model: it answers; too little: the free model, with a notice
    assert results == [("deepseek/deepseek-chat", False), (FREE, True)]


async def test_the_free_profile_refuses_an_image_instead_of_paying(proxy, x402_upstream):
    body = {"model": "blockrun/free", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}
    status, _, data = await send(proxy, body)
    error = json.loads(data)["error"]
    assert status == 400 and error["code"] == "free_model_unsuitable"
    assert "cannot read images" in error["message"]
    assert x402_upstream.count(path=CHAT_PATH) == 0 and x402_upstream.ledger.settlements == []
