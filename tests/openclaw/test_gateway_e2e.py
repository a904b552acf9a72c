"""End to end against the REAL OpenClaw gateway (npm ``openclaw@2026.9.6`` on Node 24).

Started here, all on 127.0.0.1: the x402 test upstream (payments checked by the official SDK,
chat priced like BlockRun by the request's output cap), our proxy in front of it, and the
gateway with HOME in a temp folder, configured by ``clawrouter openclaw-config --write`` (which
also installs our plugin with ``openclaw plugins install --link --force``). Messages are typed
into a chat surface with ``openclaw gateway call chat.send`` and read back with ``chat.history``.

The first run installs Node and OpenClaw into ``.cache/openclaw/`` (minutes); later runs reuse
it. ``CLAWROUTER_SKIP_OPENCLAW=1`` skips this module.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from eth_account import Account

from clawrouter_plugin.catalog import load_catalog
from clawrouter_plugin.plugin import setup_services
from clawrouter_plugin.proxy.app import create_app
from clawrouter_plugin.services import Services, build_services
from tests.images.conftest import catalog_price, image_handler
from tests.openclaw.gateway import REPO, Gateway, install, message_text
from tests.proxy.conftest import make_config
from tests.support.x402_upstream import CHAT_PATH, IMAGE_PATH, X402TestUpstream

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(os.environ.get("CLAWROUTER_SKIP_OPENCLAW") == "1",
                       reason="CLAWROUTER_SKIP_OPENCLAW=1"),
]
CATALOG = load_catalog()
HELLO_BUDGET_USD = 0.01


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def output_cap_price(call: Any) -> float | None:
    """Like BlockRun: the model's price for the input (about 4 characters a token) plus the
    whole output cap the request asks for; the free model is free."""
    body = call.json() or {}
    model = CATALOG.chat.get(str(body.get("model")))
    if model is None or model.is_free:
        return None
    cap = body.get("max_completion_tokens") or body.get("max_tokens") or model.max_output
    usd = (len(call.body) / 4 * model.input_price + int(cap) * model.output_price) / 1e6
    return max(round(usd, 6), 0.000001)


@dataclass
class Seen:
    """One answer of our proxy: path, status and the routing headers."""

    path: str
    status: int
    headers: dict[str, str]


@dataclass
class Stack:
    upstream: X402TestUpstream
    services: Services
    gateway: Gateway
    payer: str
    seen: list[Seen] = field(default_factory=list)

    def mark(self) -> tuple[int, int, int]:
        return len(self.seen), len(self.upstream.requests), len(self.upstream.ledger.settlements)

    def since(self, mark: tuple[int, int, int]) -> tuple[list[Seen], list, list]:
        """What the proxy answered, the upstream received and the ledger settled since."""
        return (self.seen[mark[0]:], self.upstream.requests[mark[1]:],
                self.upstream.ledger.settlements[mark[2]:])


async def start_proxy_app(services: Services, port: int, seen: list[Seen]) -> web.AppRunner:
    """Our proxy app (as `clawrouter serve` builds it) with one outer middleware that notes
    each answer's status and routing headers."""
    @web.middleware
    async def note(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        seen.append(Seen(request.path, response.status, dict(response.headers)))
        return response

    app = create_app(services)
    app.middlewares.insert(0, note)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    services.public_url = f"http://localhost:{port}"
    return runner


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(tmp_path_factory):
    cache = install()
    root = tmp_path_factory.mktemp("openclaw-e2e")
    upstream = await X402TestUpstream().start()
    upstream.set_price(CHAT_PATH, output_cap_price)
    upstream.set_price(IMAGE_PATH, catalog_price)
    upstream.set_handler(IMAGE_PATH, image_handler("b64"))
    key = "0x" + secrets.token_hex(32)
    payer = Account.from_key(key).address
    upstream.ledger.fund(payer, 100)
    proxy_port, gateway_port = free_port(), free_port()
    config = make_config(apiBase=upstream.url, port=proxy_port,
                         dataDir=str(root / "data"))
    services = await build_services(config, wallet_key=key)
    setup_services(services)
    seen: list[Seen] = []
    runner = await start_proxy_app(services, proxy_port, seen)
    gateway = Gateway(cache, root, gateway_port)
    try:
        await gateway.run("openclaw", "config", "set", "gateway.mode", "local")
        await gateway.run("openclaw", "config", "set", "gateway.port", str(gateway_port))
        # what a user runs: the provider block, per-turn maxTokens, the plugin, its install
        written = await gateway.run(
            sys.executable, "-m", "clawrouter_plugin", "openclaw-config", "--write",
            "--port", str(proxy_port),
            env=gateway.env(OPENCLAW_CONFIG=str(root / "none.yaml")))
        assert "Installing the plugin" in written and "installed and enabled" in written, written
        await gateway.run("openclaw", "config", "validate")
        await gateway.start()
        yield Stack(upstream, services, gateway, payer, seen)
    finally:
        await gateway.stop()
        await runner.cleanup()
        await services.aclose()
        await upstream.close()


def chat_answers(seen: list[Seen]) -> list[Seen]:
    return [s for s in seen if s.path == "/v1/chat/completions"]


def paid_usd(settlements: list) -> float:
    return sum(s.amount for s in settlements) / 1e6


async def test_the_plugin_config_is_valid_in_openclaw(stack):
    config = json.loads(stack.gateway.config_path.read_text())
    entry = config["plugins"]["entries"]["blockrun"]
    assert entry["enabled"] is True and entry["config"]["port"] == stack.services.config.port
    assert str(REPO / "openclaw") in config["plugins"]["load"]["paths"]
    rows = config["models"]["providers"]["blockrun"]["models"]
    assert max(row["maxTokens"] for row in rows) <= 8192
    listed = await stack.gateway.run("openclaw", "plugins", "list")
    assert "blockrun" in listed


async def test_hello_routes_simple_and_costs_at_most_a_cent(stack):
    mark = stack.mark()
    after = await stack.gateway.reply("e2e-hello", "hello")
    answers, requests, settlements = stack.since(mark)
    chats = chat_answers(answers)
    assert chats, f"the proxy got no chat turn: {after}"
    assert all(s.status == 200 for s in chats), [(s.status, s.headers) for s in chats]
    first = chats[0].headers
    paid = paid_usd(settlements)
    caps = [(r.json() or {}).get("max_completion_tokens") for r in requests if r.paid]
    summary = (f"'hello' went to {first.get('x-clawrouter-tier')} "
               f"({first.get('x-clawrouter-model')}) and paid ${paid:.4f} "
               f"for {len(settlements)} request(s) with output caps {caps}")
    assert first.get("x-clawrouter-tier") == "SIMPLE" and settlements and \
        paid <= HELLO_BUDGET_USD, summary


async def test_a_proof_routes_to_reasoning_or_complex(stack):
    mark = stack.mark()
    await stack.gateway.reply(
        "e2e-proof", "Prove that there are infinitely many prime numbers, step by step, "
        "and then prove that the square root of 2 is irrational.")
    chats = chat_answers(stack.since(mark)[0])
    assert chats and all(s.status == 200 for s in chats)
    assert chats[0].headers.get("x-clawrouter-tier") in ("REASONING", "COMPLEX"), \
        chats[0].headers


async def test_imagegen_attaches_the_image_and_pays_for_exactly_one(stack):
    mark = stack.mark()
    after = await stack.gateway.reply("e2e-image", "/imagegen a lighthouse at dawn, watercolour")
    answers, requests, settlements = stack.since(mark)
    assert chat_answers(answers) == [], "the command reached the model"
    assert [r.path for r in requests if r.paid] == [IMAGE_PATH]
    assert len(settlements) == 1 and settlements[0].path == IMAGE_PATH
    stored = list((stack.services.data_dir / "images").iterdir())
    assert len(stored) == 1
    assistant = [m for m in after if m.get("role") == "assistant"]
    assert assistant, after
    images = [part for m in assistant for part in m.get("content") or []
              if isinstance(part, dict) and part.get("type") == "image"]
    # OpenClaw attached the stored file itself (it names it, and knows its size)
    assert [(p.get("alt"), p.get("sizeBytes"), p.get("mimeType")) for p in images] == \
        [(stored[0].name, stored[0].stat().st_size, "image/png")], json.dumps(assistant)[:3000]
    assert "http://localhost" not in "".join(message_text(m) for m in assistant)


@pytest.mark.parametrize("command, expected", [("/stats", "ClawRouter"),
                                               ("/wallet", "Fund it"),
                                               ("/cr-stats", "ClawRouter")])
async def test_stats_and_wallet_answer_without_any_chat_payment(stack, command, expected):
    mark = stack.mark()
    after = await stack.gateway.reply(f"e2e-{command.strip('/')}", command)
    requests = stack.since(mark)[1]
    # the gateway may make completions of its own meanwhile (one was seen once, streamed, in a
    # full run); what must never happen is the command itself reaching the model and paying
    carried = [r for r in requests if any(
        m.get("role") == "user" and command in message_text(m)
        for m in (r.json() or {}).get("messages") or [] if isinstance(m, dict))]
    assert carried == [], [r.json() for r in carried]
    text = "\n".join(message_text(m) for m in after if m.get("role") == "assistant")
    assert expected in text, after
    if command == "/wallet":
        assert stack.payer in text


async def test_nothing_got_a_5xx(stack):
    assert stack.seen, "the proxy answered nothing"
    assert [(s.path, s.status) for s in stack.seen if s.status >= 500] == []
    assert [(r.path, r.status) for r in stack.upstream.requests if r.status >= 500] == []
