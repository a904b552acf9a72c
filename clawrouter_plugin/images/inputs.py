"""Safe loading of the ``image`` / ``mask`` inputs of an edit request.

An input is a local path (absolute or ``~/``; relative only when the caller allows it), an
http(s) URL, or a ``data:image/...;base64,`` URI. Whatever the source, the bytes must really
be PNG, JPEG or WebP (checked by their signature) and no larger than ``images.maxInputBytes``.
Local files are read only when the caller allows local files at all (not for a message relayed
from a chat channel, by default) and only from the folders in ``images.localFolders`` (the
home directory by default), checked after symlinks are resolved. They must be regular files;
they are opened non-blocking and checked with ``fstat`` before anything is read, so a FIFO, a
device or a directory never blocks and never gets read. URLs are fetched under the outbound
URL policy (:mod:`..outbound`). Every input is then decoded and re-encoded, so only the picture
goes upstream. Error messages name the input, never its contents.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from ..config import ImageConfig
from ..errors import BadRequest, PayloadTooLarge
from ..outbound import OutboundPolicy
from .download import download_image, fetch_failed
from .formats import (
    INPUT_FORMATS,
    SNIFF_BYTES,
    ImageFormat,
    format_names,
    human_bytes,
    sniff,
    sniff_input,
)
from .reencode import reencode

_FORMAT_NAMES = format_names(INPUT_FORMATS)
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_WHITESPACE = re.compile(r"\s+")
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True, slots=True)
class ImageInput:
    """Validated image bytes and their (sniffed) format."""

    data: bytes
    format: ImageFormat

    def data_uri(self) -> str:
        """The bytes as ``data:<mime>;base64,...`` with the MIME type of the real format."""
        return f"data:{self.format.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


async def load_image_input(
    value: object,
    *,
    outbound: OutboundPolicy,
    config: ImageConfig,
    allow_relative: bool = False,
    local_files: bool = True,
    label: str = "image",
) -> ImageInput:
    """Load one image input (path, URL or data URI) or raise a :class:`BadRequest`.

    The result is re-encoded (:mod:`.reencode`): only the decoded picture, without metadata
    or trailing bytes. URLs are fetched under ``outbound``, the outbound URL policy.
    ``allow_relative`` lets a relative path resolve against the process's working directory
    (the chat command); the HTTP route requires absolute or ``~/`` paths. ``local_files``
    False refuses every path before touching the disk.
    """
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{label} is required: a file path, an http(s) URL or a data URI",
                         code="missing_image")
    value = value.strip()
    limit = config.max_input_bytes
    if value[:5].lower() == "data:":
        return await asyncio.to_thread(
            lambda: cleaned(decode_data_uri(value, limit, label), label))
    if _URL_SCHEME.match(value):
        if value.split(":", 1)[0].lower() not in ("http", "https"):
            raise BadRequest(f"{label}: only http:// and https:// URLs are allowed",
                             code="invalid_image_url")
        data, fmt = await download_image(
            outbound, value, max_bytes=limit, timeout=config.download_timeout_seconds,
            max_redirects=config.max_redirects, formats=INPUT_FORMATS, label=label)
        try:
            return await asyncio.to_thread(cleaned, ImageInput(data, fmt), label)
        except PayloadTooLarge:
            raise
        except BadRequest:  # not decodable: said like every other failure of a URL
            raise fetch_failed(label) from None
    if not local_files:
        raise BadRequest(f"{label}: local files cannot be used from a message relayed from a "
                         f"chat channel; send an http(s) URL instead", code="local_file_refused")
    path = local_path(value, allow_relative=allow_relative, label=label)
    folders = allowed_folders(config.local_folders)
    return await asyncio.to_thread(
        lambda: cleaned(read_image_file(path, limit, label, folders), label))


def cleaned(image: ImageInput, label: str = "image") -> ImageInput:
    """``image`` re-encoded without metadata (blocking, CPU-bound: call it in a thread)."""
    return ImageInput(reencode(image.data, image.format, label), image.format)


def allowed_folders(folders: list[str]) -> tuple[str, ...]:
    """The configured local-input folders as real absolute paths (``~`` expanded)."""
    real = []
    for folder in folders:
        try:
            path = Path(folder).expanduser()
        except RuntimeError:  # "~user" with no such user: that folder allows nothing
            continue
        if path.is_absolute():
            real.append(os.path.realpath(path))
    return tuple(real)


def _inside(real: str, folders: tuple[str, ...]) -> bool:
    return any(real == folder or real.startswith(folder.rstrip(os.sep) + os.sep)
               for folder in folders)


def local_path(value: str, *, allow_relative: bool, label: str = "image") -> Path:
    """The path ``value`` names: ``~/`` expands to $HOME; relative paths only if allowed."""
    if "\x00" in value:
        raise BadRequest(f"{label}: invalid file path", code="invalid_image_path")
    if value == "~" or value.startswith("~/"):
        return Path.home() / value[2:]
    if value.startswith("~"):
        raise BadRequest(f"{label}: only '~/' paths are supported, not '~user/'",
                         code="invalid_image_path")
    path = Path(value)
    if path.is_absolute():
        return path
    if allow_relative:
        return Path.cwd() / path
    raise BadRequest(f"{label}: a file path must be absolute or start with ~/ (got a relative "
                     f"path); URLs and data: URIs work too", code="invalid_image_path")


def read_image_file(path: Path, max_bytes: int, label: str = "image",
                    folders: tuple[str, ...] | None = None) -> ImageInput:
    """Read a local image file safely (blocking; call it in a thread).

    Symlinks are resolved; the target must be inside one of ``folders`` (real paths; None:
    anywhere) and must itself be a regular file of at most
    ``max_bytes`` whose first bytes are a PNG, JPEG or WebP signature. Only the signature is
    read before the format is known, so a non-image file's contents are never loaded.
    """
    shown = str(path)
    real = os.path.realpath(path)
    if folders is not None and not _inside(real, folders):
        raise BadRequest(f"{label}: {shown} is outside the folders local images may be read "
                         f"from (images.localFolders)", code="local_file_refused")
    try:
        _check_stat(os.stat(real), shown, max_bytes, label)
        fd = os.open(real, _OPEN_FLAGS)
    except FileNotFoundError:
        raise BadRequest(f"{label}: file not found: {shown}", code="image_not_found") from None
    except PermissionError:
        raise BadRequest(f"{label}: permission denied: {shown}", code="image_unreadable") from None
    except OSError as exc:
        raise BadRequest(f"{label}: cannot open {shown}: {exc.strerror or 'error'}",
                         code="image_unreadable") from None
    with open(fd, "rb", closefd=True) as handle:
        _check_stat(os.fstat(handle.fileno()), shown, max_bytes, label)  # the file we opened
        head = handle.read(SNIFF_BYTES)
        fmt = sniff_input(head)
        if fmt is None:
            raise BadRequest(f"{label}: {shown} is not a {_FORMAT_NAMES} image",
                             code="unsupported_image")
        data = head + handle.read(max_bytes + 1 - len(head))
    if len(data) > max_bytes:  # it grew after the stat
        raise _too_large(label, shown, max_bytes)
    return ImageInput(data, fmt)


def _check_stat(info: os.stat_result, shown: str, max_bytes: int, label: str) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise BadRequest(f"{label}: {shown} is a directory, not an image file",
                         code="unsupported_image")
    if not stat.S_ISREG(info.st_mode):
        raise BadRequest(f"{label}: {shown} is not a regular file", code="unsupported_image")
    if info.st_size > max_bytes:
        raise _too_large(label, shown, max_bytes)
    if info.st_size == 0:
        raise BadRequest(f"{label}: {shown} is empty", code="unsupported_image")


def decode_data_uri(value: str, max_bytes: int, label: str = "image",
                    formats: tuple[ImageFormat, ...] = INPUT_FORMATS) -> ImageInput:
    """Decode and check a ``data:image/<type>;base64,<data>`` URI (bytes must be ``formats``)."""
    header, comma, payload = value.partition(",")
    params = header[5:].lower().split(";")
    if not comma or params[-1] != "base64" or not params[0].startswith("image/"):
        raise BadRequest(f"{label}: a data URI must look like data:image/png;base64,...",
                         code="invalid_data_uri")
    if any(blank in payload for blank in " \r\n\t"):  # rare; scanning first is much faster
        payload = _WHITESPACE.sub("", payload)
    if len(payload) > -(-max_bytes // 3) * 4:  # checked before decoding anything
        raise _too_large(label, "the data URI", max_bytes)
    try:
        data = binascii.a2b_base64(payload.encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise BadRequest(f"{label}: the data URI is not valid base64",
                         code="invalid_data_uri") from None
    if len(data) > max_bytes:
        raise _too_large(label, "the data URI", max_bytes)
    fmt = sniff(data[:SNIFF_BYTES])
    if fmt is None or fmt not in formats:
        raise BadRequest(f"{label}: the data URI is not a {format_names(formats)} image",
                         code="unsupported_image")
    return ImageInput(data, fmt)


def _too_large(label: str, what: str, max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{label}: {what} is larger than the {human_bytes(max_bytes)} limit "
                           f"(images.maxInputBytes)", code="image_too_large")
