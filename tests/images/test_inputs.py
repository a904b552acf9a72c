"""Loading image inputs: local files, ~ paths, data URIs, URLs, and every refusal."""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
from pathlib import Path

import pytest
from aiohttp import web

from clawrouter_plugin.config import ImageConfig
from clawrouter_plugin.errors import BadRequest, PayloadTooLarge
from clawrouter_plugin.images.formats import JPEG, PNG, WEBP
from clawrouter_plugin.images.inputs import load_image_input
from clawrouter_plugin.outbound import OutboundPolicy
from tests.images.imagedata import data_uri, jpeg, png, webp

# local files anywhere under the system's temporary folder (where tmp_path lives)
CONFIG = ImageConfig(max_input_bytes=64 * 1024, download_timeout_seconds=2, max_redirects=2,
                     local_folders=[tempfile.gettempdir()])


@pytest.fixture
def outbound():
    """The outbound policy with the opt-in on: these tests serve their URLs on 127.0.0.1."""
    return OutboundPolicy(allow_private=True)


async def load(value, outbound, **kw):
    config = kw.pop("config", CONFIG)
    return await asyncio.wait_for(
        load_image_input(value, outbound=outbound, config=config, **kw), 5)


@pytest.mark.parametrize(("maker", "fmt"), [(png, PNG), (jpeg, JPEG), (webp, WEBP)])
async def test_absolute_paths_of_each_format(tmp_path, outbound, maker, fmt):
    path = tmp_path / "picture.bin"  # the extension does not matter, the bytes do
    path.write_bytes(maker())
    image = await load(str(path), outbound)
    assert image.data == maker() and image.format is fmt
    assert image.data_uri() == data_uri(maker(), fmt.mime)


async def test_home_path_uses_home(tmp_path, outbound, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "photo.png").write_bytes(png())
    assert (await load("~/photo.png", outbound)).data == png()
    with pytest.raises(BadRequest, match="only '~/' paths"):
        await load("~root/photo.png", outbound)


async def test_local_files_only_from_the_configured_folders(tmp_path, outbound, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    inside, outside = tmp_path / "home" / "pics", tmp_path / "other"
    inside.mkdir(parents=True)
    outside.mkdir()
    (inside / "a.png").write_bytes(png())
    (outside / "b.png").write_bytes(png())
    (inside / "escape.png").symlink_to(outside / "b.png")
    (tmp_path / "home-evil").mkdir()  # a sibling whose name starts like the folder's
    (tmp_path / "home-evil" / "c.png").write_bytes(png())
    home_only = ImageConfig(local_folders=["~"])
    assert (await load("~/pics/a.png", outbound, config=home_only)).data == png()
    for refused in (outside / "b.png", inside / "escape.png", inside / ".." / ".." / "other" /
                    "b.png", tmp_path / "home-evil" / "c.png"):
        with pytest.raises(BadRequest, match="outside the folders") as caught:
            await load(str(refused), outbound, config=home_only)
        assert caught.value.code == "local_file_refused"
    nothing = ImageConfig(local_folders=[])
    with pytest.raises(BadRequest, match="outside the folders"):
        await load(str(inside / "a.png"), outbound, config=nothing)
    assert (await load(data_uri(png(), "image/png"), outbound, config=nothing)).data == png()


async def test_local_files_refused_outright_when_not_allowed(tmp_path, outbound, monkeypatch):
    opened = []
    monkeypatch.setattr(os, "open", lambda *a, **kw: opened.append(a) or -1)
    with pytest.raises(BadRequest, match="relayed from a chat channel") as caught:
        await load(str(tmp_path / "a.png"), outbound, local_files=False)
    assert caught.value.code == "local_file_refused" and opened == []


async def test_relative_paths_only_when_allowed(tmp_path, outbound, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cat.jpg").write_bytes(jpeg())
    with pytest.raises(BadRequest, match="must be absolute or start with ~/"):
        await load("./cat.jpg", outbound)
    assert (await load("./cat.jpg", outbound, allow_relative=True)).format is JPEG


async def test_symlink_to_image_is_followed(tmp_path, outbound):
    (tmp_path / "real.png").write_bytes(png())
    (tmp_path / "link.png").symlink_to(tmp_path / "real.png")
    assert (await load(str(tmp_path / "link.png"), outbound)).data == png()


async def test_symlink_to_secret_is_refused_without_echoing_it(tmp_path, outbound, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    ssh = tmp_path / ".ssh"
    ssh.mkdir()
    secret = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAb3BlbnNzaC1rZXktdjE\n"
    (ssh / "id_rsa").write_text(secret)
    (tmp_path / "innocent.png").symlink_to(ssh / "id_rsa")
    for value in ("~/.ssh/id_rsa", str(tmp_path / "innocent.png")):
        with pytest.raises(BadRequest) as info:
            await load(value, outbound)
        assert info.value.code == "unsupported_image"
        assert "not a PNG, JPEG or WebP image" in info.value.message
        assert "BEGIN" not in info.value.message and "AAAAb3B" not in info.value.message


async def test_system_file_directory_device_and_missing(tmp_path, outbound):
    cases = {"/etc/passwd": "not a PNG, JPEG or WebP image", str(tmp_path): "is a directory",
             "/dev/zero": "not a regular file", str(tmp_path / "nope.png"): "file not found"}
    anywhere = ImageConfig(max_input_bytes=64 * 1024, local_folders=["/"])
    for value, message in cases.items():
        with pytest.raises(BadRequest, match=message):
            await load(value, outbound, config=anywhere)


async def test_fifo_fails_fast_instead_of_blocking(tmp_path, outbound):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(BadRequest, match="not a regular file"):
        await load(str(fifo), outbound)
    assert loop.time() - started < 1


async def test_large_file_refused_by_stat(tmp_path, outbound):
    big = tmp_path / "big.png"
    with open(big, "wb") as handle:  # sparse: a PNG header then a hole
        handle.write(png())
        handle.truncate(CONFIG.max_input_bytes + 1)
    with pytest.raises(PayloadTooLarge, match=r"larger than the 64 KB limit") as info:
        await load(str(big), outbound)
    assert info.value.status == 413


async def test_empty_file_and_fake_extension(tmp_path, outbound):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("just some text that is not an image")
    with pytest.raises(BadRequest, match="is empty"):
        await load(str(tmp_path / "empty.png"), outbound)
    with pytest.raises(BadRequest, match="not a PNG") as info:
        await load(str(tmp_path / "notes.png"), outbound)
    assert "just some text" not in info.value.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
async def test_unreadable_file(tmp_path, outbound):
    path = tmp_path / "locked.png"
    path.write_bytes(png())
    path.chmod(0)
    with pytest.raises(BadRequest, match="permission denied"):
        await load(str(path), outbound)


async def test_data_uris(outbound):
    assert (await load(data_uri(webp(), "image/webp"), outbound)).format is WEBP
    mislabelled = await load(data_uri(png(), "image/jpeg"), outbound)  # bytes win over the label
    assert mislabelled.format is PNG and mislabelled.data_uri().startswith("data:image/png;")
    wrapped = "data:image/png;base64," + "\n".join(
        base64.b64encode(png()).decode()[i:i + 20] for i in range(0, 200, 20))
    assert (await load(wrapped, outbound)).data == png()
    bad = {"data:image/png;base64,@@@notbase64": "not valid base64",
           "data:image/png,rawbytes": "must look like",
           "data:text/plain;base64,aGVsbG8=": "must look like",
           data_uri(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"): "not a PNG"}
    for value, message in bad.items():
        with pytest.raises(BadRequest, match=message):
            await load(value, outbound)
    huge = data_uri(png() + b"\x00" * CONFIG.max_input_bytes)
    with pytest.raises(PayloadTooLarge):
        await load(huge, outbound)


async def test_other_schemes_and_empty_values(outbound):
    for value in ("file:///etc/passwd", "ftp://127.0.0.1/a.png", "gopher://x/"):
        with pytest.raises(BadRequest, match="only http:// and https://"):
            await load(value, outbound)
    for value in ("", "   ", None, 42):
        with pytest.raises(BadRequest, match="is required"):
            await load(value, outbound)


# --- URLs, served by a real aiohttp server on 127.0.0.1 ------------------------------------------

@pytest.fixture
async def files(aiohttp_server):
    """A server with good, bad, huge, slow and redirecting image URLs; records hits."""
    hits: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        hits.append(name)
        if name == "cat.png":
            return web.Response(body=png(), content_type="image/png")
        if name == "mislabelled":
            return web.Response(body=jpeg(), content_type="text/plain")
        if name == "page.html":
            return web.Response(text="<html>hello</html>", content_type="text/html")
        if name == "declared-huge":
            return web.Response(body=png() + b"\x00" * (CONFIG.max_input_bytes + 10))
        if name == "stream-huge":  # chunked, no Content-Length: must stop at the cap
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            await resp.write(png())
            for _ in range(1000):
                await resp.write(b"\x00" * 4096)
            return resp
        if name == "slow":
            await asyncio.sleep(5)
            return web.Response(body=png())
        if name.startswith("hop"):
            remaining = int(name[3:])
            target = "cat.png" if remaining == 0 else f"hop{remaining - 1}"
            raise web.HTTPFound(target)
        if name == "to-file":
            raise web.HTTPFound("file:///etc/passwd")
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{name}", handle)
    server = await aiohttp_server(app)
    server.hits = hits
    return server


async def test_url_download(files, outbound):
    image = await load(str(files.make_url("/cat.png")), outbound)
    assert image.data == png() and image.format is PNG
    assert (await load(str(files.make_url("/mislabelled")), outbound)).format is JPEG


async def test_url_refusals(files, outbound):
    # one text for every failure: it must not tell what answers where (see test_outbound.py)
    for path in ("/missing.png", "/page.html", "/to-file", "/hop2"):
        with pytest.raises(BadRequest) as info:
            await load(str(files.make_url(path)), outbound)
        assert info.value.message == "image: could not fetch the image at that URL", path
    for path in ("/declared-huge", "/stream-huge"):
        with pytest.raises(PayloadTooLarge):
            await load(str(files.make_url(path)), outbound)


async def test_redirects_within_the_limit_are_followed(files, outbound):
    image = await load(str(files.make_url("/hop1")), outbound)  # two redirects: the limit
    assert image.data == png()
    assert files.hits == ["hop1", "hop0", "cat.png"]


async def test_url_timeout(files, outbound):
    config = CONFIG.model_copy(update={"download_timeout_seconds": 0.3})
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(BadRequest, match="^image: could not fetch the image at that URL$"):
        await load(str(files.make_url("/slow")), outbound, config=config)
    assert loop.time() - started < 2


async def test_unreachable_url(outbound, unused_tcp_port):
    with pytest.raises(BadRequest, match="^image: could not fetch the image at that URL$"):
        await load(f"http://127.0.0.1:{unused_tcp_port}/x.png", outbound)


def test_path_shown_in_errors_is_the_given_one(tmp_path):
    from clawrouter_plugin.images.inputs import read_image_file
    with pytest.raises(BadRequest) as info:
        read_image_file(Path(tmp_path / "a b.png"), 10)
    assert str(tmp_path / "a b.png") in info.value.message
