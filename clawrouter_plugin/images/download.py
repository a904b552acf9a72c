"""Bounded image downloads: http(s) only on every hop, a deadline, a byte cap, a content check."""

from __future__ import annotations

import asyncio

import aiohttp
from yarl import URL

from ..errors import BadRequest, PayloadTooLarge
from .formats import SNIFF_BYTES, ImageFormat, format_names, human_bytes, sniff

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_ACCEPT = "image/png, image/jpeg, image/webp, image/gif;q=0.5"


def shown_url(url: str | URL) -> str:
    """``url`` for messages: without credentials or query, and not absurdly long."""
    try:
        parsed = URL(str(url))
        text = str(parsed.with_user(None).with_query(None).with_fragment(None))
    except (ValueError, TypeError):
        text = "<invalid URL>"
    return text if len(text) <= 200 else text[:197] + "..."


def _check_scheme(url: URL, label: str) -> None:
    if url.scheme not in ("http", "https") or not url.host:
        raise BadRequest(f"{label}: only http:// and https:// image URLs are allowed "
                         f"(got {shown_url(url)})", code="invalid_image_url")


async def download_image(
    http: aiohttp.ClientSession,
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    max_redirects: int,
    formats: tuple[ImageFormat, ...],
    label: str = "image",
) -> tuple[bytes, ImageFormat]:
    """GET ``url`` and return its bytes and format, or raise a :class:`BadRequest`.

    Redirects are followed by hand (at most ``max_redirects``) so that every hop's scheme is
    checked; the whole download, redirects included, must finish within ``timeout`` seconds;
    the body is streamed and abandoned as soon as it passes ``max_bytes`` or its first bytes
    are not one of ``formats``.
    """
    try:
        current = URL(url)
    except (ValueError, TypeError):
        raise BadRequest(f"{label}: not a valid URL", code="invalid_image_url") from None
    try:
        async with asyncio.timeout(timeout):
            for _hop in range(max_redirects + 1):
                _check_scheme(current, label)
                async with http.get(current, allow_redirects=False,
                                    headers={"Accept": _ACCEPT}) as resp:
                    if resp.status in _REDIRECTS:
                        location = resp.headers.get("Location")
                        if not location:
                            raise BadRequest(f"{label}: redirect without a location from "
                                             f"{shown_url(current)}", code="image_download_failed")
                        current = resp.url.join(URL(location))
                        continue
                    return await _read_image(resp, max_bytes, formats, label)
            raise BadRequest(f"{label}: too many redirects (more than {max_redirects}) from "
                             f"{shown_url(url)}", code="image_download_failed")
    except TimeoutError:
        raise BadRequest(f"{label}: downloading {shown_url(url)} took longer than {timeout:g} s",
                         code="image_download_failed") from None
    except (aiohttp.ClientError, ValueError) as exc:
        reason = str(exc)[:200] or type(exc).__name__
        raise BadRequest(f"{label}: failed to download image from {shown_url(url)}: {reason}",
                         code="image_download_failed") from None


async def _read_image(resp: aiohttp.ClientResponse, max_bytes: int,
                      formats: tuple[ImageFormat, ...], label: str) -> tuple[bytes, ImageFormat]:
    where = shown_url(resp.url)
    if resp.status != 200:
        raise BadRequest(f"{label}: failed to download image from {where}: HTTP {resp.status}",
                         code="image_download_failed")
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise _too_large(label, where, max_bytes)
    buf = bytearray()
    fmt: ImageFormat | None = None
    async for chunk in resp.content.iter_chunked(_CHUNK):
        buf += chunk
        if len(buf) > max_bytes:
            raise _too_large(label, where, max_bytes)
        if fmt is None and len(buf) >= SNIFF_BYTES:
            fmt = _format(bytes(buf[:SNIFF_BYTES]), formats, label, where)
    if fmt is None:
        fmt = _format(bytes(buf), formats, label, where)
    return bytes(buf), fmt


def _format(head: bytes, formats: tuple[ImageFormat, ...], label: str, where: str) -> ImageFormat:
    fmt = sniff(head)
    if fmt is None or fmt not in formats:
        raise BadRequest(f"{label}: {where} is not a {format_names(formats)} image",
                         code="unsupported_image")
    return fmt


def _too_large(label: str, where: str, max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{label}: {where} is larger than the {human_bytes(max_bytes)} limit",
                           code="image_too_large")
