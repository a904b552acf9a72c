"""The response cache: identical chat requests are answered from disk instead of paying again.

Keys come from :func:`~clawrouter_plugin.state.cache_key.cache_key`. Entries live in a
:mod:`diskcache` directory under the data dir, so they survive restarts. The value is the raw
response body; status, headers and model travel in the entry's tag as JSON. Stores reach the
disk within :data:`SAVE_DELAY_SECONDS` (write-behind, batched; all of them on close), so a
crash can lose only the last moments of the cache, never corrupt it.

The entry-count limit and least-recently-used order are kept by an in-memory index (key ->
expiry), rebuilt from disk at start-up in the order entries were last stored. A hit refreshes
an entry's recency for the rest of the process's life; recency from hits is not written to disk
(that would turn every hit into a write). The hit, miss and eviction counters are per process.
The directory is meant for one proxy process at a time.

Each entry's tag carries a CRC-32 of its body: a body damaged on disk (e.g. a value file left
short by a power loss) is a miss, never served. A corrupt database is moved aside as
``cache.unreadable-<time>`` and the cache starts empty. Entries another program stored in the
directory are left alone; one that cannot even be decoded is a :class:`ConfigError`.
"""

from __future__ import annotations

import io
import logging
import math
import os
import shutil
import sqlite3
import tempfile
import threading
import time
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any, NamedTuple

import diskcache
import orjson

from ..errors import ConfigError
from ..paths import ensure_private_dir
from .writer import BackgroundWriter

log = logging.getLogger(__name__)
_DISK_ERRORS = (OSError, sqlite3.Error, diskcache.Timeout)
SAVE_DELAY_SECONDS = 2.0  # stores gather this long before one disk commit
SAVE_BYTES = 8 * 1024 * 1024  # ... or until this many bytes wait in memory
HOT_BYTES = 8 * 1024 * 1024  # saved entries also kept in memory, least recently used out first


class CachedResponse(NamedTuple):
    """A stored upstream reply (immutable)."""

    status: int
    headers: dict[str, str]
    body: bytes
    model: str | None
    stored_at: float


class ResponseCache:
    """Bounded, expiring, persistent cache of responses keyed by :func:`cache_key`."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        max_size: int = 200,
        default_ttl: float = 600,
        max_item_size: int = 1_048_576,
        enabled: bool = True,
    ):
        if max_size < 1 or default_ttl <= 0 or max_item_size < 1:
            raise ValueError("max_size, default_ttl and max_item_size must be positive")
        self._max_size = max_size
        self._default_ttl = default_ttl
        self._max_item_size = max_item_size
        self._lock = threading.Lock()
        self._index: OrderedDict[str, float] = OrderedDict()  # key -> expiry; oldest use first
        self._soonest_expiry = math.inf  # no entry expires before this (may be stale-early)
        self._hits = self._misses = self._evictions = 0
        # Write-behind: stores wait in memory (``_unsaved``, which also answers hits) and reach
        # the disk together, one commit per save, at most SAVE_DELAY_SECONDS later. An entry
        # evicted before its save never touches the disk, so under a stream of unique
        # requests the disk sees at most ``max_size`` stores per save, not one per request.
        self._unsaved: dict[str, tuple[CachedResponse, float]] = {}  # key -> (response, used)
        self._unsaved_bytes = 0
        self._saving: set[str] = set()  # keys being written by the save running now
        self._doomed: set[str] = set()  # keys to delete from disk at the next save
        # Saved entries used lately stay in memory too, up to HOT_BYTES: a hit on them
        # needs no disk read.
        self._hot: OrderedDict[str, CachedResponse] = OrderedDict()
        self._hot_bytes = 0
        self._writer = BackgroundWriter("clawrouter-cache")
        self._tempdir: str | None = None
        self._disk: diskcache.Cache | None = None
        if not enabled:
            return
        if directory is None:
            self._tempdir = tempfile.mkdtemp(prefix="clawrouter-cache-")
            directory = Path(self._tempdir)
        directory = Path(directory)
        try:
            ensure_private_dir(directory)
            try:
                self._disk = self._open(directory)
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError):
                    raise  # access, locks, I/O: moving the folder away would not help
                aside = directory.with_name(f"{directory.name}.unreadable-{time.time_ns()}")
                os.rename(directory, aside)  # corrupt: kept for inspection, never deleted
                log.warning("response cache in %s is corrupt (%s); moved it to %s and started "
                            "an empty one", directory, exc, aside)
                ensure_private_dir(directory)
                self._disk = self._open(directory)
        except _DISK_ERRORS as exc:
            raise ConfigError(f"cannot open the response cache in {directory}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - e.g. a pickled value of an unknown class
            raise ConfigError(
                f"{directory} holds entries clawrouter cannot read ({type(exc).__name__}: "
                f"{exc}), so it is not clawrouter's response cache; move it away") from None

    def _open(self, directory: Path) -> diskcache.Cache:
        """The disk cache in ``directory``, with the index rebuilt from it."""
        disk = diskcache.Cache(
            str(directory), eviction_policy="none", size_limit=2**40, cull_limit=0
        )
        try:
            self._load_index(disk)
        except BaseException:
            disk.close()
            self._index.clear()
            raise
        return disk

    def _load_index(self, disk: diskcache.Cache) -> None:
        """Rebuild the index from disk, oldest stored first. Expired entries, and ours that are
        damaged or of an older format, are deleted; another program's are left alone."""
        disk.expire()
        found = []
        for key in list(disk.iterkeys()):
            if not isinstance(key, str):  # our keys are strings: another program's entry
                continue
            value, expires_at, tag = disk.get(key, read=True, expire_time=True, tag=True)
            if isinstance(value, io.IOBase):  # a large body, stored as a file
                value.close()
            if value is None:  # its file is lost, or it expired just now: of use to nobody
                disk.delete(key)
                continue
            if not _looks_ours(tag):  # another program's entry: not ours to use or delete
                continue
            meta = _decode_meta(tag) if isinstance(value, (bytes, io.IOBase)) else None
            if meta is None or expires_at is None:  # ours, but damaged or of an older format
                disk.delete(key)
                continue
            found.append((meta["used"], key, expires_at))
        for _, key, expires_at in sorted(found):
            self._index[key] = expires_at
        self._soonest_expiry = min(self._index.values(), default=math.inf)
        while len(self._index) > self._max_size:
            disk.delete(self._index.popitem(last=False)[0])

    def get(self, key: str) -> CachedResponse | None:
        """The stored response for ``key``, or None (a miss; expired entries are misses)."""
        if self._disk is None:
            return None
        with self._lock:
            expires_at = self._index.get(key)
            if expires_at is None:
                self._misses += 1
                return None
            if expires_at <= time.time():
                self._forget(key)
                self._misses += 1
                return None
            unsaved = self._unsaved.get(key)
            found = unsaved[0] if unsaved is not None else self._hot.get(key)
            if found is not None:
                self._index.move_to_end(key)
                self._hits += 1
                if unsaved is None:
                    self._hot.move_to_end(key)
                return found
            try:
                value, tag = self._disk.get(key, tag=True)
            except _DISK_ERRORS as exc:
                log.warning("response cache: read failed, treating as a miss: %s", exc)
                value = tag = None
            meta = _decode_meta(tag) if isinstance(value, bytes) else None
            if meta is None or zlib.crc32(value) != meta["crc32"]:
                if meta is not None:
                    log.warning("response cache: a stored body is damaged; dropping it")
                self._forget(key)  # unreadable, damaged, or removed behind our back
                self._misses += 1
                return None
            self._index.move_to_end(key)
            self._hits += 1
            found = CachedResponse(status=meta["status"], headers=meta["headers"],
                                   body=bytes(value), model=meta["model"],
                                   stored_at=meta["stored_at"])
            self._keep_hot(key, found)
        return found

    def put(self, key: str, response: CachedResponse, ttl: float | None = None) -> bool:
        """Store a successful (2xx) response; False when disabled, too big or not storable.

        When full, expired entries go first, then the least recently used one (counted as an
        eviction). Disk errors are logged and give False (or a miss in :meth:`get`).
        """
        ttl = self._default_ttl if ttl is None else ttl
        if (
            self._disk is None
            or ttl <= 0
            or len(response.body) > self._max_item_size
            or not 200 <= response.status < 300
        ):
            return False
        now = time.time()
        with self._lock:
            if self._disk is None:
                return False
            if key not in self._index:
                self._make_room(now)
            self._index[key] = now + ttl
            self._index.move_to_end(key)
            self._soonest_expiry = min(self._soonest_expiry, now + ttl)
            self._discard_unsaved(key)
            self._drop_hot(key)
            self._unsaved[key] = (response, now)
            self._unsaved_bytes += len(response.body)
            self._doomed.discard(key)
            too_much = self._unsaved_bytes >= SAVE_BYTES
        self._writer.schedule(self._save, SAVE_DELAY_SECONDS)
        if too_much:
            self._writer.nudge()
        return True

    def _save(self) -> None:
        """Writer thread: write the unsaved entries and delete the doomed ones, in one commit."""
        with self._lock:
            batch = [(key, item, self._index[key]) for key, item in self._unsaved.items()]
            doomed, self._doomed = self._doomed, set()
            self._saving = {key for key, _, _ in batch}
            disk = self._disk
        try:
            if disk is not None and (batch or doomed):
                self._write(disk, batch, doomed)
        finally:
            with self._lock:
                self._saving = set()
                for key, item, _ in batch:
                    if self._unsaved.get(key) is item:
                        self._discard_unsaved(key)
                        if key in self._index:  # saved (a failed write dropped it)
                            self._keep_hot(key, item[0])

    def _write(self, disk: diskcache.Cache, batch: list, doomed: set[str]) -> None:
        now = time.time()
        try:
            with disk.transact():
                for key in doomed:
                    disk.delete(key)
                for key, (response, used), expires_at in batch:
                    if expires_at > now:
                        disk.set(key, bytes(response.body), expire=expires_at - now,
                                 tag=_encode_meta(response, used))
        except _DISK_ERRORS as exc:  # the cache is an optimisation: never fail the request
            log.warning("response cache: store failed: %s", exc)
            with self._lock:
                for key, item, _ in batch:
                    if self._unsaved.get(key) is item:
                        self._index.pop(key, None)
                self._doomed |= doomed

    def flush(self) -> None:
        """Wait until every store so far is on disk."""
        self._writer.flush()

    def _make_room(self, now: float) -> None:
        """Free a slot (expired entries first, then the least recently used)."""
        dropped: list[str] = []
        if len(self._index) >= self._max_size and self._soonest_expiry <= now:
            dropped = [key for key, expires_at in self._index.items() if expires_at <= now]
            self._soonest_expiry = math.inf
        for key in dropped:
            self._forget(key)
        if dropped:
            self._soonest_expiry = min(self._index.values(), default=math.inf)
        while len(self._index) >= self._max_size:
            self._forget(next(iter(self._index)))
            self._evictions += 1

    def _forget(self, key: str) -> None:
        """Drop an entry now in memory and, if it reached the disk, at the next save."""
        self._index.pop(key, None)
        self._drop_hot(key)
        if self._discard_unsaved(key) and key not in self._saving:
            return  # never written: nothing to delete
        if self._disk is not None:
            self._doomed.add(key)
            self._writer.schedule(self._save, SAVE_DELAY_SECONDS)

    def _keep_hot(self, key: str, response: CachedResponse) -> None:
        """Keep a saved entry in memory, pushing out the least recently used beyond HOT_BYTES."""
        self._drop_hot(key)
        if len(response.body) > HOT_BYTES:
            return
        self._hot[key] = response
        self._hot_bytes += len(response.body)
        while self._hot_bytes > HOT_BYTES:
            _, old = self._hot.popitem(last=False)
            self._hot_bytes -= len(old.body)

    def _drop_hot(self, key: str) -> None:
        old = self._hot.pop(key, None)
        if old is not None:
            self._hot_bytes -= len(old.body)

    def _discard_unsaved(self, key: str) -> bool:
        """Forget an unsaved store; True if there was one."""
        item = self._unsaved.pop(key, None)
        if item is None:
            return False
        self._unsaved_bytes -= len(item[0].body)
        return True

    def stats(self) -> dict:
        """``{"size", "maxSize", "hits", "misses", "evictions", "hitRate"}`` for ``GET /cache``."""
        with self._lock:
            now = time.time()
            size = sum(1 for expires_at in self._index.values() if expires_at > now)
            lookups = self._hits + self._misses
            rate = f"{self._hits / lookups * 100:.1f}%" if lookups else "0%"
            return {
                "size": size,
                "maxSize": self._max_size,
                "hits": self._hits,
                "misses": self._misses,
                "evictions": self._evictions,
                "hitRate": rate,
            }

    def clear(self) -> None:
        """Remove every entry and reset the counters."""
        self.flush()
        with self._lock:
            if self._disk is not None:
                self._disk.clear()
            self._index.clear()
            self._unsaved.clear()
            self._unsaved_bytes = 0
            self._doomed.clear()
            self._hot.clear()
            self._hot_bytes = 0
            self._hits = self._misses = self._evictions = 0

    def close(self) -> None:
        """Save what is unsaved and close the disk cache (a private temp directory is deleted).
        Safe to call twice."""
        self._writer.close()
        with self._lock:
            if self._disk is not None:
                self._disk.close()
                self._disk = None
            self._index.clear()
            if self._tempdir is not None:
                shutil.rmtree(self._tempdir, ignore_errors=True)
                self._tempdir = None

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _encode_meta(response: CachedResponse, used: float) -> str:
    """The entry's tag: everything but the body, when it was stored (for LRU order) and the
    body's CRC-32."""
    return orjson.dumps({
        "status": response.status,
        "headers": dict(response.headers),
        "model": response.model,
        "stored_at": response.stored_at,
        "used": used,
        "crc32": zlib.crc32(response.body),
    }).decode()


def _decode_meta(tag: Any) -> dict | None:
    """The metadata stored in an entry's tag, or None if it is not ours (of this version)."""
    if not isinstance(tag, str):
        return None
    try:
        meta = orjson.loads(tag)
    except ValueError:
        return None
    if not isinstance(meta, dict):
        return None
    headers, model = meta.get("headers"), meta.get("model")
    valid = (
        type(meta.get("status")) is int
        and type(meta.get("crc32")) is int
        and isinstance(headers, dict)
        and all(isinstance(value, str) for value in headers.values())
        and (model is None or isinstance(model, str))
        and _finite(meta.get("stored_at"))
        and _finite(meta.get("used"))
    )
    return meta if valid else None


def _finite(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _looks_ours(tag: Any) -> bool:
    """Whether an entry's tag is clawrouter's metadata, of this version or an older one."""
    return isinstance(tag, str) and tag.startswith('{"status":')


class LocalCache:
    """The local backend's :class:`~clawrouter_plugin.state.stores.CacheStore`: this process's
    :class:`ResponseCache` (``local``), behind the async interface the pipeline uses."""

    def __init__(self, local: ResponseCache):
        self.local = local

    async def get(self, key: str) -> CachedResponse | None:
        """See :meth:`ResponseCache.get`."""
        return self.local.get(key)

    async def put(self, key: str, response: CachedResponse, ttl: float | None = None) -> bool:
        """See :meth:`ResponseCache.put`."""
        return self.local.put(key, response, ttl)

    async def stats(self) -> dict:
        """See :meth:`ResponseCache.stats`."""
        return self.local.stats()

    async def clear(self) -> None:
        """See :meth:`ResponseCache.clear`."""
        self.local.clear()

    async def aclose(self) -> None:
        """See :meth:`ResponseCache.close`."""
        self.local.close()
