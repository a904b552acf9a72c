"""The plugin in the host against the x402 test upstream: the provider hook shares the proxy's
pipeline (payment, session, usage), commands reach the live services, and a reused proxy is
spoken to over HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import socket

import aiohttp
import pytest
from eth_account import Account

from clawrouter_plugin.config import PluginConfig
from clawrouter_plugin.host.host import Conversation, Host
from clawrouter_plugin.proxy.server import start_proxy

CLOSED_RPC = "http://127.0.0.1:9/"  # nothing listens: the balance stays unknown, no network


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def plugin_config(x402_upstream, tmp_path):
    return {"port": 0, "apiBase": x402_upstream.url, "dataDir": str(tmp_path / "data"),
            "payment": {"rpcUrl": CLOSED_RPC}}


@pytest.fixture
async def host(plugin_config, funded_wallet_key, monkeypatch, tmp_path):
    monkeypatch.setenv("BLOCKRUN_WALLET_KEY", funded_wallet_key)
    monkeypatch.delenv("CLAWROUTER_DISABLED", raising=False)
    host = Host({}, plugin_configs={"blockrun": plugin_config}, state_dir=tmp_path)
    host.load_builtin()
    async with host:
        yield host


def chat_requests(upstream) -> list[dict]:
    return [r.json() for r in upstream.requests if r.path == "/v1/chat/completions" and r.paid]


async def test_completion_goes_through_the_pipeline_with_the_session(host, x402_upstream,
                                                                     funded_wallet_key, tmp_path):
    conv = Conversation(session_id="conv-42")
    reply = await host.dispatch("what is 2+2?", conv)
    assert not reply.is_error and reply.text.startswith("Echo from ")
    assert reply.text.endswith(": what is 2+2?")
    payer = Account.from_key(funded_wallet_key).address
    assert x402_upstream.ledger.total_paid(payer) > 0
    stats = (await host.dispatch("/stats 1", conv)).text  # reading waits for queued lines
    assert re.search(r"Total Requests:\s+1\b", stats)
    usage = (tmp_path / "data" / "logs").glob("usage-*.jsonl")
    records = [json.loads(line) for path in usage for line in path.read_text().splitlines()]
    assert len(records) == 1 and records[0]["session"] == "conv-42"
    assert records[0]["requestedModel"] == "auto"


async def test_streaming_completion(host, x402_upstream):
    parts: list[str] = []
    reply = await host.dispatch("say something", Conversation(), on_delta=parts.append)
    assert len(parts) > 1 and "".join(parts) == reply.text
    assert reply.text.endswith(": say something")
    assert chat_requests(x402_upstream)[-1]["stream"] is True


async def test_model_command_changes_the_next_routing(host, x402_upstream):
    conv = Conversation()
    chosen = await host.dispatch("/model br-haiku", conv)
    assert chosen.command == "model" and not chosen.is_error
    reply = await host.dispatch("hello", conv)
    assert reply.text.startswith("Echo from anthropic/claude-haiku-4.5:")
    assert chat_requests(x402_upstream)[-1]["model"] == "anthropic/claude-haiku-4.5"
    other = await host.dispatch("hello", Conversation())  # another conversation is unaffected
    assert "claude-haiku" not in other.text


async def test_stats_counts_the_requests_just_made(host):
    conv = Conversation()
    await host.dispatch("first question", conv)
    await host.dispatch("second question", conv)
    reply = await host.dispatch("/stats 1", conv)
    assert "Total Requests:   2" in reply.text and "Period:           today" in reply.text


async def test_exclude_and_wallet_use_the_live_services(host, funded_wallet_key, tmp_path):
    conv = Conversation()
    added = await host.dispatch("/exclude add deepseek", conv)
    assert added.text.startswith("Excluded: deepseek/deepseek-chat")
    assert json.loads((tmp_path / "data" / "exclude-models.json").read_text()) == \
        ["deepseek/deepseek-chat"]
    status = await host.dispatch("/wallet", conv)
    assert Account.from_key(funded_wallet_key).address in status.text
    assert "unknown (RPC unreachable)" in status.text
    assert funded_wallet_key[2:] not in status.text


async def test_imagegen_command_gives_a_local_url(host):
    reply = await host.dispatch("/imagegen a red square", Conversation())
    assert not reply.is_error, reply.text
    assert reply.media_urls and reply.media_urls[0].startswith("http://localhost:")
    assert "/images/" in reply.media_urls[0]


async def test_imagegen_intercept_on_the_proxy_path(plugin_config, funded_wallet_key,
                                                    monkeypatch, tmp_path):
    port = free_port()
    monkeypatch.setenv("BLOCKRUN_WALLET_KEY", funded_wallet_key)
    host = Host({}, plugin_configs={"blockrun": {**plugin_config, "port": port}})
    host.load_builtin()
    async with host, aiohttp.ClientSession() as http:
        body = {"model": "blockrun/auto",
                "messages": [{"role": "user", "content": "/imagegen a blue circle"}]}
        async with http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body) as resp:
            data = await resp.json()
    text = data["choices"][0]["message"]["content"]
    assert data["model"] == "clawrouter/imagegen" and "localhost" not in text
    [media] = [line for line in text.splitlines() if line.startswith("MEDIA:/")]
    assert "/images/" in media


async def test_reused_proxy_is_reached_over_http(x402_upstream, funded_wallet_key, tmp_path,
                                                 monkeypatch):
    port = free_port()
    config = PluginConfig.model_validate({"payment": {"rpcUrl": CLOSED_RPC}})
    owner = await start_proxy(wallet_key=funded_wallet_key, port=port, api_base=x402_upstream.url,
                              data_dir=tmp_path / "owner", config=config)
    try:
        monkeypatch.setenv("BLOCKRUN_WALLET_KEY", funded_wallet_key)
        host = Host({}, plugin_configs={"blockrun": {
            "port": port, "apiBase": x402_upstream.url, "dataDir": str(tmp_path / "mine"),
            "payment": {"rpcUrl": CLOSED_RPC}}})
        host.load_builtin()
        async with host:
            conv = Conversation(session_id="reused-1")
            plain = await host.dispatch("over http", conv)
            assert plain.text.endswith(": over http")
            parts: list[str] = []
            streamed = await host.dispatch("streamed too", conv, on_delta=parts.append)
            assert streamed.text.endswith(": streamed too") and len(parts) > 1
            refused = await host.dispatch("/stats", conv)
            assert refused.is_error and f"already running at http://127.0.0.1:{port}" in refused.text
    finally:
        await owner.close()  # writes the usage lines still gathering
    records = [json.loads(line) for path in (tmp_path / "owner" / "logs").glob("*.jsonl")
               for line in path.read_text().splitlines()]
    assert [r["session"] for r in records] == ["reused-1", "reused-1"]


async def test_upstream_unreachable_is_a_clean_error(funded_wallet_key, monkeypatch, tmp_path):
    monkeypatch.setenv("BLOCKRUN_WALLET_KEY", funded_wallet_key)
    host = Host({}, plugin_configs={"blockrun": {
        "port": 0, "apiBase": f"http://127.0.0.1:{free_port()}/api",
        "dataDir": str(tmp_path / "d"), "payment": {"rpcUrl": CLOSED_RPC},
        "upstream": {"maxAttempts": 1, "attemptTimeoutSeconds": 5}}})
    host.load_builtin()
    async with host:
        reply = await host.dispatch("hello?", Conversation())
    assert reply.is_error and reply.text.startswith("⚠️ ") and "Traceback" not in reply.text


def test_disabled_registers_nothing(monkeypatch):
    monkeypatch.setenv("CLAWROUTER_DISABLED", "1")
    host = Host({})
    host.load_builtin()
    assert not host.commands and not host.providers


@pytest.mark.parametrize("wanted, current", [
    ("eco", "blockrun/eco"), ("blockrun/br-haiku", "blockrun/anthropic/claude-haiku-4.5"),
    ("br/premium", "blockrun/premium"), ("openai/gpt-4o-mini", "blockrun/openai/gpt-4o-mini"),
    ("blockrun/auto", "blockrun/auto"),
])
async def test_chat_starting_model(host, wanted, current):
    from clawrouter_plugin.host.chat import choose_model

    conv = Conversation()
    await choose_model(host, conv, wanted)
    assert conv.model == "blockrun/auto"  # the choice is the session's preference
    shown = await host.dispatch("/model", conv)
    assert shown.text.startswith(f"Current: {current} — ")


async def test_chat_starting_model_unknown(host):
    from clawrouter_plugin.errors import ClawRouterError
    from clawrouter_plugin.host.chat import choose_model

    with pytest.raises(ClawRouterError, match="--model: Unknown model \"nope-model\""):
        await choose_model(host, Conversation(), "blockrun/nope-model")


async def test_a_cancelled_completion_still_keeps_its_paid_answer(host, x402_upstream,
                                                                  funded_wallet_key, tmp_path):
    """The host cancels a non-streaming call while the upstream works (its user stopped it):
    the paid answer is still cached and recorded once, so asking again costs nothing."""
    from clawrouter_plugin.host.api import ProviderRequest
    from tests.support import handlers

    x402_upstream.set_handler("/v1/chat/completions", handlers.delayed(0.5))
    provider = host.providers["blockrun"]
    body = {"model": "auto", "messages": [{"role": "user", "content": "stop me"}]}
    call = asyncio.ensure_future(provider.complete(ProviderRequest(body, "conv-c")))
    await asyncio.sleep(0.2)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    payer = Account.from_key(funded_wallet_key).address
    for _ in range(50):  # the upstream answers 0.5 s after the request
        await asyncio.sleep(0.1)
        if x402_upstream.ledger.total_paid(payer) > 0:
            break
    paid = x402_upstream.ledger.total_paid(payer)
    assert paid > 0
    again = await asyncio.wait_for(provider.complete(ProviderRequest(body, "conv-c")), 10)
    assert again["choices"][0]["message"]["content"].endswith(": stop me")
    assert x402_upstream.ledger.total_paid(payer) == paid  # a cache hit: not paid twice
    stats = (await host.dispatch("/stats 1", Conversation(session_id="conv-c"))).text
    assert re.search(r"Total Requests:\s+2\b", stats) and re.search(r"Cache Hits?:\s+1\b", stats)
