"""The local image store: names, atomic writes, safe lookups."""

from __future__ import annotations

import os
import re

import pytest

from clawrouter_plugin.errors import UpstreamError
from clawrouter_plugin.images import ImageStore
from tests.images.imagedata import jpeg, png, webp

NAME = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{12}\.(png|jpg|webp)")


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "data" / "images", lambda: "http://localhost:8402")


def test_save_names_files_by_their_bytes(store):
    for data, ext in ((png(), "png"), (jpeg(), "jpg"), (webp(), "webp")):
        saved = store.save(data)
        assert NAME.fullmatch(saved.path.name) and saved.path.suffix == "." + ext
        assert saved.url == f"http://localhost:8402/images/{saved.path.name}"
        assert saved.path.read_bytes() == data
        path, fmt = store.resolve(saved.path.name)
        assert path == saved.path
        assert fmt.mime == {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}[ext]
    assert oct(store.directory.stat().st_mode & 0o777) == "0o700"
    assert sorted(p.name for p in store.directory.iterdir() if p.name.startswith(".")) == []


def test_many_saves_never_collide(store):
    names = {store.save(png()).path.name for _ in range(200)}
    assert len(names) == 200


def test_non_images_are_refused_and_leave_nothing(store):
    with pytest.raises(UpstreamError, match="not a PNG, JPEG, WebP or GIF image"):
        store.save(b"<html>error page</html>")
    assert not store.directory.exists() or list(store.directory.iterdir()) == []


def test_resolve_refuses_everything_but_own_names(store, tmp_path):
    saved = store.save(png())
    (store.directory.parent / "wallet.key").write_text("0xsecret")
    link = store.directory / "20250101T000000Z-aaaaaaaaaaaa.png"
    os.symlink(store.directory.parent / "wallet.key", link)
    for name in ("../wallet.key", "..%2fwallet.key", "/etc/passwd", "..\\wallet.key", "",
                 ".", "..", saved.path.name + "/", saved.path.name.upper(), "x.png",
                 "20250101T000000Z-bbbbbbbbbbbb.png", link.name, None):
        assert store.resolve(name) is None, name
    assert store.resolve(saved.path.name)[0] == saved.path


def test_public_url_is_read_at_save_time(tmp_path):
    port = {"value": 1}
    store = ImageStore(tmp_path, lambda: f"http://localhost:{port['value']}/")
    port["value"] = 8555
    assert store.save(png()).url.startswith("http://localhost:8555/images/")
