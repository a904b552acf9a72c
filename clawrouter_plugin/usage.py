"""The usage log (one JSON line per request, one file per UTC day) and its aggregation.

Lines gather for a moment, then a background thread writes them with a single ``os.write``
on an ``O_APPEND`` descriptor kept open for the day's file, so concurrent writers never
interleave inside a line. If a crash left a partial last line, the next append starts on a fresh line, and
readers skip anything that does not parse. A file deleted or replaced behind the
writer's back (``DELETE /stats`` from another process) is noticed and opened afresh. Field names in the file
are camelCase like the reference's log, so its old logs aggregate too (for those, the saving
is recomputed from ``baselineCost - cost``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from itertools import groupby
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

import orjson

from .errors import BadRequest
from .paths import ensure_private_dir
from .state.writer import BackgroundWriter

log = logging.getLogger(__name__)

TIERS = ("SIMPLE", "MEDIUM", "COMPLEX", "REASONING")
WRITE_DELAY_SECONDS = 0.25  # appended lines gather this long before one write
MAX_DAYS = 365
MAX_NUMBER = 1e12  # larger costs (USD) or latencies (ms) in a line are damage, not usage
MAX_LINE_BYTES = 1 << 20  # a longer line is read in pieces, which do not parse: skipped
_PREFIX, _SUFFIX = "usage-", ".jsonl"
_FIELDS = {  # dataclass field -> JSON key
    "timestamp": "timestamp",
    "session": "session",
    "requested_model": "requestedModel",
    "model": "model",
    "tier": "tier",
    "input_tokens": "inputTokens",
    "output_tokens": "outputTokens",
    "cost": "cost",
    "baseline_cost": "baselineCost",
    "savings": "savings",
    "latency_ms": "latencyMs",
    "cache_hit": "cacheHit",
    "fallbacks": "fallbacks",
    "profile": "profile",
    "kind": "kind",
}
_KEYS = tuple(_FIELDS.values())
_values = attrgetter(*_FIELDS)  # record -> its field values, in _KEYS order
SPENT_STATUSES = ("settled", "unconfirmed")  # payments that count as money spent
_PAYMENT_STATUSES = frozenset((*SPENT_STATUSES, "refused"))


class _UtcClock:
    """ISO-8601 UTC timestamps; the date and time of day are formatted once per second."""

    __slots__ = ("_second", "_prefix")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        """The current time with milliseconds, e.g. 2026-01-15T10:30:00.123Z."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{int((now - second) * 1000):03d}Z"


utc_now_iso = _UtcClock().now  # called for every usage record


def iso_timestamp(moment: float) -> str:
    """``moment`` (seconds since the epoch) in the usage log's UTC format."""
    second = int(moment)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            + f".{int((moment - second) * 1000):03d}Z")


@dataclass(slots=True)
class UsageRecord:
    """One served request, or one signed payment that did not buy the answer. ``cost`` is
    USD spent (``paid`` unless the payment was refused); ``savings`` is ``baseline_cost -
    cost`` (negative when the request cost more than the baseline model would have).
    ``paid`` is the amount signed, ``payment`` what became of it (``settled``,
    ``unconfirmed`` or ``refused``; None when nothing was signed), ``transaction`` the
    settlement's hash when the receipt gave one and ``nonce`` the payment's EIP-3009 nonce
    (its identity, shared with the payment journal and the chain)."""

    timestamp: str
    session: str
    requested_model: str
    model: str
    tier: str
    input_tokens: int
    output_tokens: int
    cost: float
    baseline_cost: float
    savings: float
    latency_ms: float
    cache_hit: bool
    fallbacks: int
    profile: str | None = None
    kind: str = "chat"
    path: str | None = None
    paid: float = 0.0
    payment: str | None = None
    transaction: str | None = None
    nonce: str | None = None

    def to_bytes(self) -> bytes:
        """The record as one line of the log (camelCase keys, UTF-8 JSON); ValueError for
        NaN or infinity. Payment fields that are not set are left out."""
        fields = dict(zip(_KEYS, _values(self)))
        if self.path is not None:
            fields["path"] = self.path
        if self.payment is not None:
            fields["paid"], fields["payment"] = self.paid, self.payment
            if self.transaction is not None:
                fields["transaction"] = self.transaction
            if self.nonce is not None:
                fields["nonce"] = self.nonce
        for value in (self.cost, self.baseline_cost, self.savings, self.latency_ms, self.paid):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"usage record with a non-finite number: {value!r}")
        try:
            return orjson.dumps(fields)
        except TypeError:  # e.g. a lone surrogate from a client, which UTF-8 cannot hold:
            text = json.dumps(fields, ensure_ascii=False, allow_nan=False)
            return text.encode("utf-8", "replace")  # it becomes "?", which readers accept


def _utc_date(timestamp: str) -> date:
    if len(timestamp) > 10 and timestamp[10] == "T" and timestamp.endswith(("Z", "+00:00")):
        return date.fromisoformat(timestamp[:10])  # already UTC: the common case, no parsing
    moment = datetime.fromisoformat(timestamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date()


def _number(value: Any) -> float:
    """A JSON number from 0 to MAX_NUMBER as float; anything else counts as a bad line (a
    negative cost or a huge one would make the totals meaningless, or infinite)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        0 <= value <= MAX_NUMBER
    ):
        raise ValueError("not a usable number")
    return float(value)


class UsageLog:
    """Usage files ``usage-YYYY-MM-DD.jsonl`` in one directory (``data_dir / "logs"``)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        # lines gather for up to WRITE_DELAY_SECONDS, then one background thread writes them
        # in order, off the request's path (aggregate() and flush() write them at once)
        self._writer = BackgroundWriter("clawrouter-usage")
        self._lock = threading.Lock()
        self._lines: list[tuple[Path, bytes, str | None]] = []  # (file, line, payment nonce)
        # told the payment nonces of lines once they are in their file (the payment journal)
        self.on_written: Callable[[list[str]], None] | None = None
        self._paths: dict[str, Path] = {}  # "YYYY-MM-DD" -> file
        self._open_path: Path | None = None  # the file the writer thread holds open
        self._fd = -1

    def _file(self, day: date) -> Path:
        return self.directory / f"{_PREFIX}{day.isoformat()}{_SUFFIX}"

    def append(self, record: UsageRecord) -> None:
        """Queue one line for the file of the record's UTC date. A record that cannot be
        serialised raises ValueError here; disk errors are logged, never raised (the request
        was already served). Readers of this log see every line appended before them."""
        line = record.to_bytes() + b"\n"
        day = record.timestamp[:10]
        path = self._paths.get(day)
        if path is None:
            path = self._file(_utc_date(record.timestamp))
            if path.name[len(_PREFIX):-len(_SUFFIX)] == day:  # only UTC stamps map 1:1 to days
                self._paths = {day: path}
        with self._lock:
            self._lines.append((path, line, record.nonce))
        self._writer.schedule(self._write_lines, WRITE_DELAY_SECONDS)

    def flush(self) -> None:
        """Wait until every appended line is in its file."""
        self._writer.flush()

    def close(self) -> None:
        """Write what is queued, close the file and stop the writer thread."""
        self._writer.submit(self._close_file)
        self._writer.close()
        self._close_file()  # in case an append ran in this thread after an earlier close

    def _write_lines(self) -> None:
        """Writer thread: the gathered lines, one ``os.write`` per run of lines for a file."""
        with self._lock:
            lines, self._lines = self._lines, []
        written: list[str] = []
        for path, group in groupby(lines, key=itemgetter(0)):
            entries = list(group)
            if self._write(path, b"".join(line for _, line, _ in entries)):
                written.extend(nonce for _, _, nonce in entries if nonce is not None)
        if written and self.on_written is not None:
            self.on_written(written)

    def contains(self, needle: bytes, days: Iterable[date]) -> bool:
        """Whether the file of any of ``days`` holds ``needle`` (queued lines included)."""
        self.flush()
        for day in days:
            try:
                with open(self._file(day), "rb") as handle:
                    if needle in handle.read():
                        return True
            except OSError:
                continue
        return False

    def _write(self, path: Path, data: bytes) -> bool:
        """One ``os.write`` of whole lines, under an advisory lock shared by our writers so
        the last-byte check sees no write half done. False when they were not written."""
        try:
            if path != self._open_path or not self._still_linked(path):
                self._close_file()
                self._fd = self._open(path)
                self._open_path = path
            fd = self._fd
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # a crash left a partial line: do not extend it
                written = os.write(fd, data)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            if written != len(data):
                log.warning("usage log: short write to %s (%d/%d)", path, written, len(data))
                return False
        except OSError as exc:
            self._close_file()
            log.warning("usage log: cannot write %s: %s", path, exc)
            return False
        return True

    def _still_linked(self, path: Path) -> bool:
        """False when the open file was deleted or replaced (e.g. stats cleared elsewhere)."""
        try:
            return os.stat(path).st_ino == os.fstat(self._fd).st_ino
        except OSError:
            return False

    def _close_file(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._open_path = -1, None

    def _open(self, path: Path) -> int:
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT  # read: to check the last byte
        try:
            return os.open(path, flags, 0o600)
        except FileNotFoundError:
            ensure_private_dir(self.directory)
            return os.open(path, flags, 0o600)

    def aggregate(self, days: int = 7, now: datetime | None = None) -> dict:
        """Statistics over today (UTC) and the ``days - 1`` calendar days before it."""
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
            raise BadRequest(f"days must be a whole number from 1 to {MAX_DAYS}, got {days!r}")
        self.flush()
        today = (now or datetime.now(UTC)).astimezone(UTC).date()
        window = [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]
        totals = _Totals()
        for day in window:
            totals.add_file(day, self._file(day))
        return totals.result(days)

    def clear(self) -> int:
        """Delete every ``usage-*.jsonl`` file; returns how many were deleted."""
        self._writer.submit(self._close_file)
        self.flush()
        if not self.directory.is_dir():
            return 0
        deleted = 0
        for path in self.directory.glob(f"{_PREFIX}*{_SUFFIX}"):
            try:
                path.unlink()
                deleted += 1
            except FileNotFoundError:
                continue
            except OSError as exc:  # e.g. a directory of that name: not a log of ours
                log.warning("usage log: cannot delete %s: %s", path, exc.strerror or exc)
        return deleted


class _Totals:
    """Running sums for :meth:`UsageLog.aggregate`."""

    def __init__(self) -> None:
        self.requests = self.cache_hits = 0
        self.cost = self.baseline = self.saved = self.latency = 0.0
        self.tiers: dict[str, list] = {tier: [0, 0.0] for tier in TIERS}
        self.models: dict[str, list] = {}
        self.kinds: dict[str, list] = {}
        self.payments: dict[str, list] = {"settled": [0, 0.0], "unconfirmed": [0, 0.0],
                                          "refused": [0, 0.0]}
        self.daily: list[dict] = []

    def add_file(self, day: date, path: Path) -> None:
        """Add one day's file, read a line at a time (memory stays small however big it is)."""
        requests, cost, saved = 0, 0.0, 0.0
        try:
            with open(path, "rb") as handle:
                for line in iter(partial(handle.readline, MAX_LINE_BYTES), b""):
                    entry = _parse(line)
                    if entry is None:
                        continue
                    model, tier, entry_cost, baseline, latency, hit, kind, payment, paid = entry
                    requests += 1
                    cost += entry_cost
                    saved += baseline - entry_cost  # negative when it cost more than the baseline
                    self.baseline += baseline
                    self.latency += latency
                    self.cache_hits += hit
                    tier_sums = self.tiers.setdefault(tier, [0, 0.0])
                    tier_sums[0] += 1
                    tier_sums[1] += entry_cost
                    model_sums = self.models.setdefault(model, [0, 0.0])
                    model_sums[0] += 1
                    model_sums[1] += entry_cost
                    kind_sums = self.kinds.setdefault(kind, [0, 0.0])
                    kind_sums[0] += 1
                    kind_sums[1] += entry_cost
                    if payment is not None:
                        payment_sums = self.payments[payment]
                        payment_sums[0] += 1
                        payment_sums[1] += paid
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as exc:  # the lines read so far still count
            log.warning("usage log: cannot read %s: %s", path, exc)
        if requests:
            self.requests += requests
            self.cost += cost
            self.saved += saved
            self.daily.append(
                {
                    "date": day.isoformat(),
                    "requests": requests,
                    "cost": _usd(cost),
                    "saved": _usd(saved),
                }
            )

    def result(self, days: int) -> dict:
        n = self.requests
        by_tier = {
            tier: {"count": c, "cost": _usd(cost), "percentage": _pct(c, n)}
            for tier, (c, cost) in self.tiers.items()
        }
        models = sorted(self.models.items(), key=lambda item: (-item[1][0], item[0]))
        return {
            "period": "today" if days == 1 else f"last {days} days",
            "days": days,
            "totalRequests": n,
            "totalCost": _usd(self.cost),
            "totalBaselineCost": _usd(self.baseline),
            "totalSavings": _usd(self.saved),
            "savingsPercentage": _pct(self.saved, self.baseline),
            "avgLatencyMs": round(self.latency / n, 1) if n else 0.0,
            "avgCostPerRequest": _usd(self.cost / n) if n else 0.0,
            "cacheHits": self.cache_hits,
            "byTier": by_tier,
            "byModel": {m: {"count": c, "cost": _usd(cost)} for m, (c, cost) in models},
            "byKind": {k: {"count": c, "cost": _usd(cost)}
                       for k, (c, cost) in sorted(self.kinds.items())},
            "unconfirmedCost": _usd(self.payments["unconfirmed"][1]),
            "payments": {status: {"count": c, "amount": _usd(paid)}
                         for status, (c, paid) in self.payments.items()},
            "dailyBreakdown": self.daily,
        }


_Entry = tuple[str, str, float, float, float, bool, str, "str | None", float]


def _parse(line: bytes) -> _Entry | None:
    """(model, tier, cost, baseline, latency, cache hit, kind, payment status, paid) of a
    log line, or None if unusable. A payment's spend is ``paid`` when its status is settled
    or unconfirmed and 0 when refused, whatever ``cost`` says."""
    try:
        entry = orjson.loads(line)
        model, tier = entry["model"], entry["tier"]
        if not isinstance(model, str) or not isinstance(tier, str):
            return None
        cost = _number(entry["cost"])
        baseline = _number(entry.get("baselineCost", cost))
        latency = _number(entry.get("latencyMs", 0))
        kind = entry.get("kind")
        payment = entry.get("payment")
        paid = 0.0
        if payment is not None:
            if payment not in _PAYMENT_STATUSES:
                return None
            paid = _number(entry["paid"])
            cost = paid if payment in SPENT_STATUSES else 0.0
        return (model, tier, cost, baseline, latency, entry.get("cacheHit") is True,
                kind if isinstance(kind, str) else "chat", payment, paid)
    except (ValueError, KeyError, TypeError):
        return None


def _usd(value: float) -> float:
    return round(value, 6)


def _pct(part: float, whole: float) -> float:
    return round(part / whole * 100, 1) if whole else 0.0
