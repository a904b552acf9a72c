"""Bounded image downloads: every hop checked by the outbound policy, a deadline, a byte cap,
a content check, and one generic error for the client whatever went wrong."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from yarl import URL

from ..errors import BadRequest, PayloadTooLarge
from ..outbound import OutboundPolicy, OutboundRefused
from .formats import SNIFF_BYTES, ImageFormat, format_names, human_bytes, sniff

log = logging.getLogger("clawrouter.images")
FETCH_FAILED = "could not fetch the image at that URL"

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


class _Failed(Exception):
    """Why a download failed: logged at debug level, never shown to the client."""


def fetch_failed(label: str) -> BadRequest:
    """The one error a client sees for any URL that could not be fetched (refused by the
    outbound policy, unreachable, an HTTP error, not an image, too slow, too many redirects):
    the same text whatever the reason, so it tells nothing about what listens where."""
    return BadRequest(f"{label}: {FETCH_FAILED}", code="image_download_failed")


async def download_image(
    policy: OutboundPolicy,
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    max_redirects: int,
    formats: tuple[ImageFormat, ...],
    label: str = "image",
) -> tuple[bytes, ImageFormat]:
    """GET ``url`` and return its bytes and format, or raise a :class:`BadRequest`.

    Every hop, redirects included, is checked by ``policy`` (scheme, resolved addresses) and
    connects only to the addresses it checked. Redirects are followed by hand (at most
    ``max_redirects``); the whole download must finish within ``timeout`` seconds; the body
    is streamed and abandoned as soon as it passes ``max_bytes`` (a 413) or its first bytes
    are not one of ``formats``. Every other failure is :func:`fetch_failed`.
    """
    try:
        current = URL(url)
    except (ValueError, TypeError):
        raise BadRequest(f"{label}: not a valid URL", code="invalid_image_url") from None
    if current.scheme not in ("http", "https") or not current.host:
        raise BadRequest(f"{label}: only http:// and https:// image URLs are allowed",
                         code="invalid_image_url")
    try:
        async with asyncio.timeout(timeout), policy.session() as http:
            for _hop in range(max_redirects + 1):
                async with await http.get(current, {"Accept": _ACCEPT}) as resp:
                    if resp.status not in _REDIRECTS:
                        return await _read_image(resp, max_bytes, formats, label)
                    location = resp.headers.get("Location")
                    if not location:
                        raise _Failed(f"HTTP {resp.status} without a Location")
                    current = resp.url.join(URL(location))
            raise _Failed(f"more than {max_redirects} redirects")
    except (_Failed, OutboundRefused, TimeoutError, aiohttp.ClientError, ValueError) as exc:
        log.debug("%s: could not fetch %s: %s", label, shown_url(url),
                  str(exc)[:300] or type(exc).__name__)
        raise fetch_failed(label) from None


async def _read_image(resp: aiohttp.ClientResponse, max_bytes: int,
                      formats: tuple[ImageFormat, ...], label: str) -> tuple[bytes, ImageFormat]:
    if resp.status != 200:
        raise _Failed(f"HTTP {resp.status} from {shown_url(resp.url)}")
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise _too_large(label, max_bytes)
    buf = bytearray()
    fmt: ImageFormat | None = None
    async for chunk in resp.content.iter_chunked(_CHUNK):
        buf += chunk
        if len(buf) > max_bytes:
            raise _too_large(label, max_bytes)
        if fmt is None and len(buf) >= SNIFF_BYTES:
            fmt = _format(bytes(buf[:SNIFF_BYTES]), formats)
    if fmt is None:
        fmt = _format(bytes(buf), formats)
    return bytes(buf), fmt


def _format(head: bytes, formats: tuple[ImageFormat, ...]) -> ImageFormat:
    fmt = sniff(head)
    if fmt is None or fmt not in formats:
        raise _Failed(f"not a {format_names(formats)} image")
    return fmt


def _too_large(label: str, max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{label}: the image at that URL is larger than the "
                           f"{human_bytes(max_bytes)} limit", code="image_too_large")
