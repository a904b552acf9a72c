"""The payment journal: every signed payment is on disk before its signature leaves.

One append-only file per running proxy, ``payments.journal`` in the data directory (a
second proxy on the same directory takes ``payments-1.journal``, and so on: each is held
with an exclusive ``flock`` on its ``.lock`` file while its proxy runs), one JSON line per
event:

- ``{"nonce", "at", "usd", "session", "kind", "model", "path"}`` when a payment is signed,
  written with one ``os.write`` on an ``O_APPEND`` descriptor *before* the request carrying
  it is sent. Once ``os.write`` returns the kernel holds the bytes, so a crash or a SIGKILL
  of the process at any later moment cannot lose them (a power cut can: there is no fsync,
  which costs ~200 µs a payment here and milliseconds on slower disks);
- ``{"done": nonce}`` once the usage record carrying that nonce is in the usage log (the
  usage log's writer thread reports each line it wrote).

At start-up :meth:`PaymentJournal.replay` reads its own journal and those no running proxy
holds, and looks at every payment with no ``done``: if no usage file holds its nonce, it
appends an ``unconfirmed`` usage record for it; then it starts a fresh, empty journal (and
deletes the others it read). The usage log, not the journal, says whether a payment was recorded, so
a crash anywhere in between (even during a replay) never records a payment twice. While
running, the file is rewritten with only the open payments whenever it grows past
:data:`COMPACT_BYTES`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from ..errors import PaymentRefused
from .response import UNCONFIRMED, PaymentRecord

if TYPE_CHECKING:
    from ..usage import UsageLog
    from .tab import PaymentTab

log = logging.getLogger(__name__)
COMPACT_BYTES = 256 * 1024  # past this size the running journal keeps only open payments
MAX_JOURNALS = 64  # proxies running at once on one data directory
_PATTERN = "payments*.journal"


class PaymentJournal:
    """The journal file of one running proxy (see the module docstring)."""

    def __init__(self, path: Path, lock_fd: int = -1) -> None:
        self.path = Path(path)
        self._lock_fd = lock_fd  # holds the flock on ``<path>.lock`` (-1: not locked)
        self._lock = threading.Lock()  # the event loop appends, the usage writer completes
        self._open: dict[str, bytes] = {}  # nonce -> its line, for payments not yet done
        self._fd = -1
        self._size = 0

    def begin(self, record: PaymentRecord, tab: PaymentTab | None) -> None:
        """Write the signed payment ``record`` before it is sent; :class:`PaymentRefused`
        (nothing may be sent) when the journal cannot be written."""
        line = orjson.dumps({
            "nonce": record.nonce, "at": round(time.time(), 3), "usd": record.amount_usd,
            "session": tab.session if tab else "", "kind": tab.kind if tab else "",
            "model": tab.model if tab else "", "path": tab.path if tab else "",
        }) + b"\n"
        with self._lock:
            try:
                self._append(line)
            except OSError as exc:
                raise PaymentRefused("payment refused, nothing was sent: the payment journal "
                                     f"cannot be written ({exc.strerror or exc})") from None
            self._open[record.nonce] = line

    def done(self, nonces: Iterable[str]) -> None:
        """The usage records carrying ``nonces`` are written (called by the usage writer)."""
        with self._lock:
            finished = [nonce for nonce in nonces if self._open.pop(nonce, None) is not None]
            if not finished:
                return
            try:
                if self._size > COMPACT_BYTES:
                    self._rewrite(b"".join(self._open.values()))
                else:
                    self._append(b"".join(orjson.dumps({"done": n}) + b"\n" for n in finished))
            except OSError as exc:  # a replay finds these in the usage log: nothing is lost
                log.warning("payment journal: cannot mark payments done: %s", exc)

    def open_count(self) -> int:
        """How many payments have no usage record yet."""
        return len(self._open)

    def close(self) -> None:
        """Close the file and let another proxy take this journal."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
            self._fd = -1
            if self._lock_fd >= 0:
                os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    @classmethod
    def open(cls, directory: Path) -> PaymentJournal:
        """The first journal of ``directory`` that no running proxy holds."""
        for index in range(MAX_JOURNALS):
            name = "payments.journal" if index == 0 else f"payments-{index}.journal"
            lock_fd = _try_lock(directory / (name + ".lock"))
            if lock_fd >= 0:
                return cls(directory / name, lock_fd)
        raise OSError(f"more than {MAX_JOURNALS} clawrouter proxies use {directory}")

    def replay(self, usage: UsageLog) -> int:
        """Record every journaled payment the usage log lacks as ``unconfirmed``, exactly
        once, then empty the journal. Returns how many records were added."""
        from ..usage import UsageRecord, iso_timestamp

        orphans = self._orphans()  # (path, lock fd) of journals whose proxy has stopped
        pending = _open_entries(self.path)
        for path, _ in orphans:
            pending.update(_open_entries(path))
        added = 0
        for nonce, entry in pending.items():
            at = entry.get("at")
            moment = float(at) if isinstance(at, (int, float)) else time.time()
            if usage.contains(nonce.encode(), _days(moment)):
                continue
            usd = entry.get("usd")
            paid = float(usd) if isinstance(usd, (int, float)) and usd >= 0 else 0.0
            model = _text(entry.get("model")) or "unknown"
            usage.append(UsageRecord(
                timestamp=iso_timestamp(moment), session=_text(entry.get("session")),
                requested_model=model, model=model, tier="UNKNOWN", input_tokens=0,
                output_tokens=0, cost=paid, baseline_cost=0.0, savings=0.0, latency_ms=0.0,
                cache_hit=False, fallbacks=0, kind=_text(entry.get("kind")) or "chat",
                path=_text(entry.get("path")) or None, paid=paid, payment=UNCONFIRMED,
                nonce=nonce))
            added += 1
        usage.flush()  # the records are in their files before the journal forgets them
        with self._lock:
            self._open.clear()
            self._rewrite(b"")
        for path, lock_fd in orphans:
            for stale in (path, path.with_name(path.name + ".lock")):
                stale.unlink(missing_ok=True)
            os.close(lock_fd)
        if added:
            log.warning("payment journal: %d payment(s) signed before the last stop had no "
                        "usage record; recorded as unconfirmed", added)
        return added

    def _orphans(self) -> list[tuple[Path, int]]:
        """Other journals of this directory that no running proxy holds, locked for us."""
        found = []
        for path in sorted(self.path.parent.glob(_PATTERN)):
            if path != self.path:
                lock_fd = _try_lock(path.with_name(path.name + ".lock"))
                if lock_fd >= 0:
                    found.append((path, lock_fd))
        return found

    def _append(self, data: bytes) -> None:
        if self._fd < 0:
            self._fd = _open_append(self.path)
            self._size = os.fstat(self._fd).st_size
        written = os.write(self._fd, data)
        self._size += written
        if written != len(data):
            raise OSError(f"short write ({written} of {len(data)} bytes)")

    def _rewrite(self, data: bytes) -> None:
        """Replace the file with ``data`` (written to a temporary file, then renamed)."""
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(temporary, self.path)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = _open_append(self.path)
        self._size = len(data)


def _try_lock(path: Path) -> int:
    """A descriptor holding an exclusive flock on ``path``, or -1 if another holds it.

    Also -1 when the file was deleted between our open and our lock (a proxy that replayed
    it as an orphan removes it): that lock would guard nothing, and another proxy could
    create the file again and take the same journal.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held, current = os.fstat(fd), os.stat(path)
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return -1
    if (held.st_dev, held.st_ino) != (current.st_dev, current.st_ino):
        os.close(fd)
        return -1
    return fd


def _open_append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


def _open_entries(path: Path) -> dict[str, dict]:
    """nonce -> entry for every signed payment in the file with no ``done`` line."""
    entries: dict[str, dict] = {}
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return entries
    for line in data.splitlines():
        try:
            entry = orjson.loads(line)
        except ValueError:  # a line cut short by a crash: it was never completed either
            continue
        if not isinstance(entry, dict):
            continue
        done, nonce = entry.get("done"), entry.get("nonce")
        if isinstance(done, str):
            entries.pop(done, None)
        elif isinstance(nonce, str) and nonce:
            entries[nonce] = entry
    return entries


def _days(moment: float) -> list:
    """The UTC days whose usage file may hold the record of a payment signed at ``moment``."""
    day = datetime.fromtimestamp(moment, UTC).date()
    return [day, day + timedelta(days=1)]


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
