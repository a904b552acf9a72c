"""Images through the real proxy (start_proxy): OpenAI SDK, plain HTTP, chat intercepts."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from openai import AsyncOpenAI, PermissionDeniedError

from clawrouter_plugin.config import PluginConfig
from clawrouter_plugin.plugin import install_intercepts
from clawrouter_plugin.proxy.server import start_proxy
from tests.images.conftest import RESULT, catalog_price, image_handler
from tests.images.imagedata import data_uri, jpeg
from tests.support.x402_upstream import IMAGE_EDIT_PATH, IMAGE_PATH


@pytest.fixture
async def proxy(x402_upstream, funded_wallet_key, tmp_path):
    for path in (IMAGE_PATH, IMAGE_EDIT_PATH):
        x402_upstream.set_price(path, catalog_price)
        x402_upstream.set_handler(path, image_handler("data"))
    config = PluginConfig.model_validate({"payment": {"rpcUrl": "http://127.0.0.1:9/"},
                                          "images": {"localFolders": [str(tmp_path)]}})
    handle = await start_proxy(wallet_key=funded_wallet_key, port=0, api_base=x402_upstream.url,
                               data_dir=tmp_path / "data", config=config,
                               setup=install_intercepts)
    try:
        yield handle
    finally:
        await handle.close()


async def _get_local(handle, url: str) -> tuple[int, str, bytes]:
    local = url.replace("http://localhost:", "http://127.0.0.1:")
    async with aiohttp.ClientSession() as http, http.get(local) as resp:
        return resp.status, resp.headers["Content-Type"], await resp.read()


async def test_openai_sdk_images_generate(proxy, x402_upstream):
    client = AsyncOpenAI(base_url=proxy.base_url + "/v1", api_key="clawrouter", max_retries=0)
    try:
        result = await client.images.generate(model="flux", prompt="a lighthouse at dawn",
                                              size="1024x1024")
    finally:
        await client.close()
    url = result.data[0].url
    port = proxy.base_url.rsplit(":", 1)[1]
    assert url.startswith(f"http://localhost:{port}/images/")
    assert await _get_local(proxy, url) == (200, "image/png", RESULT)
    assert x402_upstream.count(path=IMAGE_PATH, paid=True) == 1
    assert x402_upstream.ledger.total_paid_usd() == pytest.approx(0.04)
    stats = proxy.services.usage.aggregate(1)
    assert stats["totalRequests"] == 1


async def test_image_errors_use_the_proxy_error_shape(proxy, x402_upstream):
    async with aiohttp.ClientSession() as http:
        async with http.post(proxy.base_url + "/v1/images/generations",
                             json={"prompt": "x", "size": "4096x4096"}) as resp:
            body = await resp.json()
        assert resp.status == 400 and "maximum 1024x1024" in body["error"]["message"]
        async with http.get(proxy.base_url + "/images/..%2fwallet.key") as resp:
            assert resp.status == 404
    client = AsyncOpenAI(base_url=proxy.base_url + "/v1", api_key="x", max_retries=0,
                         default_headers={"Origin": "https://evil.example"})
    try:
        with pytest.raises(PermissionDeniedError):
            await client.images.generate(model="flux", prompt="x")
    finally:
        await client.close()
    assert x402_upstream.requests == []


async def test_chat_intercepts_answer_with_media_lines(proxy, x402_upstream, tmp_path):
    (tmp_path / "cat.jpg").write_bytes(jpeg())
    messages = {
        "imagegen": "[Mon 2026-01-05 16:26 PST] /imagegen --model dall-e-3 a cat",
        "img2img": f"/img2img --image {tmp_path / 'cat.jpg'} 把背景换成星空",
    }
    async with aiohttp.ClientSession() as http:
        for name, text in messages.items():
            async with http.post(proxy.base_url + "/v1/chat/completions", json={
                    "model": "auto", "messages": [{"role": "user", "content": text}]}) as resp:
                body = await resp.json()
            assert resp.status == 200, body
            content = body["choices"][0]["message"]["content"]
            assert "Cost: $0.0" in content and "localhost" not in content, content
            [media] = [line for line in content.splitlines() if line.startswith("MEDIA:")]
            path = media.removeprefix("MEDIA:")
            assert path.startswith(str(tmp_path / "data" / "images"))
            with open(path, "rb") as stored:
                assert stored.read() == RESULT
    edit = [r for r in x402_upstream.requests if r.path == IMAGE_EDIT_PATH and r.paid][0].json()
    assert edit["prompt"] == "把背景换成星空" and edit["image"] == data_uri(jpeg(), "image/jpeg")
    assert len(x402_upstream.ledger.settlements) == 2
    assert x402_upstream.count(path="/v1/chat/completions") == 0


async def test_image_urls_on_this_machine_are_refused_by_the_running_proxy(
        x402_upstream, funded_wallet_key, tmp_path, aiohttp_server):
    """The outbound policy as start_proxy wires it: loopback refused by default; with
    images.allowPrivateUrls loopback is fetched, but the proxy's own address still is not."""
    hits: list[str] = []

    async def photo(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=jpeg(), content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/img.jpg", photo)
    target = await aiohttp_server(app)
    x402_upstream.set_price(IMAGE_EDIT_PATH, catalog_price)
    x402_upstream.set_handler(IMAGE_EDIT_PATH, image_handler("data"))
    generic = "image: could not fetch the image at that URL"

    async def edit(handle, url: str) -> tuple[int, dict]:
        async with aiohttp.ClientSession() as http, http.post(
                handle.base_url + "/v1/images/image2image",
                json={"prompt": "make it blue", "image": url}) as resp:
            return resp.status, await resp.json()

    for opt_in in (False, True):
        config = PluginConfig.model_validate({"payment": {"rpcUrl": "http://127.0.0.1:9/"},
                                              "images": {"allowPrivateUrls": opt_in}})
        handle = await start_proxy(wallet_key=funded_wallet_key, port=0,
                                   api_base=x402_upstream.url, config=config,
                                   data_dir=tmp_path / f"data-{opt_in}")
        try:
            code, body = await edit(handle, str(target.make_url("/img.jpg")))
            if opt_in:
                assert code == 200, body
                own = body["data"][0]["url"]  # this proxy's /images/<name>
                code, body = await edit(handle, own)
            assert (code, body["error"]["message"]) == (400, generic), body
        finally:
            await handle.close()
    assert hits == ["/img.jpg"]  # fetched only with the opt-in
    assert len(x402_upstream.ledger.settlements) == 1
