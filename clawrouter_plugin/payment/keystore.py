"""Private files on disk: atomic writes created 0600 from the start, careful reads.

Nothing here ever puts file contents into an exception or a log line.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from ..errors import WalletError

log = logging.getLogger(__name__)

MAX_SECRET_BYTES = 4096


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) as 0700 when missing; an existing folder is left as is."""
    if path.is_dir():
        return
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path, 0o700)
    except OSError as exc:
        raise WalletError(f"cannot create the wallet folder {path}: {exc.strerror}") from None


def _write_temp(path: Path, text: str) -> Path:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _sync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_private(path: Path, text: str, *, replace: bool) -> bool:
    """Atomically write ``text`` to ``path`` with mode 0600.

    With ``replace=False`` the file is only created if it does not exist yet (returns False
    and writes nothing when another process got there first).
    """
    ensure_private_dir(path.parent)
    try:
        temp = _write_temp(path, text)
    except OSError as exc:
        raise WalletError(f"cannot write {path}: {exc.strerror}") from None
    try:
        if replace:
            os.replace(temp, path)
        else:
            try:
                os.link(temp, path)
            except FileExistsError:
                return False
    except OSError as exc:
        raise WalletError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        temp.unlink(missing_ok=True)
    _sync_dir(path.parent)
    return True


def read_private(path: Path) -> str | None:
    """The stripped text of ``path``; None when it does not exist.

    Unreadable files and anything that is not a small regular text file are a
    :class:`WalletError` (a funded wallet must never be silently replaced).
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():  # a link to nothing: not "no wallet", or one would be generated
            raise WalletError(f"the wallet file {path} is a symlink to a missing file; restore "
                              "its target or remove the link") from None
        return None
    except OSError as exc:
        raise WalletError(f"cannot read the wallet file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise WalletError(f"the wallet file {path} is not a regular file; it was left untouched")
    if info.st_size > MAX_SECRET_BYTES:
        raise WalletError(f"the wallet file {path} is corrupt (too large); it was left untouched")
    if info.st_mode & 0o077:
        log.warning("wallet file %s was readable by other users; restricting it to 0600", path)
        try:
            os.chmod(path, 0o600)
        except OSError:
            pass
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WalletError(f"cannot read the wallet file {path}: {exc.strerror}") from None
    text = data.decode("utf-8", "replace")  # no UnicodeDecodeError: it would hold the file
    if "\ufffd" in text:
        raise WalletError(f"the wallet file {path} is corrupt (not text); it was left untouched")
    return text.strip()


def backup(path: Path, stamp: str) -> Path | None:
    """Rename ``path`` to ``<name>.bak-<stamp>`` (kept 0600); returns the new path."""
    if not path.exists():
        return None
    target = path.with_name(f"{path.name}.bak-{stamp}")
    try:
        os.replace(path, target)
    except OSError as exc:
        raise WalletError(f"cannot back up {path}: {exc.strerror}") from None
    return target
