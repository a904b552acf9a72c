"""Image inputs are re-encoded: only the picture reaches the upstream, never metadata or bytes
hidden after the image; what does not decode is refused before paying."""

from __future__ import annotations

import asyncio
import base64
import io

import pytest
from PIL import ExifTags, Image, PngImagePlugin

from clawrouter_plugin.images.reencode import MAX_PIXELS
from tests.images.imagedata import data_uri, encode, jpeg, png, webp
from tests.support.x402_upstream import IMAGE_EDIT_PATH

TRAILER = b"SECRET-TRAILER:0xdeadbeef" * 4


async def edit(env, image: str, mask: str | None = None) -> tuple[int, dict]:
    body = {"prompt": "make it blue", "image": image}
    if mask:
        body["mask"] = mask
    resp = await asyncio.wait_for(env.client.post("/v1/images/image2image", json=body), 20)
    return resp.status, await resp.json()


def sent_upstream(env, field: str = "image") -> bytes:
    """The bytes of ``field`` in the one paid edit the upstream received."""
    [call] = env.image_requests(IMAGE_EDIT_PATH)
    return base64.b64decode(call.json()[field].split(",", 1)[1])


def gps_jpeg() -> bytes:
    """A photo-like JPEG with EXIF GPS, a camera model, a comment and an XMP packet."""
    exif = Image.Exif()
    exif[ExifTags.Base.Model] = "SpyCam 3000"
    exif[ExifTags.Base.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (52.0, 22.0, 7.5),
        ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (4.0, 53.0, 2.25)}
    return encode(Image.new("RGB", (16, 8), (120, 40, 200)), "JPEG", exif=exif,
                  comment=b"home address", xmp=b"<x:xmpmeta>Secret Place</x:xmpmeta>")


async def test_bytes_after_the_png_end_are_not_forwarded(image_env, tmp_path):
    env = image_env
    (tmp_path / "photo.png").write_bytes(png(4, 4) + TRAILER)
    code, body = await edit(env, str(tmp_path / "photo.png"))
    assert code == 200, body
    sent = sent_upstream(env)
    assert sent == png(4, 4)  # the same picture, nothing after it
    assert b"SECRET" not in sent


async def test_exif_gps_and_other_metadata_are_not_forwarded(image_env):
    env = image_env
    photo = gps_jpeg()
    assert Image.open(io.BytesIO(photo)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # it has GPS
    secrets = (b"Exif\x00\x00", b"SpyCam", b"home address", b"Secret Place", b"xmpmeta")
    assert all(secret in photo for secret in secrets)
    code, body = await edit(env, data_uri(photo, "image/jpeg"))
    assert code == 200, body
    sent = sent_upstream(env)
    for secret in secrets:
        assert secret not in sent, secret
    with Image.open(io.BytesIO(sent)) as image:
        assert image.format == "JPEG" and image.size == (16, 8)
        assert not image.getexif() and "comment" not in image.info


async def test_png_text_chunks_are_not_forwarded_but_transparency_is(image_env):
    env = image_env
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Secret")
    info.add_itxt("Location", "52.37N 4.89E")
    source = encode(Image.new("RGBA", (3, 3), (10, 20, 30, 0)), "PNG", pnginfo=info)
    assert b"Jane Secret" in source and b"52.37N" in source
    code, body = await edit(env, data_uri(source))
    assert code == 200, body
    sent = sent_upstream(env)
    assert b"Jane Secret" not in sent and b"52.37N" not in sent
    with Image.open(io.BytesIO(sent)) as image:
        assert image.mode == "RGBA" and image.getpixel((1, 1)) == (10, 20, 30, 0)


async def test_exif_orientation_is_applied_to_the_pixels(image_env):
    env = image_env
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # "rotate 90 degrees to display"
    source = encode(Image.new("RGB", (16, 8), (200, 200, 200)), "JPEG", exif=exif)
    code, body = await edit(env, data_uri(source, "image/jpeg"))
    assert code == 200, body
    with Image.open(io.BytesIO(sent_upstream(env))) as image:
        assert image.size == (8, 16) and not image.getexif()


@pytest.mark.parametrize(("maker", "mime"), [(png, "image/png"), (jpeg, "image/jpeg"),
                                             (webp, "image/webp")])
async def test_clean_images_keep_their_format_and_pixels(image_env, maker, mime):
    env = image_env
    code, body = await edit(env, data_uri(maker(), mime), mask=data_uri(png(2, 2, (255,) * 3)))
    assert code == 200, body
    [call] = env.image_requests(IMAGE_EDIT_PATH)
    assert call.json()["image"].startswith(f"data:{mime};base64,")
    assert sent_upstream(env) == maker() and sent_upstream(env, "mask") == png(2, 2, (255,) * 3)


@pytest.mark.parametrize("broken", [
    png(8, 8)[:40],  # cut inside the image data
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,  # a PNG signature and nothing valid after it
    jpeg()[:30],  # a truncated JPEG
    b"\xff\xd8\xff\xe0" + b"garbage" * 10,
    b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8,
])
async def test_an_image_that_does_not_decode_is_a_400_before_paying(image_env, broken):
    env = image_env
    code, body = await edit(env, data_uri(broken))
    assert code == 400, body
    assert body["error"]["code"] == "invalid_image"
    assert "could not be decoded" in body["error"]["message"]
    env.assert_nothing_sent()


async def test_a_decompression_bomb_is_refused_before_decoding(image_env):
    env = image_env
    side = int(MAX_PIXELS ** 0.5) + 100
    bomb = encode(Image.new("1", (side, side)), "PNG")  # a few KB declaring > MAX_PIXELS
    assert len(bomb) < 64 * 1024
    code, body = await edit(env, data_uri(bomb))
    assert code == 413, body
    assert body["error"]["code"] == "image_too_large"
    assert "million pixels" in body["error"]["message"]
    env.assert_nothing_sent()


async def test_a_url_image_that_does_not_decode_reads_like_any_fetch_failure(image_env,
                                                                              aiohttp_server):
    from aiohttp import web

    async def broken(_request):
        return web.Response(body=png(8, 8)[:40], content_type="image/png")

    app = web.Application()
    app.router.add_get("/broken.png", broken)
    server = await aiohttp_server(app)
    env = image_env
    env.allow_private_urls()
    code, body = await edit(env, str(server.make_url("/broken.png")))
    assert code == 400, body
    assert body["error"]["message"] == "image: could not fetch the image at that URL"
    env.assert_nothing_sent()
