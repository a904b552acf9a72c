"""Re-encoding of image inputs with Pillow: only the decoded pixels go upstream.

An input is decoded and written again in its own format, so nothing but the picture leaves
the machine: EXIF (GPS position, camera, time), XMP, comments, PNG text chunks and any bytes
after the end of the image are dropped. The EXIF orientation is applied to the pixels first,
so a photo does not arrive rotated. The ICC colour profile is kept: it describes how to show
the colours, not the photo or where it was taken. An animated image keeps its first frame.

Decoding is refused above :data:`MAX_PIXELS` before any pixel is decoded (a small file can
declare a huge canvas). Blocking and CPU-bound: call it in a thread.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, JpegImagePlugin

from ..errors import BadRequest, PayloadTooLarge
from .formats import JPEG, PNG, WEBP, ImageFormat

MAX_PIXELS = 50_000_000  # a 48-megapixel photo fits; decoding takes at most ~200 MB as RGBA
_PIL_NAMES = {PNG: "PNG", JPEG: "JPEG", WEBP: "WEBP"}
_KEPT_INFO = ("transparency",)  # needed to draw the pixels right: not metadata


def reencode(data: bytes, fmt: ImageFormat, label: str = "image") -> bytes:
    """``data`` (an image of format ``fmt``) decoded and encoded again without metadata.

    Raises a :class:`BadRequest` when it does not decode as ``fmt`` (corrupt, truncated, a
    lie about its format) and a :class:`PayloadTooLarge` above :data:`MAX_PIXELS`.
    """
    name = _PIL_NAMES.get(fmt)
    if name is None:
        raise BadRequest(f"{label}: {fmt.name} images are not accepted", code="unsupported_image")
    try:
        with Image.open(io.BytesIO(data), formats=[name]) as source:
            if source.width * source.height > MAX_PIXELS:
                raise _too_many_pixels(label, source.width, source.height)
            source.load()
            options = _save_options(source, fmt, data)
            pixels = ImageOps.exif_transpose(source)  # always a new image
        pixels.info = {key: pixels.info[key] for key in _KEPT_INFO if key in pixels.info}
        out = io.BytesIO()
        pixels.save(out, format=name, **options)
    except BadRequest:  # too many pixels (PayloadTooLarge)
        raise
    except Image.DecompressionBombError:
        raise _too_many_pixels(label) from None
    except Exception:  # Pillow raises many different types for corrupt input
        raise BadRequest(f"{label}: the image could not be decoded (corrupt or not really a "
                         f"{fmt.name} image)", code="invalid_image") from None
    return out.getvalue()


def _save_options(source: Image.Image, fmt: ImageFormat, data: bytes) -> dict:
    """Encoder settings that keep the picture as it was: the ICC profile, a JPEG's own
    quantisation tables and chroma subsampling, a WebP's losslessness."""
    options: dict = {}
    icc = source.info.get("icc_profile")
    if icc:
        options["icc_profile"] = icc
    if fmt is JPEG and isinstance(source, JpegImagePlugin.JpegImageFile):
        if source.quantization:
            options["qtables"] = source.quantization
        sampling = JpegImagePlugin.get_sampling(source)
        if sampling != -1:
            options["subsampling"] = sampling
    elif fmt is PNG:
        options["compress_level"] = 1  # 5x faster than the default 6, rarely larger on photos
    elif fmt is WEBP:
        lossless = data[12:16] == b"VP8L" or (data[12:16] == b"VP8X" and b"VP8L" in data)
        if lossless:
            options["lossless"] = True
        else:
            options["quality"] = 90
    return options


def _too_many_pixels(label: str, width: int | None = None,
                     height: int | None = None) -> PayloadTooLarge:
    size = f" ({width}x{height})" if width and height else ""
    return PayloadTooLarge(f"{label}: the image{size} has more than {MAX_PIXELS // 1_000_000} "
                           f"million pixels", code="image_too_large")
