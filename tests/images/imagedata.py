"""Real tiny images for tests, encoded by Pillow the way clawrouter re-encodes inputs, so an
input that goes through unchanged in content also arrives upstream byte for byte."""

from __future__ import annotations

import base64
import io

from PIL import Image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    """``image`` saved as ``fmt`` (PNG, JPEG, WEBP) with Pillow."""
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """A valid RGB PNG of one colour."""
    return encode(Image.new("RGB", (width, height), rgb), "PNG", compress_level=1)


def jpeg(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (40, 90, 200)) -> bytes:
    """A valid baseline JPEG of one colour (JFIF, no EXIF)."""
    return encode(Image.new("RGB", (width, height), rgb), "JPEG")


def webp(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (0, 160, 60)) -> bytes:
    """A valid lossless WebP (a simple VP8L file) of one colour."""
    return encode(Image.new("RGB", (width, height), rgb), "WEBP", lossless=True)


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"
