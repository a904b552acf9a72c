"""POST /v1/images/image2image: every input form, masks, and every safety refusal."""

from __future__ import annotations

import asyncio
import os

import pytest
from aiohttp import web

from tests.images.conftest import RESULT
from tests.images.imagedata import data_uri, jpeg, png, webp
from tests.support.x402_upstream import IMAGE_EDIT_PATH

SOURCE = png(4, 4, (10, 200, 30))
MASK = png(4, 4, (255, 255, 255))


async def edit(env, **body):
    resp = await env.client.post("/v1/images/image2image", json={"prompt": "add a hat", **body})
    return resp.status, await resp.json()


def assert_one_paid_edit(env, image: bytes, mask: bytes | None = None, mime="image/png") -> dict:
    """The upstream got exactly one paid edit whose data URIs carry exactly these bytes."""
    [sent] = env.image_requests(IMAGE_EDIT_PATH)
    body = sent.json()
    assert body["image"] == data_uri(image, mime)
    assert body.get("mask") == (data_uri(mask) if mask else None)
    assert len(env.upstream.ledger.settlements) == 1
    return body


@pytest.fixture
async def served(aiohttp_server):
    """A local HTTP server with the source image and a mask."""
    async def photo(_request: web.Request) -> web.Response:
        return web.Response(body=jpeg(), content_type="image/jpeg")

    async def mask(_request: web.Request) -> web.Response:
        return web.Response(body=MASK, content_type="image/png")

    app = web.Application()
    app.router.add_get("/photo.jpg", photo)
    app.router.add_get("/mask.png", mask)
    return await aiohttp_server(app)


async def test_absolute_path(image_env, tmp_path):
    env = image_env
    (tmp_path / "photo.png").write_bytes(SOURCE)
    code, reply = await edit(env, image=str(tmp_path / "photo.png"))
    assert code == 200, reply
    body = assert_one_paid_edit(env, SOURCE)
    assert body == {"model": "openai/gpt-image-1", "prompt": "add a hat",
                    "image": data_uri(SOURCE), "size": "1024x1024", "n": 1}
    assert env.paid_usd() == pytest.approx(0.02)
    local = reply["data"][0]["url"]
    resp = await env.client.get(local[len(env.public["url"]):])
    assert await resp.read() == RESULT
    [record] = env.usage_records()
    assert record["kind"] == "image" and record["model"] == "openai/gpt-image-1"


async def test_home_path_with_mask_and_size(image_env, tmp_path, monkeypatch):
    env = image_env
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "photo.webp").write_bytes(webp())
    (tmp_path / "mask.png").write_bytes(MASK)
    code, reply = await edit(env, image="~/photo.webp", mask="~/mask.png", size="1024x1536",
                             model="gpt-image")
    assert code == 200, reply
    body = assert_one_paid_edit(env, webp(), MASK, mime="image/webp")
    assert body["size"] == "1024x1536"
    assert env.paid_usd() == pytest.approx(0.04)


async def test_url_inputs(image_env, served):
    env = image_env
    env.allow_private_urls()  # served on 127.0.0.1
    code, reply = await edit(env, image=str(served.make_url("/photo.jpg")),
                             mask=str(served.make_url("/mask.png")))
    assert code == 200, reply
    assert_one_paid_edit(env, jpeg(), MASK, mime="image/jpeg")


async def test_data_uri_inputs(image_env):
    env = image_env
    code, reply = await edit(env, image=data_uri(SOURCE), prompt="把背景换成星空")
    assert code == 200, reply
    body = assert_one_paid_edit(env, SOURCE)
    assert body["prompt"] == "把背景换成星空"


def _refusal_cases(tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAB3Nza\n")
    (home / "photo.png").write_bytes(SOURCE)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    big = tmp_path / "big.png"
    with open(big, "wb") as handle:
        handle.write(SOURCE)
        handle.truncate(256 * 1024 + 1)
    return home, {
        "~/.ssh/id_rsa": (400, "is not a PNG, JPEG or WebP image"),
        "/etc/passwd": (400, "outside the folders local images may be read from"),
        str(tmp_path): (400, "is a directory"),
        str(fifo): (400, "is not a regular file"),
        str(big): (413, "larger than the 256 KB limit"),
        str(tmp_path / "missing.png"): (400, "file not found"),
        "photo.png": (400, "must be absolute or start with ~/"),
        "file:///etc/passwd": (400, "only http:// and https://"),
        "data:image/png;base64,!!!": (400, "not valid base64"),
    }


async def test_every_unsafe_input_fails_fast_and_sends_nothing(image_env, tmp_path, monkeypatch):
    env = image_env
    home, cases = _refusal_cases(tmp_path)
    monkeypatch.setenv("HOME", str(home))
    for field in ("image", "mask"):
        for value, (status_code, message) in cases.items():
            extra = {"image": "~/photo.png", "mask": value} if field == "mask" else {"image": value}
            code, reply = await asyncio.wait_for(edit(env, **extra), 5)
            assert code == status_code and message in reply["error"]["message"], (value, reply)
            assert reply["error"]["message"].startswith(f"{field}: ")
            assert "BEGIN" not in reply["error"]["message"]
    env.assert_nothing_sent()
    assert env.usage_records() == []


@pytest.mark.parametrize(("body", "message"), [
    ({"image": None}, "image is required"),
    ({"model": "dall-e-3"}, "openai/dall-e-3 cannot edit images; editing models: gpt-image"),
    ({"model": "nope"}, "unknown image model 'nope'"),
    ({"size": "2048x2048"}, "larger than openai/gpt-image-1's maximum 1536x1024"),
    ({"prompt": ""}, "prompt is required"),
    ({"mask": 7}, "mask must be a string"),
])
async def test_request_errors_before_reading_anything(image_env, tmp_path, body, message):
    env = image_env
    (tmp_path / "photo.png").write_bytes(SOURCE)
    code, reply = await edit(env, **{"image": str(tmp_path / "photo.png"), **body})
    assert code == 400 and message in reply["error"]["message"], reply
    env.assert_nothing_sent()


async def test_web_pages_on_other_sites_cannot_trigger_edits(image_env, tmp_path):
    env = image_env
    (tmp_path / "photo.png").write_bytes(SOURCE)
    body = {"prompt": "x", "image": str(tmp_path / "photo.png")}
    for origin in ("https://evil.example", "null", "http://localhost.evil.example:8402"):
        resp = await env.client.post("/v1/images/image2image", json=body,
                                     headers={"Origin": origin})
        assert resp.status == 403, origin
        assert (await resp.json())["error"]["code"] == "forbidden_origin"
    env.assert_nothing_sent()
    resp = await env.client.post("/v1/images/image2image", json=body,
                                 headers={"Origin": "http://localhost:3000"})
    assert resp.status == 200
