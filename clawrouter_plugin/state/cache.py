"""The response cache: identical chat requests are answered from disk instead of paying again.

Keys come from :func:`~clawrouter_plugin.state.cache_key.cache_key`. Entries live in a :mod:`diskcache` directory under the data dir, so they survive restarts. The
value is the raw response body; status, headers and model travel in the entry's tag as JSON.

The entry-count limit and least-recently-used order are kept by an in-memory index (key ->
expiry), rebuilt from disk at start-up in the order entries were last stored. A hit refreshes
an entry's recency for the rest of the process's life; recency from hits is not written to disk
(that would turn every hit into a write). The hit, miss and eviction counters are per process.
The directory is meant for one proxy process at a time.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sqlite3
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diskcache

from ..errors import ConfigError
from ..paths import ensure_private_dir
from .writer import BackgroundWriter

log = logging.getLogger(__name__)
_DISK_ERRORS = (OSError, sqlite3.Error, diskcache.Timeout)

# Top-level fields that do not change the answer.
@dataclass(frozen=True)
class CachedResponse:
    """A stored upstream reply."""

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
        # Disk writes happen on one background thread (write-behind), so a store costs the
        # request microseconds; entries not yet on disk are answered from ``_pending``.
        self._pending: dict[str, CachedResponse] = {}
        self._writer = BackgroundWriter("clawrouter-cache")
        self._tempdir: str | None = None
        self._disk: diskcache.Cache | None = None
        if not enabled:
            return
        if directory is None:
            self._tempdir = tempfile.mkdtemp(prefix="clawrouter-cache-")
            directory = Path(self._tempdir)
        try:
            ensure_private_dir(Path(directory))
            self._disk = diskcache.Cache(
                str(directory), eviction_policy="none", size_limit=2**40, cull_limit=0
            )
            self._load_index()
        except _DISK_ERRORS as exc:
            raise ConfigError(f"cannot open the response cache in {directory}: {exc}") from None

    def _load_index(self) -> None:
        """Rebuild the index from disk, oldest stored first, dropping expired or foreign rows."""
        disk = self._disk
        assert disk is not None
        disk.expire()
        found = []
        for key in list(disk.iterkeys()):
            value, expires_at, tag = disk.get(key, read=True, expire_time=True, tag=True)
            if hasattr(value, "close"):
                value.close()
            meta = _decode_meta(tag) if value is not None else None
            if not isinstance(key, str) or meta is None or expires_at is None:
                disk.delete(key)
                continue
            found.append((meta["used"], key, expires_at))
        for _, key, expires_at in sorted(found):
            self._index[key] = expires_at
        self._soonest_expiry = min(self._index.values(), default=math.inf)
        while len(self._index) > self._max_size:
            self._drop(next(iter(self._index)))

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
            pending = self._pending.get(key)
            if pending is not None:
                self._index.move_to_end(key)
                self._hits += 1
                return pending
            try:
                value, tag = self._disk.get(key, tag=True)
            except _DISK_ERRORS as exc:
                log.warning("response cache: read failed, treating as a miss: %s", exc)
                value = tag = None
            meta = _decode_meta(tag) if value is not None else None
            if meta is None:  # unreadable, or removed behind our back
                self._index.pop(key, None)
                self._misses += 1
                return None
            self._index.move_to_end(key)
            self._hits += 1
        return CachedResponse(
            status=meta["status"],
            headers=meta["headers"],
            body=bytes(value),
            model=meta["model"],
            stored_at=meta["stored_at"],
        )

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
        with self._lock:
            if self._disk is None:
                return False
            now = time.time()
            evicted = [] if key in self._index else self._make_room(now)
            self._index[key] = now + ttl
            self._index.move_to_end(key)
            self._soonest_expiry = min(self._soonest_expiry, now + ttl)
            self._pending[key] = response
        meta = {
            "status": response.status,
            "headers": dict(response.headers),
            "model": response.model,
            "stored_at": response.stored_at,
            "used": now,
        }
        self._writer.submit(self._persist, key, response, ttl, json.dumps(meta), evicted)
        return True

    def _persist(self, key: str, response: CachedResponse, ttl: float, tag: str,
                 evicted: list[str]) -> None:
        """Writer thread: evictions and the store in one disk commit."""
        disk = self._disk
        try:
            if disk is not None:
                with disk.transact():
                    for old in evicted:
                        disk.delete(old)
                    disk.set(key, bytes(response.body), expire=ttl, tag=tag)
        except _DISK_ERRORS as exc:  # the cache is an optimisation: never fail the request
            log.warning("response cache: store failed: %s", exc)
            with self._lock:
                if self._pending.get(key) is response:
                    self._index.pop(key, None)
        finally:
            with self._lock:
                if self._pending.get(key) is response:
                    del self._pending[key]

    def flush(self) -> None:
        """Wait until every store so far is on disk."""
        self._writer.flush()

    def _make_room(self, now: float) -> list[str]:
        """Free a slot in memory (expired entries first, then the least recently used);
        returns the keys the writer must delete from disk."""
        dropped: list[str] = []
        if len(self._index) >= self._max_size and self._soonest_expiry <= now:
            dropped = [key for key, expires_at in self._index.items() if expires_at <= now]
            self._soonest_expiry = math.inf
        for key in dropped:
            self._index.pop(key, None)
            self._pending.pop(key, None)
        if dropped:
            self._soonest_expiry = min(self._index.values(), default=math.inf)
        while len(self._index) >= self._max_size:
            key = next(iter(self._index))
            self._index.pop(key)
            self._pending.pop(key, None)
            dropped.append(key)
            self._evictions += 1
        return dropped

    def _forget(self, key: str) -> None:
        """Drop an expired entry now in memory, later on disk."""
        self._index.pop(key, None)
        self._pending.pop(key, None)
        if self._disk is not None:
            self._writer.submit(self._disk.delete, key)

    def _drop(self, key: str) -> None:
        self._index.pop(key, None)
        if self._disk is not None:
            self._disk.delete(key)

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
            self._pending.clear()
            self._hits = self._misses = self._evictions = 0

    def close(self) -> None:
        """Close the disk cache (a private temp directory is deleted). Safe to call twice."""
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


def _decode_meta(tag: Any) -> dict | None:
    """The metadata stored in an entry's tag, or None if it is not ours."""
    if not isinstance(tag, str):
        return None
    try:
        meta = json.loads(tag)
    except ValueError:
        return None
    if not isinstance(meta, dict) or not {"status", "headers", "model", "stored_at", "used"} <= set(
        meta
    ):
        return None
    return meta
