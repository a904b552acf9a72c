"""The local image store: every image the upstream returns is kept under ``<data dir>/images``.

Names are ``<UTC yyyymmddThhmmssZ>-<12 hex>.<ext>`` with the extension taken from the image's
own signature. Files are written to a temporary name and linked into place (never over an
existing file), so a reader never sees half an image. Lookups accept only names of exactly
that shape that are regular files in the directory holding the image their extension names:
no traversal, no listing, no symlinks, no other files.
"""

from __future__ import annotations

import base64
import os
import re
import stat
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ..errors import UpstreamError
from ..paths import ensure_private_dir
from .formats import SNIFF_BYTES, ImageFormat, sniff

_NAME = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{12}\.(?:png|jpg|webp|gif)")
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


@dataclass
class StoredImage:
    """One image of a result: the URL to give the client, and where it is on disk."""

    url: str
    path: Path | None
    upstream_url: str | None = None
    revised_prompt: str | None = None
    note: str | None = None

    def base64(self) -> str | None:
        """The image as base64: the stored file read back (blocking), or the payload of an
        inline data URI; None when only a remote URL is known."""
        if self.path is not None:
            try:
                return base64.b64encode(self.path.read_bytes()).decode("ascii")
            except OSError:
                return None
        if self.url.startswith("data:") and ";base64," in self.url:
            return self.url.split(";base64,", 1)[1]
        return None


class ImageStore:
    """Saves images atomically and resolves ``GET /images/<name>`` requests safely."""

    def __init__(self, directory: Path, public_url: Callable[[], str]):
        self.directory = Path(directory)
        self._public_url = public_url

    def url_for(self, name: str) -> str:
        """The URL clients use to fetch a stored image."""
        return f"{self._public_url().rstrip('/')}/images/{name}"

    def save(self, data: bytes) -> StoredImage:
        """Store ``data`` (PNG, JPEG, WebP or GIF by signature) and return its URL and path.

        Blocking (writes and fsyncs a file); async callers run it in a thread.
        """
        fmt = sniff(data[:SNIFF_BYTES])
        if fmt is None:
            raise UpstreamError("the upstream returned data that is not a PNG, JPEG, WebP or "
                                "GIF image", code="bad_upstream_image")
        ensure_private_dir(self.directory)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        tmp = self.directory / f".tmp-{uuid.uuid4().hex}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with open(fd, "wb", closefd=True) as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            for _attempt in range(8):
                name = f"{stamp}-{uuid.uuid4().hex[:12]}.{fmt.ext}"
                try:
                    os.link(tmp, self.directory / name)  # fails instead of overwriting
                    break
                except FileExistsError:
                    continue
            else:  # 8 collisions of 48 random bits: something is badly wrong
                raise OSError(f"cannot find a free image name in {self.directory}")
        finally:
            tmp.unlink(missing_ok=True)
        return StoredImage(url=self.url_for(name), path=self.directory / name)

    def resolve(self, name: str) -> tuple[Path, ImageFormat] | None:
        """The stored image called ``name`` and its format, or None for anything else.

        Only a name of the store's own shape, a regular file (not a symlink), whose first
        bytes are the image signature its extension says: a non-image file with a valid
        name, or an image under the wrong extension, is not served. Blocking (a short read).
        """
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            return None
        path = self.directory / name
        try:
            fd = os.open(path, _READ_FLAGS)
        except OSError:
            return None
        with open(fd, "rb", closefd=True) as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            fmt = sniff(handle.read(SNIFF_BYTES))
        return (path, fmt) if fmt is not None and fmt.ext == path.suffix[1:] else None
