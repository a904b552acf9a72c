"""openclaw/: the manifest is generated from the config model, and index.js registers its
commands synchronously and answers them through the proxy's command endpoint (run with the
machine's Node; the real gateway is in test_gateway_e2e.py)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import sys
from pathlib import Path

import pytest

from clawrouter_plugin.config import PluginConfig
from clawrouter_plugin.host.openclaw_plugin import MANIFEST, PLUGIN_DIR, main, manifest, render

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")
# Loads index.js with a recording api, then runs one handler: argv = config, name, ctx.
HARNESS = """
const [config, name, ctx] = process.argv.slice(1).map((a) => JSON.parse(a));
const plugin = (await import(process.env.PLUGIN)).default;
const commands = new Map(); const services = []; const stops = [];
const result = plugin.register({ pluginConfig: config, registrationMode: "full", logger: {},
  registerCommand: (c) => commands.set(c.name, c), registerService: (s) => { services.push(s.id); stops.push(s.stop); } });
const reply = name ? await commands.get(name).handler(ctx) : null;
for (const stop of stops) await stop();
console.log(JSON.stringify({ sync: result === undefined, id: plugin.id, services,
  commands: [...commands.values()].map((c) => ({ name: c.name, acceptsArgs: c.acceptsArgs,
    requireAuth: c.requireAuth, description: c.description })), reply }));
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def run_plugin(config: dict, name: str = "", ctx: dict | None = None,
                     env: dict | None = None) -> dict:
    process = await asyncio.create_subprocess_exec(
        NODE, "--input-type=module", "-e", HARNESS, json.dumps(config), json.dumps(name),
        json.dumps(ctx or {}), env={"PLUGIN": (PLUGIN_DIR / "index.js").as_uri(), **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return json.loads(out)


def test_manifest_is_in_sync_with_the_config_model():
    assert MANIFEST.read_text("utf-8") == render(manifest()), \
        "stale: run `python -m clawrouter_plugin.host.openclaw_plugin --write`"
    data = json.loads(MANIFEST.read_text("utf-8"))
    assert data["id"] == "blockrun" and data["activation"] == {"onStartup": True}
    assert data["configSchema"] == PluginConfig.model_json_schema(by_alias=True)
    assert data["configSchema"]["additionalProperties"] is False
    assert "proxyCommand" in data["configSchema"]["properties"]


def test_check_mode(capsys):
    assert main(["--check"]) == 0 and "up to date" in capsys.readouterr().out


def test_index_js_uses_the_manifest_id():
    source = (PLUGIN_DIR / "index.js").read_text("utf-8")
    assert re.search(r'^const ID = "blockrun";$', source, re.M)
    assert not re.search(r'^import .* from "(?!node:)', source, re.M)  # no dependencies


@needs_node
async def test_register_is_synchronous_and_registers_the_commands_and_aliases():
    loaded = await run_plugin({})
    assert loaded["sync"] is True and loaded["id"] == "blockrun"
    names = [c["name"] for c in loaded["commands"]]
    base = ["stats", "wallet", "exclude", "imagegen", "img2img"]
    assert sorted(names) == sorted(base + [f"cr-{n}" for n in base])
    reserved = {"help", "commands", "status", "model", "models", "usage", "debug", "config"}
    assert not reserved & set(names)
    assert all(c["acceptsArgs"] and c["requireAuth"] and c["description"]
               for c in loaded["commands"])
    assert loaded["services"] == ["blockrun-proxy"]


@needs_node
async def test_handlers_answer_through_the_proxy(command_proxy, x402_upstream):
    port = int(command_proxy.base_url.rsplit(":", 1)[1])
    ctx = {"args": "", "senderId": "+1555", "channel": "telegram", "isAuthorizedSender": True}
    stats = (await run_plugin({"port": port}, "cr-stats", ctx))["reply"]
    assert "ClawRouter" in stats["text"] and stats["isError"] is False
    assert "mediaUrl" not in stats
    refused = (await run_plugin({"port": port}, "wallet", {**ctx, "isAuthorizedSender": False}))
    assert refused["reply"]["text"] == "⚠️ This command requires authorization."
    image = (await run_plugin({"port": port}, "cr-imagegen", {**ctx, "args": "a red fox"}))["reply"]
    assert image["isError"] is False and Path(image["mediaUrl"]).is_file()
    assert image["mediaUrls"] == [image["mediaUrl"]] and "localhost" not in image["text"]
    assert len(x402_upstream.ledger.settlements) == 1  # the one image; commands paid nothing


@needs_node
async def test_a_proxy_that_does_not_answer_is_a_readable_reply(tmp_path):
    port = free_port()
    reply = (await run_plugin({"port": port}, "stats", {"isAuthorizedSender": True}))["reply"]
    assert reply["isError"] is True and "ClawRouter is not running" in reply["text"]
    assert "clawrouter serve" in reply["text"]
    failing = (await run_plugin({"port": port, "proxyCommand": ["false"]}, "stats",
                                {"isAuthorizedSender": True}))["reply"]
    assert failing["isError"] is True and "exited with code 1" in failing["text"]


@needs_node
async def test_the_plugin_starts_the_proxy_with_its_own_settings(
        x402_upstream, funded_wallet_key, payer, tmp_path):
    port = free_port()
    config = {"port": port, "apiBase": x402_upstream.url, "dataDir": str(tmp_path / "started"),
              "payment": {"rpcUrl": "http://127.0.0.1:9/"},
              "proxyCommand": [sys.executable, "-m", "clawrouter_plugin", "serve"]}
    ctx = {"senderId": "+1555", "channel": "telegram", "isAuthorizedSender": True}
    reply = (await run_plugin(config, "wallet", ctx,
                              env={"BLOCKRUN_WALLET_KEY": funded_wallet_key}))["reply"]
    assert reply["isError"] is False and payer in reply["text"], reply
    assert (tmp_path / "started").is_dir()  # the proxy read the settings OpenClaw validated
    with socket.socket() as sock:  # and the service's stop ended it
        assert sock.connect_ex(("127.0.0.1", port)) != 0


@needs_node
async def test_a_degraded_proxy_counts_as_running(tmp_path):
    """Team mode with Redis unreachable answers /health with "degraded": the plugin must use
    that proxy, not try to start a second one on its port."""
    from aiohttp import web

    async def health(_request):
        return web.json_response({"status": "degraded", "service": "clawrouter"})

    async def command(request):
        return web.json_response({"text": f"answered /{request.match_info['name']}"})

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_post("/v1/clawrouter/commands/{name}", command)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        reply = (await run_plugin({"port": port, "proxyCommand": ["false"]}, "stats",
                                  {"isAuthorizedSender": True}))["reply"]
    finally:
        await runner.cleanup()
    assert reply == {"text": "answered /stats", "isError": False}
