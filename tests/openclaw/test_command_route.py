"""POST /v1/clawrouter/commands/{name}: ClawRouter's chat commands for other hosts (the
OpenClaw plugin), run by the same handlers and dispatcher as our own host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from clawrouter_plugin.errors import ClawRouterError
from clawrouter_plugin.host.api import CommandResult, CommandSpec
from clawrouter_plugin.host.command_runner import CommandRunner
from clawrouter_plugin.host.dispatch import AUTH_REQUIRED
from clawrouter_plugin.proxy.app import SERVICES
from clawrouter_plugin.proxy.command_route import is_loopback, run_command_route
from clawrouter_plugin.proxy.server import start_proxy
from tests.proxy.conftest import make_config
from tests.support.x402_upstream import IMAGE_PATH


async def call(http, handle, name: str, body: dict | None = None, *, method: str = "POST",
               headers: dict | None = None) -> tuple[int, dict]:
    url = f"{handle.base_url}/v1/clawrouter/commands/{name}"
    async with http.request(method, url, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


def owner(args: str = "", **extra) -> dict:
    return {"args": args, "sender": "+15550001", "channel": "telegram", "authorized": True,
            **extra}


async def test_stats_answers_without_any_payment(command_proxy, http, x402_upstream):
    status, body = await call(http, command_proxy, "stats", owner())
    assert status == 200, body
    assert "ClawRouter" in body["text"] and body["media"] == [] and body["isError"] is False
    assert x402_upstream.requests == [] and x402_upstream.ledger.settlements == []


async def test_wallet_shows_the_address_and_how_to_fund(command_proxy, http, x402_upstream):
    status, body = await call(http, command_proxy, "wallet", owner())
    assert status == 200
    assert command_proxy.wallet_address in body["text"] and "Fund it" in body["text"]
    assert x402_upstream.ledger.settlements == []


async def test_an_unauthorised_sender_is_refused_by_the_dispatcher(command_proxy, http):
    status, body = await call(http, command_proxy, "wallet", owner(authorized=False))
    assert status == 200 and body["text"] == AUTH_REQUIRED and body["isError"] is True
    status, body = await call(http, command_proxy, "exclude", {"args": "add grok"})
    assert body["text"] == AUTH_REQUIRED  # "authorized" left out counts as not authorised


@pytest.mark.parametrize("args", ["export", "EXPORT", "\u200bexport", " recover word word",
                                  "recover --force abandon"])
@pytest.mark.parametrize("channel", ["telegram", "terminal", None])
async def test_wallet_secrets_are_refused_on_every_channel(command_proxy, http, args, channel):
    status, body = await call(http, command_proxy, "wallet", owner(args, channel=channel))
    assert status == 200 and body["isError"] is True
    assert "not available in chat" in body["text"]
    assert "Private key" not in body["text"] and "Recovered" not in body["text"]


async def test_imagegen_returns_the_stored_file_and_pays_for_one_image(
        command_proxy, http, x402_upstream, payer, tmp_path):
    status, body = await call(http, command_proxy, "imagegen", owner("a lighthouse at dawn"))
    assert status == 200 and body["isError"] is False, body
    [path] = body["media"]
    assert os.path.isabs(path) and Path(path).is_file()
    assert Path(path).parent == (tmp_path / "data" / "images").resolve()
    assert "localhost" not in body["text"] and "saved to" in body["text"]
    paid = [r for r in x402_upstream.requests if r.path == IMAGE_PATH and r.paid]
    assert len(paid) == 1 and len(x402_upstream.ledger.settlements) == 1


async def test_cr_aliases_belong_to_the_plugin_not_the_proxy(command_proxy, http):
    status, body = await call(http, command_proxy, "cr-stats", owner())
    assert status == 404 and body["error"]["code"] == "unknown_command"


async def test_unknown_command_is_a_404_json_error(command_proxy, http, x402_upstream):
    status, body = await call(http, command_proxy, "nope", owner())
    assert status == 404 and body["error"]["code"] == "unknown_command"
    assert x402_upstream.requests == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_other_methods_are_refused_not_forwarded(command_proxy, http, x402_upstream, method):
    status, body = await call(http, command_proxy, "stats", method=method)
    assert status == 405 and "error" in body
    assert x402_upstream.requests == []


async def test_the_namespace_is_never_forwarded_upstream(command_proxy, http, x402_upstream):
    async with http.post(f"{command_proxy.base_url}/v1/clawrouter/other", json={}) as response:
        assert response.status == 404
    assert x402_upstream.requests == []


@pytest.mark.parametrize("body, problem", [
    ({"args": 5}, "'args'"), ({"sender": ["x"]}, "'sender'"), ({"authorized": "yes"},
                                                                 "'authorized'"),
    ([], "JSON object"),
])
async def test_bad_bodies_are_400(command_proxy, http, body, problem):
    status, answer = await call(http, command_proxy, "stats", body)
    assert status == 400 and problem in answer["error"]["message"]


async def test_cross_site_callers_are_refused(command_proxy, http, x402_upstream):
    status, body = await call(http, command_proxy, "imagegen", owner("a cat"),
                              headers={"Origin": "https://evil.example"})
    assert status == 403 and body["error"]["code"] == "forbidden_origin"
    assert x402_upstream.requests == []


async def test_a_failing_command_answers_readable_text(command_proxy, http):
    async def broken(_ctx):
        raise RuntimeError("secret detail /home/user/traceback")

    spec = CommandSpec("stats", "broken", broken, accepts_args=True)
    command_proxy.services.commands = CommandRunner([spec])
    status, body = await call(http, command_proxy, "stats", owner())
    assert status == 200 and body["isError"] is True
    assert body["text"] == "⚠️ Command failed: internal error (RuntimeError)"


async def test_a_command_without_arguments_refuses_some(command_proxy, http):
    async def plain(_ctx):
        return CommandResult("ok")

    command_proxy.services.commands = CommandRunner([CommandSpec("ping", "ping", plain,
                                                                 require_auth=False)])
    assert (await call(http, command_proxy, "ping", {}))[1]["text"] == "ok"
    assert "takes no arguments" in (await call(http, command_proxy, "ping", {"args": "x"}))[1]["text"]


async def test_a_proxy_without_commands_has_none(x402_upstream, funded_wallet_key, tmp_path,
                                                 http):
    handle = await start_proxy(wallet_key=funded_wallet_key, port=0, api_base=x402_upstream.url,
                               data_dir=tmp_path / "d", config=make_config())
    try:
        status, body = await call(http, handle, "stats", owner())
    finally:
        await handle.close()
    assert status == 404 and body["error"]["code"] == "unknown_command"


@pytest.mark.parametrize("remote, local", [
    ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("192.0.2.2", False), ("::ffff:192.0.2.2", False), ("fd00::2", False), (None, False),
    ("", False), ("not an address", False),
])
def test_is_loopback(remote, local):
    assert is_loopback(remote) is local


async def test_a_non_loopback_peer_is_refused(command_proxy, x402_upstream):
    class Transport:
        def get_extra_info(self, name, default=None):
            return ("192.0.2.2", 40000) if name == "peername" else default

        def is_closing(self):
            return False

    app = {SERVICES: command_proxy.services}
    request = make_mocked_request("POST", "/v1/clawrouter/commands/stats",
                                  headers={"Host": "127.0.0.1"}, match_info={"name": "stats"},
                                  transport=Transport(), app=app)
    with pytest.raises(ClawRouterError) as raised:
        await run_command_route(request)
    assert raised.value.status == 403 and raised.value.code == "forbidden_peer"
    assert x402_upstream.requests == []
