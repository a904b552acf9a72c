"""The proxy's front door: who may call it, which paths reach the paid upstream, how deep a
JSON body may nest. Every refusal here must happen before anything is forwarded or signed."""

from __future__ import annotations

import json

import pytest

from tests.support.x402_upstream import CHAT_PATH

from .test_limits import post

CHAT = {"model": "blockrun/deepseek", "messages": [{"role": "user", "content": "spend it"}]}
CROSS_SITE = [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},  # a sandboxed frame or a file:// page
    {"Sec-Fetch-Site": "cross-site"},  # what an <img> tag elsewhere sends, with no Origin
    {"Referer": "https://evil.example/page.html"},
    {"Referer": "http://evil.example"},
    {"Origin": "http://localhost.evil.example"},
    {"Origin": "http://127.0.0.1:8402", "Sec-Fetch-Site": "cross-site"},
]


def assert_untouched(upstream, payer) -> None:
    assert upstream.requests == []  # nothing forwarded, so nothing signed
    assert upstream.ledger.total_paid(payer) == 0


@pytest.mark.parametrize("headers", CROSS_SITE)
async def test_cross_site_get_is_refused_before_the_upstream(proxy, x402_upstream, payer,
                                                              headers):
    x402_upstream.set_price("/v1/some/path", "0.001")
    code, _, raw = await post(proxy, "/v1/some/path", method="GET", headers=headers)
    assert code == 403
    assert json.loads(raw)["error"]["code"] == "forbidden_origin"
    assert_untouched(x402_upstream, payer)


@pytest.mark.parametrize("headers", CROSS_SITE)
async def test_cross_site_chat_is_refused(proxy, x402_upstream, payer, headers):
    code, _, raw = await post(proxy, CHAT_PATH, json_body=CHAT, headers=headers)
    assert code == 403 and json.loads(raw)["error"]["type"]
    assert_untouched(x402_upstream, payer)


@pytest.mark.parametrize("path", ["/health", "/stats", "/cache", "/v1/models"])
async def test_free_routes_refuse_other_sites_too(proxy, path):
    code, _, raw = await post(proxy, path, method="GET",
                              headers={"Sec-Fetch-Site": "cross-site"})
    assert code == 403 and json.loads(raw)["error"]["code"] == "forbidden_origin"


@pytest.mark.parametrize("headers", [
    {},
    {"Origin": "http://localhost:3000"},
    {"Origin": "http://127.0.0.1:8402"},  # the proxy's own origin
    {"Origin": "http://127.5.6.7"},
    {"Origin": "http://[::1]:8402"},
    {"Referer": "http://localhost:8402/images/x.png"},
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},  # typed into the address bar
    {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:3000"},
])
async def test_local_callers_still_work(proxy, x402_upstream, payer, headers):
    code, _, _ = await post(proxy, CHAT_PATH, json_body=CHAT, headers=headers)
    assert code == 200
    assert x402_upstream.ledger.total_paid(payer) == 1000


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/some/path"),
    ("POST", "/v1/some/path"),
    ("POST", "/v1/x/users/lookup"),
    ("POST", "/v1/images/edits"),
    ("GET", "/v1/embeddings"),  # an allowed path, not an allowed method
    ("DELETE", "/v1/chat/completions"),
    ("GET", "/v1/"),
])
async def test_paths_outside_the_allowlist_are_404_without_the_upstream(proxy, x402_upstream,
                                                                        payer, method, path):
    x402_upstream.set_price(path, "0.001")
    code, _, raw = await post(proxy, path, method=method,
                              json_body={"input": "x"} if method == "POST" else None)
    assert code in (404, 405)
    assert json.loads(raw)["error"]["code"] in ("not_found", "method_not_allowed")
    assert_untouched(x402_upstream, payer)


async def test_a_model_is_described_locally_and_never_paid(proxy, x402_upstream, payer):
    """``client.models.retrieve()`` is a GET: answered from the catalog, the upstream is never
    asked (before, it was forwarded and its 402 paid)."""
    x402_upstream.set_price("/v1/models/openai/gpt-4o", "0.001")
    code, _, raw = await post(proxy, "/v1/models/openai/gpt-4o", method="GET")
    assert code == 200 and json.loads(raw)["id"] == "openai/gpt-4o"
    code, _, raw = await post(proxy, "/v1/models/auto", method="GET")
    assert code == 200 and json.loads(raw)["kind"] == "profile"
    code, _, raw = await post(proxy, "/v1/models/no-such-model", method="GET")
    assert code == 404 and json.loads(raw)["error"]["code"] == "model_not_found"
    assert_untouched(x402_upstream, payer)


def nested(depth: int) -> bytes:
    return b'{"model":"auto","messages":[{"role":"user","content":"hi"}],"x":' + \
        b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(("path", "depth"), [
    (path, depth) for path in (CHAT_PATH, "/v1/images/generations", "/v1/embeddings")
    for depth in (200, 1_000, 100_000)
    # before the fix the test upstream's own json.loads crashed on 100,000 levels
    if (path, depth) != ("/v1/embeddings", 100_000)])
async def test_deeply_nested_json_is_a_400_before_anything_else(proxy, x402_upstream, payer,
                                                                 depth, path):
    x402_upstream.set_price("/v1/embeddings", "0.001")
    code, _, raw = await post(proxy, path, data=nested(depth),
                              headers={"Content-Type": "application/json"})
    assert code == 400, raw[:300]
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error" and "nested" in error["message"]
    assert_untouched(x402_upstream, payer)


async def test_ordinary_nesting_is_fine(proxy, x402_upstream):
    """A tool schema nested 40 levels (deeper than real requests go) is accepted."""
    schema: dict = {"type": "string"}
    for _ in range(20):
        schema = {"type": "object", "properties": {"inner": schema}}
    body = {**CHAT, "tools": [{"type": "function",
                               "function": {"name": "f", "parameters": schema}}]}
    code, _, raw = await post(proxy, CHAT_PATH, json_body=body)
    assert code == 200, raw[:300]


@pytest.mark.parametrize("path", [CHAT_PATH, "/v1/images/generations",
                                  "/v1/images/image2image", "/v1/embeddings"])
async def test_the_body_limit_holds_on_every_route_that_reads_a_body(start, x402_upstream,
                                                                     payer, path):
    proxy = await start(maxBodyBytes=2048)
    code, _, raw = await post(proxy, path, json_body={"model": "auto", "prompt": "x" * 5000,
                                                      "input": "x"})
    assert code == 413 and json.loads(raw)["error"]["code"] == "payload_too_large"
    assert_untouched(x402_upstream, payer)
