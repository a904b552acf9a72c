"""API keys on a shared proxy, end to end: real proxies on 127.0.0.1 with `server.requireKeys`
(the same middleware a non-loopback `server.host` turns on), the x402 test upstream verified
by the official SDK. Without a valid key nothing is routed or paid; with one, the usage records
and /stats say which key spent what; the secret never shows up anywhere after its creation."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from clawrouter_plugin.cli import main
from clawrouter_plugin.errors import ClawRouterError
from clawrouter_plugin.keys.local import LocalKeyStore
from clawrouter_plugin.proxy.app import create_app
from clawrouter_plugin.services import build_services
from tests.images.conftest import CATALOG, catalog_price, image_handler
from tests.support.x402_upstream import CHAT_PATH, IMAGE_PATH

from .conftest import make_config, sdk
from .test_costs import usage_lines
from .test_limits import post

KEYS = {"server": {"requireKeys": True}}
CHAT = {"model": "blockrun/deepseek", "messages": [{"role": "user", "content": "spend it"}]}


@pytest.fixture
def keys(tmp_path):
    """The key store of the default test data directory (``tmp_path / "data"``)."""
    return LocalKeyStore(tmp_path / "data" / "api-keys.json")


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def assert_untouched(upstream, payer) -> None:
    assert upstream.requests == []  # nothing forwarded, so nothing signed
    assert upstream.ledger.total_paid(payer) == 0


async def test_requests_without_a_valid_key_are_refused_before_anything_is_paid(
        start, keys, x402_upstream, payer):
    x402_upstream.set_price("/v1/embeddings", "0.001")
    alice, alice_secret = await keys.create("alice")
    revoked, revoked_secret = await keys.create("gone")
    await keys.revoke(revoked.id)
    proxy = await start(**KEYS)
    refused = [None, "Bearer", "Basic YWxpY2U6c2VjcmV0", "Bearer x402",
               f"Bearer {alice_secret[:-1]}", f"Bearer {revoked_secret}", alice_secret]
    for authorization in refused:
        headers = {"Authorization": authorization} if authorization is not None else None
        for method, path, body in [("POST", CHAT_PATH, CHAT), ("GET", "/v1/models", None),
                                   ("POST", "/v1/embeddings", {"model": "m", "input": "x"}),
                                   ("POST", "/v1/images/generations", {"prompt": "cat"}),
                                   ("GET", "/stats", None), ("DELETE", "/stats", None),
                                   ("GET", "/cache", None),
                                   ("POST", "/v1/clawrouter/commands/stats", {})]:
            code, response_headers, raw = await post(proxy, path, json_body=body,
                                                     headers=headers, method=method)
            assert code == 401, (authorization, path, raw[:200])
            error = json.loads(raw)["error"]
            assert error["type"] == "invalid_request_error"
            assert error["code"] == "invalid_api_key"
            assert response_headers["WWW-Authenticate"] == "Bearer"
            assert alice_secret not in raw.decode() and revoked_secret not in raw.decode()
    assert_untouched(x402_upstream, payer)
    assert usage_lines(proxy) == []


async def test_the_sdk_with_a_key_is_served_and_each_record_names_its_key(
        start, keys, x402_upstream, payer, caplog):
    caplog.set_level(logging.DEBUG)
    x402_upstream.set_price("/v1/embeddings", "0.002")
    alice, alice_secret = await keys.create("alice", daily_usd=5)
    bob, bob_secret = await keys.create("bob")
    proxy = await start(**KEYS)
    answer = await sdk(proxy, api_key=alice_secret).chat.completions.create(
        model="blockrun/deepseek", messages=[{"role": "user", "content": "hello"}])
    assert answer.choices[0].message.content
    # the same request from bob: a cache hit, free, and counted as bob's
    hit = await sdk(proxy, api_key=bob_secret).chat.completions.with_raw_response.create(
        model="blockrun/deepseek", messages=[{"role": "user", "content": "hello"}])
    assert hit.headers["x-clawrouter-cache"] == "HIT"
    code, _, raw = await post(proxy, "/v1/embeddings", json_body={"model": "m", "input": "x"},
                              headers=bearer(bob_secret))
    assert code == 200, raw[:300]
    x402_upstream.set_price(IMAGE_PATH, catalog_price)
    x402_upstream.set_handler(IMAGE_PATH, image_handler("data"))
    code, _, raw = await post(proxy, "/v1/images/generations", json_body={"prompt": "a fox"},
                              headers=bearer(alice_secret))
    assert code == 200, raw[:300]
    image_usd = CATALOG.images["google/nano-banana"].price("1024x1024")
    assert x402_upstream.ledger.total_paid_usd(payer) == pytest.approx(0.003 + image_usd)

    lines = usage_lines(proxy)
    assert [(line["key"], line["cacheHit"], line.get("kind", "chat")) for line in lines] == [
        (alice.id, False, "chat"), (bob.id, True, "chat"), (bob.id, False, "forward"),
        (alice.id, False, "image")]
    code, _, raw = await post(proxy, "/stats?days=1", method="GET", headers=bearer(bob_secret))
    by_key = json.loads(raw)["byKey"]
    assert by_key == {alice.id: {"requests": 2, "cost": pytest.approx(0.001 + image_usd)},
                      bob.id: {"requests": 2, "cost": 0.002}}
    everything = raw.decode() + caplog.text + json.dumps(lines)
    for secret in (alice_secret, bob_secret):
        assert secret not in everything and secret[15:] not in everything


async def test_health_is_minimal_without_a_key_and_full_with_one(start, keys, payer):
    _, secret = await keys.create("alice")
    proxy = await start(**KEYS)
    code, _, raw = await post(proxy, "/health", method="GET")
    assert code == 200 and json.loads(raw) == {"status": "ok", "service": "clawrouter",
                                               "version": json.loads(raw)["version"]}
    code, _, raw = await post(proxy, "/health?full=1", method="GET")
    assert code == 200 and "wallet" not in json.loads(raw) and "balance" not in json.loads(raw)
    code, _, raw = await post(proxy, "/health", method="GET", headers=bearer(secret))
    assert code == 200 and json.loads(raw)["wallet"] == payer
    code, _, raw = await post(proxy, "/health", method="GET", headers=bearer(secret + "x"))
    assert code == 401


async def test_a_key_revoked_with_the_cli_is_refused_within_a_second(start, keys, tmp_path):
    key, secret = await keys.create("alice")
    proxy = await start(**KEYS)
    code, _, _ = await post(proxy, CHAT_PATH, json_body=CHAT, headers=bearer(secret))
    assert code == 200
    args = ["keys", "revoke", key.id, "--data-dir", str(tmp_path / "data"),
            "--config", str(_empty_config(tmp_path))]
    assert await asyncio.to_thread(main, args) == 0
    revoked_at = time.monotonic()
    code = 200
    for _ in range(100):  # bounded: at most 100 requests, 20 ms apart
        code, _, _ = await post(proxy, "/v1/models", method="GET", headers=bearer(secret))
        if code == 401:
            break
        await asyncio.sleep(0.02)
    assert code == 401 and time.monotonic() - revoked_at < 1.0


def _empty_config(tmp_path):
    path = tmp_path / "openclaw.yaml"
    path.write_text("plugins:\n  entries:\n    blockrun:\n      config: {}\n")
    return path


async def test_without_any_key_a_proxy_that_needs_keys_does_not_start(start, keys, tmp_path):
    with pytest.raises(ClawRouterError, match="requireKeys is on, but there is no API key"):
        await start(**KEYS)
    key, _ = await keys.create("alice")
    await keys.revoke(key.id)  # a revoked key is no key
    with pytest.raises(ClawRouterError, match="refusing to listen on 0.0.0.0") as caught:
        await start(server={"host": "0.0.0.0"})  # refused before anything listens
    assert "clawrouter keys create" in caught.value.message


def test_serve_on_a_public_address_without_keys_exits_with_a_clear_message(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "clawrouter_plugin", "serve", "--host", "0.0.0.0", "--port",
         str(port), "--api-base", "http://127.0.0.1:9/api", "--data-dir", str(tmp_path / "d")],
        env={**os.environ, "OPENCLAW_CONFIG": str(tmp_path / "absent.yaml"),
             "HOME": str(tmp_path)}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr and "Traceback" not in result.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "clawrouter_plugin", "serve", "--host", "http://x", "--port",
         str(port), "--data-dir", str(tmp_path / "d")],
        env={**os.environ, "OPENCLAW_CONFIG": str(tmp_path / "absent.yaml"),
             "HOME": str(tmp_path)}, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--host" in bad.stderr and "Traceback" not in bad.stderr


async def test_an_app_for_a_public_address_takes_any_host_name_but_only_with_a_key(
        x402_upstream, funded_wallet_key, tmp_path, payer):
    """The app a `server.host: 0.0.0.0` proxy runs (served here on 127.0.0.1 only): it is
    reached by names it cannot know, so the Host check gives way to the key check."""
    store = LocalKeyStore(tmp_path / "data" / "api-keys.json")
    _, secret = await store.create("alice")
    config = make_config(server={"host": "0.0.0.0"}, apiBase=x402_upstream.url,
                         dataDir=str(tmp_path / "data"))
    services = await build_services(config, wallet_key=funded_wallet_key)
    server = TestServer(create_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url(CHAT_PATH))
        team_host = {"Host": "clawrouter.team.internal:8402"}
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=CHAT, headers=team_host) as resp:
                assert resp.status == 401
            assert_untouched(x402_upstream, payer)
            async with session.post(url, json=CHAT, headers={**team_host, **bearer(secret)}) \
                    as resp:
                assert resp.status == 200, await resp.text()
    finally:
        await server.close()
        await services.aclose()


async def test_a_local_proxy_needs_no_key(proxy, x402_upstream):
    """The default (127.0.0.1, requireKeys off): any Authorization or none, as before."""
    for headers in (None, {"Authorization": "Bearer x402"}):
        code, _, raw = await post(proxy, CHAT_PATH, json_body=CHAT, headers=headers)
        assert code == 200, raw[:200]
