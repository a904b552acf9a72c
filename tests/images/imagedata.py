"""Real tiny image bytes for tests: a valid PNG built by hand, JPEG/WebP with true signatures."""

from __future__ import annotations

import base64
import struct
import zlib


def png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """A valid RGB PNG of one colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    row = b"\x00" + bytes(rgb) * width
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def jpeg() -> bytes:
    """JPEG signature (SOI + JFIF APP0) followed by filler and EOI."""
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8" + app0 + b"\x00" * 32 + b"\xff\xd9"


def webp() -> bytes:
    """A RIFF/WEBP container header with a small VP8L chunk."""
    payload = b"WEBP" + b"VP8L" + struct.pack("<I", 8) + b"\x2f" + b"\x00" * 7
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"
