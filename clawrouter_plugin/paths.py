"""Where clawrouter keeps its files. Everything lives under one data directory."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DATA_DIR = "~/.openclaw/blockrun"


def resolve_data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data directory: ``explicit``, else ``$CLAWROUTER_HOME``, else ~/.openclaw/blockrun."""
    chosen = explicit or os.environ.get("CLAWROUTER_HOME") or DEFAULT_DATA_DIR
    return Path(chosen).expanduser()


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 if it does not exist yet."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
