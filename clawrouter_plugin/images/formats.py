"""Image formats recognised by their first bytes (never by a file name or a declared type)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ImageFormat:
    name: str
    mime: str
    ext: str


PNG = ImageFormat("PNG", "image/png", "png")
JPEG = ImageFormat("JPEG", "image/jpeg", "jpg")
WEBP = ImageFormat("WebP", "image/webp", "webp")
GIF = ImageFormat("GIF", "image/gif", "gif")

INPUT_FORMATS = (PNG, JPEG, WEBP)  # what image/mask inputs may be
STORE_FORMATS = (PNG, JPEG, WEBP, GIF)  # what the local store keeps from upstream
SNIFF_BYTES = 12  # enough bytes for every signature below


def sniff(head: bytes) -> ImageFormat | None:
    """The format whose signature ``head`` starts with, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    return None


def sniff_input(head: bytes) -> ImageFormat | None:
    """Like :func:`sniff` but only the formats accepted as edit inputs (PNG, JPEG, WebP)."""
    fmt = sniff(head)
    return fmt if fmt in INPUT_FORMATS else None


def format_names(formats: tuple[ImageFormat, ...]) -> str:
    """'PNG, JPEG or WebP'."""
    names = [fmt.name for fmt in formats]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def human_bytes(n: int) -> str:
    """A byte limit for messages: '20 MB', '512 KB', '100 bytes'."""
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):g} MB"
    if n >= 1024:
        return f"{n / 1024:g} KB"
    return f"{n} bytes"
