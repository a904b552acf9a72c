"""Adversarial image requests: odd fields, hostile upstream answers, and storage failures."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json

import pytest
from aiohttp import web

from clawrouter_plugin.errors import PayloadTooLarge
from clawrouter_plugin.images.download import download_image
from clawrouter_plugin.images.formats import STORE_FORMATS
from clawrouter_plugin.outbound import OutboundPolicy
from tests.images.conftest import RESULT
from tests.images.imagedata import data_uri, png
from tests.support.x402_upstream import IMAGE_PATH


async def post(env, body, path="/v1/images/generations"):
    resp = await asyncio.wait_for(env.client.post(path, json=body), 10)
    return resp.status, await resp.json()


def answer(payload: bytes | dict, content_type: str = "application/json"):
    """An upstream handler answering 200 with ``payload`` (JSON-encoded if a dict)."""
    async def handler(_call) -> web.StreamResponse:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return web.Response(body=body, content_type=content_type)
    return handler


async def test_b64_answer_is_returned_inline_when_the_store_fails(image_env):
    env = image_env
    env.store.directory.parent.mkdir(parents=True, exist_ok=True)
    env.store.directory.write_bytes(b"not a directory")  # every save fails with an OSError
    b64 = data_uri(RESULT).split(",", 1)[1]
    env.upstream.set_handler(IMAGE_PATH, answer({"created": 1, "data": [{"b64_json": b64}]}))
    code, body = await post(env, {"prompt": "a fox"})
    assert code == 200, body
    [item] = body["data"]
    assert item["url"] == data_uri(RESULT)  # the paid image is not lost
    assert "not saved locally" in item["note"]
    assert len(env.upstream.ledger.settlements) == 1


async def test_deeply_nested_upstream_json_is_a_502_not_a_crash(image_env):
    env = image_env
    env.upstream.set_handler(IMAGE_PATH, answer(b"[" * 200_000 + b"]" * 200_000))
    code, body = await post(env, {"prompt": "a fox"})
    assert code == 502, body
    assert body["error"]["message"] == "the upstream answered with invalid JSON"


@pytest.mark.parametrize("bad", ["javascript:alert(document.domain)",
                                 "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="])
async def test_upstream_urls_that_are_not_images_are_not_passed_on(image_env, bad):
    env = image_env
    env.upstream.set_handler(IMAGE_PATH, answer({"created": 1, "data": [{"url": bad}]}))
    code, body = await post(env, {"prompt": "a fox"})
    assert code == 200, body
    [item] = body["data"]
    assert item["url"] == "" and "not saved locally" in item["note"]


@pytest.mark.parametrize("fmt", ["b64", "png", 1])
async def test_unsupported_response_format_is_refused_before_paying(image_env, fmt):
    code, body = await post(image_env, {"prompt": "a fox", "response_format": fmt})
    assert code == 400 and body["error"]["code"] == "invalid_response_format", body
    image_env.assert_nothing_sent()


async def test_response_format_url_is_accepted(image_env):
    code, body = await post(image_env, {"prompt": "a fox", "response_format": "url"})
    assert code == 200, body


@pytest.mark.parametrize("path", ["/v1/images/generations", "/v1/images/image2image"])
async def test_response_format_b64_json_returns_the_image_itself(image_env, path):
    """As the OpenAI SDK asks with response_format="b64_json": the image bytes, base64, paid
    once, and the same image as the one stored."""
    body = {"prompt": "a fox", "response_format": "b64_json"}
    if path.endswith("image2image"):
        body["image"] = data_uri(png())
    code, reply = await post(image_env, body, path)
    assert code == 200, reply
    [item] = reply["data"]
    assert "url" not in item and base64.b64decode(item["b64_json"]) == RESULT
    [stored] = list(image_env.store.directory.iterdir())
    assert stored.read_bytes() == RESULT
    assert len(image_env.upstream.ledger.settlements) == 1


async def test_b64_json_of_an_image_that_could_not_be_stored_is_still_returned(image_env):
    env = image_env
    env.store.directory.parent.mkdir(parents=True, exist_ok=True)
    env.store.directory.write_bytes(b"not a directory")  # every save fails
    b64 = data_uri(RESULT).split(",", 1)[1]
    env.upstream.set_handler(IMAGE_PATH, answer({"created": 1, "data": [{"b64_json": b64}]}))
    code, reply = await post(env, {"prompt": "a fox", "response_format": "b64_json"})
    assert code == 200, reply
    [item] = reply["data"]
    assert base64.b64decode(item["b64_json"]) == RESULT  # inline: nothing lost


async def test_gzip_bomb_download_stops_at_the_cap(aiohttp_server):
    bomb = gzip.compress(png() + b"\x00" * (16 * 1024 * 1024), 9)

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip",
                                                "Content-Type": "image/png"})

    app = web.Application()
    app.router.add_get("/bomb.png", handler)
    server = await aiohttp_server(app)
    with pytest.raises(PayloadTooLarge):
        await asyncio.wait_for(download_image(
            OutboundPolicy(allow_private=True), str(server.make_url("/bomb.png")),
            max_bytes=1024 * 1024, timeout=5, max_redirects=0, formats=STORE_FORMATS), 10)


async def test_upstream_cannot_make_us_fetch_and_store_more_images_than_asked(image_env):
    env = image_env
    flood = {"created": 1, "data": [{"url": data_uri(RESULT)} for _ in range(50)]}
    env.upstream.set_handler(IMAGE_PATH, answer(flood))
    code, body = await post(env, {"prompt": "a fox", "n": 2})
    assert code == 200, body
    assert len(body["data"]) == 2
    assert len(list(env.store.directory.iterdir())) == 2
