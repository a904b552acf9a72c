"""Where clawrouter keeps its files. Everything lives under one data directory."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

DEFAULT_DATA_DIR = "~/.openclaw/blockrun"


def expand_user(path: str | os.PathLike, what: str) -> Path:
    """``path`` with a leading ``~`` expanded; ConfigError when it names no known home."""
    try:
        return Path(path).expanduser()
    except RuntimeError:  # "~someone" with no such user, or no home directory at all
        raise ConfigError(f"{what} {os.fspath(path)!r}: cannot expand '~' "
                          "(no such user, or no home directory)") from None


def resolve_data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data directory: ``explicit``, else ``$CLAWROUTER_HOME``, else ~/.openclaw/blockrun."""
    chosen = explicit or os.environ.get("CLAWROUTER_HOME") or DEFAULT_DATA_DIR
    return expand_user(chosen, "data directory")


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 if it does not exist yet."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def open_data_dir(path: Path) -> Path:
    """Create the data directory if needed; ConfigError saying why it cannot be used."""
    try:
        return ensure_private_dir(path)
    except FileExistsError:
        raise ConfigError(f"the data directory {path} exists but is not a directory (or is a "
                          "broken symlink); move it away or choose another with --data-dir "
                          "or $CLAWROUTER_HOME") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(f"cannot create the data directory {path}: {reason}") from None
