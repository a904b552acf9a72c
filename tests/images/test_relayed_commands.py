"""Who may run what on the HTTP chat path: a message relayed from a chat channel spends
nothing and reads no local file unless the config says so; the local user still can.

Real proxy (start_proxy with the plugin's own intercepts), x402 test upstream whose payments
the official SDK checks; the ledger counts what really settled.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from clawrouter_plugin.config import PluginConfig
from clawrouter_plugin.images import inputs
from clawrouter_plugin.plugin import install_intercepts
from clawrouter_plugin.proxy.server import start_proxy
from tests.images.conftest import RESULT, catalog_price, image_handler
from tests.images.imagedata import jpeg
from tests.support.host_shapes import openclaw_turn, whatsapp_turn
from tests.support.x402_upstream import IMAGE_EDIT_PATH, IMAGE_PATH

AUTH_REFUSED = "requires authorization"
Start = Callable[..., Awaitable[tuple]]


@pytest.fixture
async def start(x402_upstream, funded_wallet_key, tmp_path) -> AsyncIterator[Start]:
    """Start the proxy with extra config; gives (handle, allowed folder)."""
    for path in (IMAGE_PATH, IMAGE_EDIT_PATH):
        x402_upstream.set_price(path, catalog_price)
        x402_upstream.set_handler(path, image_handler("data"))
    handles = []
    allowed = tmp_path / "pictures"
    allowed.mkdir()

    async def go(**extra) -> tuple:
        config = PluginConfig.model_validate({
            "payment": {"rpcUrl": "http://127.0.0.1:9/"},
            "images": {"localFolders": [str(allowed)]}, **extra})
        handle = await start_proxy(wallet_key=funded_wallet_key, port=0,
                                   api_base=x402_upstream.url, data_dir=tmp_path / "data",
                                   config=config, setup=install_intercepts)
        handles.append(handle)
        return handle, allowed

    try:
        yield go
    finally:
        for handle in handles:
            await handle.close()


@pytest.fixture
def reads(monkeypatch) -> list[Path]:
    """Every local file the image inputs open."""
    opened: list[Path] = []
    real = inputs.read_image_file

    def spy(path, *args, **kw):
        opened.append(Path(path))
        return real(path, *args, **kw)

    monkeypatch.setattr(inputs, "read_image_file", spy)
    return opened


async def chat(handle, body: dict, headers: dict | None = None) -> str:
    body = {**body, "stream": False}
    async with aiohttp.ClientSession() as http, http.post(
            handle.base_url + "/v1/chat/completions", json=body, headers=headers or {}) as resp:
        data = await resp.json()
    assert resp.status == 200, data
    return data["choices"][0]["message"]["content"]


def settled(upstream) -> int:
    return len(upstream.ledger.settlements)


async def test_relayed_img2img_reads_no_file_and_pays_nothing(start, x402_upstream, reads):
    handle, allowed = await start()
    photo = allowed / "photo.jpg"
    photo.write_bytes(jpeg())
    text = await chat(handle, whatsapp_turn(f"/img2img --image {photo} make it blue"))
    assert AUTH_REFUSED in text
    assert reads == [] and settled(x402_upstream) == 0
    assert x402_upstream.requests == []  # neither the edit nor a paid chat turn


async def test_relayed_paid_imagegen_pays_nothing(start, x402_upstream):
    handle, _ = await start()
    text = await chat(handle, whatsapp_turn("/imagegen --model banana-pro a castle at night"))
    assert AUTH_REFUSED in text
    assert settled(x402_upstream) == 0 and x402_upstream.requests == []


async def test_relayed_wallet_and_exclude_are_refused(start, x402_upstream):
    handle, _ = await start()
    for command in ("/wallet", "/wallet export", "/exclude add grok"):
        text = await chat(handle, whatsapp_turn(command))
        assert AUTH_REFUSED in text, command
    assert await handle.services.exclusions.all() == frozenset()
    assert settled(x402_upstream) == 0 and x402_upstream.requests == []


async def test_the_host_can_say_a_message_was_relayed(start, x402_upstream):
    handle, _ = await start()
    text = await chat(handle, openclaw_turn("/imagegen a castle"),
                      headers={"X-ClawRouter-Relayed": "1"})
    assert AUTH_REFUSED in text and settled(x402_upstream) == 0


async def test_local_user_runs_the_same_commands(start, x402_upstream, reads):
    handle, allowed = await start()
    photo = allowed / "photo.jpg"
    photo.write_bytes(jpeg())
    # an OpenClaw first turn: timestamp before, Runtime line after, context block at the end
    text = await chat(handle, openclaw_turn("/imagegen --model banana-pro a castle at night"))
    assert "Cost: $0.1" in text and "localhost" not in text, text
    generate = [r.json() for r in x402_upstream.requests if r.path == IMAGE_PATH and r.paid]
    assert [g["prompt"] for g in generate] == ["a castle at night"]  # no Runtime line in it
    text = await chat(handle, openclaw_turn(f"/img2img --image {photo} make it blue",
                                            first_turn=False))
    assert "Cost: $0.0" in text, text
    [media] = [line for line in text.splitlines() if line.startswith("MEDIA:")]
    assert os.path.isabs(media[6:]) and Path(media[6:]).read_bytes() == RESULT
    assert reads == [photo] and settled(x402_upstream) == 2
    assert x402_upstream.count(path="/v1/chat/completions") == 0
    address = handle.services.wallet.address
    assert address in await chat(handle, openclaw_turn("/wallet", first_turn=False))
    export = await chat(handle, openclaw_turn("/wallet export", first_turn=False))
    assert "only allowed for the owner" in export and "Private key" not in export


async def test_a_file_outside_the_configured_folders_is_refused(start, x402_upstream, reads,
                                                               tmp_path):
    handle, allowed = await start()
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(jpeg())
    sneaky = allowed / "link.jpg"
    sneaky.symlink_to(outside)  # a symlink out of the folder does not count as inside
    for path in (outside, sneaky, allowed / ".." / "elsewhere.jpg"):
        text = await chat(handle, openclaw_turn(f"/img2img --image {path} make it blue"))
        assert "outside the folders local images may be read from" in text, text
    assert settled(x402_upstream) == 0 and x402_upstream.requests == []


async def test_config_can_authorise_relayed_senders_but_not_their_file_reads(
        start, x402_upstream, reads):
    handle, allowed = await start(commands={"allowRelayed": True})
    photo = allowed / "photo.jpg"
    photo.write_bytes(jpeg())
    text = await chat(handle, whatsapp_turn("/imagegen a castle"))
    assert "Cost: $0.0" in text and settled(x402_upstream) == 1
    text = await chat(handle, whatsapp_turn(f"/img2img --image {photo} make it blue"))
    assert "local files cannot be used from a message relayed" in text
    assert reads == [] and settled(x402_upstream) == 1


async def test_stats_is_answered_in_chat_for_free(start, x402_upstream):
    handle, _ = await start()
    text = await chat(handle, whatsapp_turn("/stats"))
    assert "ClawRouter Usage Statistics" in text
    cleared = await chat(handle, whatsapp_turn("/stats clear --yes"))
    assert "Only an authorized sender can clear the stats" in cleared
    assert settled(x402_upstream) == 0 and x402_upstream.requests == []
