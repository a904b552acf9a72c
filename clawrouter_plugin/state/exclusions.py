"""Models the user never wants routed to: config ``excludeModels`` plus a persisted list.

The list lives in ``exclude-models.json`` (a sorted JSON array, 2-space indent, trailing
newline) and is written atomically. :meth:`ExclusionStore.all` re-reads it only when the file
changed, so it is cheap per request and edits by another process apply at once. A corrupt
file is not an outage: it is moved aside as ``exclude-models.json.unreadable-<time>`` (kept
for the user, never deleted, the way the response cache sets a corrupt database aside), a
warning is logged and listed in :attr:`ExclusionStore.warnings` (``/health`` shows it), and
routing goes on with the config exclusions only.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from ..catalog import BLOCKRUN_PREFIX, Catalog
from ..errors import BadRequest, ClawRouterError, ConfigError

log = logging.getLogger(__name__)
RECHECK_SECONDS = 1.0  # how often all() looks at the file for edits by other programs

FREE_PROFILE = "free"


class ExclusionNames:
    """What both backends share: the config exclusions, and turning the names users type
    (aliases, ``blockrun/`` ids, the ``free`` profile) into catalog ids."""

    def __init__(self, catalog: Catalog, initial: Iterable[str] = ()):
        self._catalog = catalog
        self._config = frozenset(self._resolve(name, ConfigError) for name in initial)

    def _known(self, entries: Iterable[str]) -> frozenset[str]:
        """The config exclusions plus the stored ``entries`` that name a catalog chat model."""
        known = {self._canonical(entry) for entry in entries}
        return self._config | {m for m in known if m in self._catalog.chat}

    def _removal(self, entries: Iterable[str], name: str) -> tuple[set[str], str]:
        """The stored entries that ``name`` unblocks, and what to call it in the reply;
        BadRequest when none does."""
        key = _normalise(name)
        model = self._canonical(key)
        matches = {e for e in entries if e == key or self._canonical(e) == model}
        if matches:
            return matches, model if model in self._catalog.chat else key
        if model in self._config:
            raise BadRequest(
                f'"{model}" is excluded by the configuration (excludeModels); '
                "remove it there to unblock it."
            )
        raise BadRequest(f'Model "{name.strip()}" was not in the exclude list.')

    def _canonical(self, name: str) -> str:
        resolved = self._catalog.resolve(name)
        if resolved == FREE_PROFILE and self._catalog.is_profile(resolved):
            return self._catalog.free_model
        return resolved

    def _resolve(self, name: str, error: type[ClawRouterError]) -> str:
        if not isinstance(name, str) or not name.strip():
            raise error("a model name is required, e.g. /exclude add deepseek")
        model = self._canonical(name)
        if model in self._catalog.chat:
            return model
        if self._catalog.is_profile(model):
            raise error(f'"{name.strip()}" is a routing profile, not a model; exclude models.')
        hints = _suggestions(_normalise(name), self._catalog)
        hint = f" Did you mean: {', '.join(hints)}?" if hints else ""
        raise error(f'Unknown model "{name.strip()}".{hint}')


class ExclusionStore(ExclusionNames):
    """The set of excluded chat-model ids, kept in a file (the local backend's
    :class:`~.stores.ModelExclusions`; async for that interface, answering at once)."""

    def __init__(self, path: Path, catalog: Catalog, initial: Iterable[str] = ()):
        super().__init__(catalog, initial)
        self._path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._loaded = False
        self._checked_at = float("-inf")
        self._entries: list[str] = []  # the file's strings, as stored
        self._all = self._config
        self.warnings: list[str] = []  # damaged lists set aside (shown by /health)

    async def all(self) -> frozenset[str]:
        """Every excluded catalog id (config and file); a corrupt file is set aside (see
        :attr:`warnings`), ConfigError only when the file cannot be read at all.

        Called on every request: the file is looked at again at most once a second (changes
        through this store apply at once; edits by other programs within a second).
        """
        now = time.monotonic()
        if now - self._checked_at < RECHECK_SECONDS and self._loaded:
            return self._all
        with self._lock:
            self._refresh()
            self._checked_at = now
            return self._all

    async def add(self, name: str) -> str:
        """Exclude ``name`` (aliases resolved); returns the catalog id. Unknown -> BadRequest."""
        with self._lock:
            self._refresh()
            model = self._resolve(name, BadRequest)
            if model not in self._all:
                self._write(set(self._entries) | {model})
            return model

    async def remove(self, name: str) -> str:
        """Stop excluding ``name``; returns what was removed. BadRequest if it was not excluded."""
        with self._lock:
            self._refresh()
            matches, shown = self._removal(self._entries, name)
            self._write(set(self._entries) - matches)
            return shown

    async def clear(self) -> None:
        """Empty the file's list (config exclusions stay)."""
        with self._lock:
            self._write(set())

    def _refresh(self) -> None:
        self._checked_at = float("-inf")  # writes through this store invalidate the throttle
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            stamp = None
        except OSError as exc:
            raise ConfigError(f"cannot read {self._path}: {exc.strerror}") from None
        else:
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if self._loaded and stamp == self._stamp:
            return
        entries = self._read() if stamp is not None else []
        self._entries = entries
        self._all = self._known(entries)
        self._stamp, self._loaded = stamp, True

    def _read(self) -> list[str]:
        try:
            data = json.loads(self._path.read_text("utf-8"))
        except FileNotFoundError:
            return []
        except OSError as exc:  # e.g. a directory in its place
            return self._set_aside(exc.strerror or str(exc))
        except (UnicodeDecodeError, ValueError) as exc:
            return self._set_aside(str(exc))
        if not isinstance(data, list) or not all(isinstance(e, str) for e in data):
            return self._set_aside("expected a JSON array of model ids")
        return data

    def _set_aside(self, problem: str) -> list[str]:
        """Move the damaged file out of the way; routing goes on without its exclusions."""
        aside = self._path.with_name(f"{self._path.name}.unreadable-{time.time_ns()}")
        try:
            os.rename(self._path, aside)
            where = f"moved it to {aside}"
        except OSError as exc:
            where = f"could not move it away ({exc.strerror or exc})"
        notice = (f"{self._path} is not a valid exclusion list ({problem}); {where}. Routing "
                  "goes on without its exclusions: add them again with /exclude add")
        log.warning("%s", notice)
        self.warnings = [*self.warnings[-4:], notice]  # the latest few
        return []

    def _write(self, entries: set[str]) -> None:
        text = json.dumps(sorted(entries), indent=2) + "\n"
        parent = self._path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{self._path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self._path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise ConfigError(f"cannot write {self._path}: {exc.strerror or exc}") from None
        self._loaded = False
        self._refresh()


def _normalise(name: str) -> str:
    key = name.strip().lower()
    return key[len(BLOCKRUN_PREFIX) :] if key.startswith(BLOCKRUN_PREFIX) else key


def _suggestions(key: str, catalog: Catalog, limit: int = 3) -> list[str]:
    """Catalog ids and aliases that look like ``key``: containing it first, then similar."""
    names = sorted(set(catalog.chat) | set(catalog.aliases))
    containing = [n for n in catalog.chat if key and key in n]
    similar = difflib.get_close_matches(key, names, n=limit, cutoff=0.6)
    return list(dict.fromkeys(containing + similar))[:limit]
