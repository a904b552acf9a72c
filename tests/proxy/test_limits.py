"""Errors, budgets, the empty-wallet fallback and the side routes of the proxy."""

from __future__ import annotations

import asyncio
import json
import threading

import aiohttp
import openai
import pytest
from eth_account import Account

from clawrouter_plugin import __version__
from clawrouter_plugin.proxy.server import start_proxy
from tests.support.x402_upstream import CHAT_PATH

from .conftest import make_config, sdk
from .test_chat import upstream_models

HARD = ("Prove that the square root of 2 is irrational, then derive a general criterion for "
        "when the square root of an integer is irrational, step by step.")


async def post(handle, path, *, data=None, json_body=None, headers=None, method="POST"):
    async with aiohttp.ClientSession() as session:
        async with session.request(method, handle.base_url + path, data=data, json=json_body,
                                   headers=headers) as resp:
            return resp.status, dict(resp.headers), await resp.read()


@pytest.mark.parametrize(("payload", "status", "needle"), [
    (b"{not json", 400, "malformed JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"model": "auto"}', 400, "messages"),
    (b'{"model": "auto", "messages": [42]}', 400, "messages[0]"),
    (b'{"model": "auto", "stream": "yes", "messages": [{"role": "user", "content": "hi"}]}',
     400, "'stream'"),
    (b'{"model": "gtp-4o", "messages": [{"role": "user", "content": "hi"}]}', 404, "gpt-4o"),
])
async def test_bad_requests_get_openai_errors(proxy, x402_upstream, payload, status, needle):
    code, _, body = await post(proxy, "/v1/chat/completions", data=payload,
                               headers={"Content-Type": "application/json"})
    error = json.loads(body)["error"]
    assert code == status
    assert needle in error["message"] and error["type"] and "code" in error
    assert x402_upstream.count(path=CHAT_PATH) == 0


async def test_oversized_body_is_413(start, x402_upstream):
    proxy = await start(maxBodyBytes=2048)
    big = {"model": "auto", "messages": [{"role": "user", "content": "x" * 5000}]}
    code, _, body = await post(proxy, "/v1/chat/completions", json_body=big)
    assert code == 413 and json.loads(body)["error"]["type"] == "payload_too_large"
    assert x402_upstream.count() == 0


async def test_unreachable_upstream_is_502(funded_wallet_key, tmp_path):
    handle = await start_proxy(wallet_key=funded_wallet_key, port=0, api_base="http://127.0.0.1:9/api",
                               data_dir=tmp_path, config=make_config())
    try:
        with pytest.raises(openai.APIStatusError) as info:
            await sdk(handle).chat.completions.create(
                model="auto", messages=[{"role": "user", "content": "hi"}])
        assert info.value.status_code == 502
        assert "upstream" in info.value.message
    finally:
        await handle.close()


async def test_strict_budget_refuses_with_429(start, x402_upstream):
    proxy = await start(maxCostPerRun=0.0001, maxCostPerRunMode="strict")
    code, headers, body = await post(proxy, "/v1/chat/completions", json_body={
        "model": "premium", "messages": [{"role": "user", "content": HARD}]})
    assert code == 429
    assert headers["X-ClawRouter-Cost-Cap-Exceeded"] == "1"
    assert json.loads(body)["error"]["code"] == "cost_cap_exceeded"
    assert x402_upstream.count(path=CHAT_PATH) == 0


async def test_graceful_budget_downgrades(start, x402_upstream):
    proxy = await start(maxCostPerRun=0.0001)
    raw = await sdk(proxy).chat.completions.with_raw_response.create(
        model="premium", messages=[{"role": "user", "content": HARD}])
    assert raw.headers["x-clawrouter-model"] == "nvidia/gpt-oss-120b"
    assert "budget" in raw.headers["x-clawrouter-notice"]
    assert upstream_models(x402_upstream) == []  # the free model is not paid for


async def test_budget_accumulates_per_session(start, x402_upstream):
    proxy = await start(maxCostPerRun=0.0025, maxCostPerRunMode="strict")
    client = sdk(proxy)
    for n in range(2):
        await client.chat.completions.create(
            model="blockrun/deepseek", messages=[{"role": "user", "content": f"hi {n}"}],
            max_tokens=10, extra_headers={"x-session-id": "s1"})
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(
            model="blockrun/deepseek", messages=[{"role": "user", "content": "hi 3"}],
            max_tokens=10, extra_headers={"x-session-id": "s1"})
    # another session has its own budget
    await client.chat.completions.create(
        model="blockrun/deepseek", messages=[{"role": "user", "content": "hi 4"}],
        max_tokens=10, extra_headers={"x-session-id": "s2"})


async def test_empty_wallet_falls_back_to_free_model(start, x402_upstream):
    broke = "0x" + "11" * 32
    x402_upstream.ledger.fund(Account.from_key(broke).address, 0)
    proxy = await start(key=broke)
    reply = await sdk(proxy).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hello there"}])
    assert reply.headers["x-clawrouter-model"] == "nvidia/gpt-oss-120b"
    assert reply.parse().choices[0].message.content.startswith("Echo from nvidia/gpt-oss-120b")
    assert x402_upstream.ledger.settlements == []


async def test_health_stats_and_usage_log(proxy, x402_upstream, funded_wallet_key):
    client = sdk(proxy)
    await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    code, _, body = await post(proxy, "/health", method="GET")
    health = json.loads(body)
    assert code == 200 and health["status"] == "ok" and health["wallet"] == proxy.wallet_address
    assert funded_wallet_key[2:] not in body.decode()
    code, _, body = await post(proxy, "/stats?days=1", method="GET")
    stats = json.loads(body)
    assert stats["totalRequests"] == 2 and stats["cacheHits"] == 1
    assert stats["totalCost"] == pytest.approx(0.001)
    assert stats["byTier"]["SIMPLE"]["count"] == 2
    logs = list((proxy.services.data_dir / "logs").glob("usage-*.jsonl"))
    lines = [json.loads(line) for line in logs[0].read_text().splitlines()]
    assert {"session", "requestedModel", "model", "tier", "inputTokens", "outputTokens", "cost",
            "baselineCost", "savings", "latencyMs", "cacheHit", "fallbacks"} <= set(lines[0])
    assert lines[0]["cost"] == pytest.approx(0.001) and lines[1]["cacheHit"] is True
    code, _, body = await post(proxy, "/stats", method="DELETE")
    assert code == 200 and json.loads(body)["deletedFiles"] == 1
    for days in ("abc", "%C2%B2", "9" * 5000, "0", "366"):  # "²": a digit to isdigit(), not to int()
        code, _, body = await post(proxy, f"/stats?days={days}", method="GET")
        assert code == 400 and "days must be a whole number" in json.loads(body)["error"]["message"]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_reading_or_clearing_stats_never_stalls_other_requests(proxy, monkeypatch, method):
    """Aggregating or deleting a large usage log takes seconds: it must not block the loop."""
    usage = proxy.services.usage
    release = threading.Event()

    def slow(real):
        def run(*args):
            release.wait(10)  # stands in for reading a log of millions of lines
            return real(*args)
        return run

    monkeypatch.setattr(usage, "aggregate", slow(usage.aggregate))
    monkeypatch.setattr(usage, "clear", slow(usage.clear))
    stats = asyncio.ensure_future(post(proxy, "/stats", method=method))
    try:
        code, _, _ = await asyncio.wait_for(post(proxy, "/health", method="GET"), timeout=3)
        assert code == 200 and not stats.done()
    finally:
        release.set()
    code, _, body = await asyncio.wait_for(stats, timeout=10)
    assert code == 200 and json.loads(body)


async def test_other_v1_routes_are_forwarded_and_paid(proxy, x402_upstream, payer):
    x402_upstream.set_price("/v1/embeddings", "0.0005")
    code, _, body = await post(proxy, "/v1/embeddings", json_body={"input": "hi", "model": "e"})
    assert code == 200 and json.loads(body)["path"] == "/v1/embeddings"
    assert x402_upstream.ledger.total_paid(payer) == 500
    code, _, body = await post(proxy, "/nope", method="GET")
    assert code == 404 and json.loads(body)["error"]["type"] == "not_found"


async def test_second_start_on_same_port_reuses(proxy, funded_wallet_key, tmp_path):
    port = int(proxy.base_url.rsplit(":", 1)[1])
    again = await start_proxy(wallet_key=funded_wallet_key, port=port, data_dir=tmp_path / "x",
                              config=make_config())
    assert again.reused and again.base_url == proxy.base_url and again.services is None
    await again.close()  # no-op: the original keeps serving
    code, _, _ = await post(proxy, "/health", method="GET")
    assert code == 200


async def test_web_pages_and_foreign_hosts_are_refused(proxy, x402_upstream):
    body = {"model": "auto", "messages": [{"role": "user", "content": "spend my money"}]}
    code, _, raw = await post(proxy, "/v1/chat/completions", json_body=body,
                              headers={"Origin": "https://evil.example"})
    assert code == 403 and json.loads(raw)["error"]["code"] == "forbidden_origin"
    code, _, raw = await post(proxy, "/health", method="GET",
                              headers={"Host": "evil.example:8402"})
    assert code == 403 and json.loads(raw)["error"]["code"] == "forbidden_host"
    code, _, _ = await post(proxy, "/v1/chat/completions", json_body=body,
                            headers={"Origin": "http://localhost:3000"})
    assert code == 200
    assert x402_upstream.count(path=CHAT_PATH, paid=True) == 1


async def test_clawrouter_calling_itself_is_refused_before_paying(proxy, x402_upstream, payer):
    """An image URL (or --api-base) pointing at the proxy would make it pay for calls nobody
    asked for, or loop: its own requests are refused on the paying routes."""
    x402_upstream.set_price("/v1/embeddings", "0.0005")
    ours = {"User-Agent": f"clawrouter/{__version__}"}
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    for method, path, payload in [("POST", "/v1/chat/completions", body),
                                  ("GET", "/v1/embeddings", None),
                                  ("POST", "/v1/embeddings", {"input": "hi"})]:
        code, _, raw = await post(proxy, path, json_body=payload, headers=ours, method=method)
        assert code == 508 and json.loads(raw)["error"]["code"] == "loop_detected", path
    # an image URL pointing at a paying route of the proxy: the outbound policy refuses the
    # proxy's own address before connecting (docs/images.md), so it never gets as far as a 508
    code, _, raw = await post(proxy, "/v1/images/image2image", json_body={
        "prompt": "x", "image": proxy.base_url + "/v1/embeddings"})
    assert code == 400
    assert json.loads(raw)["error"]["message"] == "image: could not fetch the image at that URL"
    assert x402_upstream.ledger.total_paid(payer) == 0
    code, _, _ = await post(proxy, "/health", method="GET", headers=ours)
    assert code == 200  # free routes still answer it (e.g. the proxy-reuse check)


async def test_images_count_against_the_session_budget(start, x402_upstream, payer):
    proxy = await start(maxCostPerRun=0.05, maxCostPerRunMode="strict")
    body = {"model": "dall-e-3", "prompt": "a red kite"}  # $0.04 per image
    headers = {"x-session-id": "art"}
    code, _, _ = await post(proxy, "/v1/images/generations", json_body=body, headers=headers)
    assert code == 200
    code, resp_headers, raw = await post(proxy, "/v1/images/generations", json_body=body,
                                         headers=headers)
    assert code == 429 and resp_headers["X-ClawRouter-Cost-Cap-Exceeded"] == "1"
    assert x402_upstream.ledger.total_paid(payer) == 40_000  # only the first image was paid


async def test_a_corrupt_exclusion_list_is_a_warning_not_an_outage(proxy, x402_upstream):
    """Every routed request used to be a 500 until the file was fixed."""
    path = proxy.services.data_dir / "exclude-models.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('["deepseek", ')
    for text in ("hi", "hello"):
        raw = await sdk(proxy).chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": text}])
        assert raw.http_response.status_code == 200
    assert not path.exists()
    assert list(path.parent.glob("exclude-models.json.unreadable-*"))
    code, _, body = await post(proxy, "/health", method="GET")
    health = json.loads(body)
    assert code == 200 and health["status"] == "ok"
    assert len(health["warnings"]) == 1 and "exclude-models.json" in health["warnings"][0]


async def test_health_has_no_warnings_normally(proxy):
    code, _, body = await post(proxy, "/health", method="GET")
    assert code == 200 and json.loads(body)["warnings"] == []
