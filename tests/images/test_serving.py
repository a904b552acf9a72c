"""GET /images/<name>: stored images are served; traversal, listing and other names are 404."""

from __future__ import annotations

import asyncio

import pytest

from tests.images.imagedata import jpeg, png, webp


async def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """Send ``GET <target>`` byte for byte (no client-side path normalisation)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                     .encode("latin-1"))
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def test_stored_images_are_served_with_their_type(image_env):
    env = image_env
    for data, mime in ((jpeg(), "image/jpeg"), (webp(), "image/webp")):
        saved = env.store.save(data)
        resp = await env.client.get(f"/images/{saved.path.name}")
        assert resp.status == 200 and await resp.read() == data
        assert resp.headers["Content-Type"] == mime
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("target", [
    "/images/../wallet.key", "/images/%2e%2e/wallet.key", "/images/..%2fwallet.key",
    "/images/%2e%2e%2fwallet.key", "/images/..%5cwallet.key", "/images/..\\wallet.key",
    "/images/%2fetc%2fpasswd", "/images//etc/passwd", "/images/", "/images", "/images/.",
    "/images/wallet.key", "/images/20250101T000000Z-aaaaaaaaaaaa.png",
    "/images/20250101T000000Z-aaaaaaaaaaaa.png%00.png",
])
async def test_nothing_but_stored_names_is_served(image_env, target):
    env = image_env
    env.store.save(jpeg())
    secret = b"0x" + b"ab" * 32
    (env.data_dir / "wallet.key").write_bytes(secret)
    link = env.store.directory / "20250101T000000Z-aaaaaaaaaaaa.png"
    link.symlink_to(env.data_dir / "wallet.key")  # even a name of the right shape: not a file
    code, body = await raw_get(env.client.port, target)
    assert code == 404, (target, code)
    assert secret not in body
    assert b".jpg" not in body  # no listing of the stored image


async def test_a_non_image_file_with_a_store_name_is_not_served(image_env):
    env = image_env
    env.store.directory.mkdir(parents=True, exist_ok=True)
    for name, data in (("20250101T000000Z-cccccccccccc.png", b"<script>alert(1)</script>"),
                       ("20250101T000000Z-dddddddddddd.gif", b"#!/bin/sh\nid\n"),
                       ("20250101T000000Z-eeeeeeeeeeee.jpg", png())):  # a PNG named .jpg
        (env.store.directory / name).write_bytes(data)
        code, body = await raw_get(env.client.port, f"/images/{name}")
        assert code == 404, name
        assert data not in body


async def test_the_content_type_is_the_stored_images_real_one(image_env):
    env = image_env
    saved = env.store.save(png())
    resp = await env.client.get(f"/images/{saved.path.name}")
    assert resp.status == 200 and await resp.read() == png()
    assert resp.headers["Content-Type"] == "image/png"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
