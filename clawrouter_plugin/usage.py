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
    (its identity, shared with the payment journal and the chain). ``key`` is the public id
    of the API key that made the request, on a shared proxy."""

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
    key: str | None = None  # the id of the API key that made the request (a shared proxy)

    def to_bytes(self) -> bytes:
        """The record as one line of the log (camelCase keys, UTF-8 JSON); ValueError for
        NaN or infinity. Payment fields that are not set are left out."""
        fields = dict(zip(_KEYS, _values(self)))
        if self.path is not None:
            fields["path"] = self.path
        if self.key is not None:
            fields["key"] = self.key
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


def check_days(days: int) -> int:
    """``days`` if it is a whole number from 1 to MAX_DAYS; BadRequest otherwise."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise BadRequest(f"days must be a whole number from 1 to {MAX_DAYS}, got {days!r}")
    return days


def day_window(days: int, now: datetime | None = None) -> list[date]:
    """Today (UTC) and the ``days - 1`` calendar days before it, oldest first."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


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
        # told every record appended, on the appending thread (team usage: the shared totals)
        self.mirror: Callable[[UsageRecord], None] | None = None
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
        if self.mirror is not None:
            self.mirror(record)

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
        check_days(days)
        self.flush()
        totals = Totals()
        for day in day_window(days, now):
            totals.add_day(day, DaySums.of_file(self._file(day)))
        return totals.result(days)

    def today_by_key(self) -> dict[str, dict]:
        """Requests and cost per API key id today (UTC), from this log."""
        return self.aggregate(1)["byKey"]

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


_GROUPS = ("tier", "model", "kind", "payment", "key")  # what sums are kept per name of


class DaySums:
    """The sums of one UTC day's records: totals, and (count, amount) per tier, model, kind,
    payment status and API key. The amount is the cost, except for payment statuses, where it
    is the amount signed. They add up the same from log lines (:meth:`of_file`), from records
    (:meth:`add_record`) and from the shared totals in Redis (:meth:`fields`, :meth:`of_fields`)."""

    __slots__ = ("requests", "cost", "baseline", "latency", "cache_hits", "groups")

    def __init__(self) -> None:
        self.requests = self.cache_hits = 0
        self.cost = self.baseline = self.latency = 0.0
        self.groups: dict[str, dict[str, list]] = {group: {} for group in _GROUPS}

    @classmethod
    def of_file(cls, path: Path) -> "DaySums":
        """The sums of a day's log file, read a line at a time (memory stays small however
        big it is); lines that do not parse are skipped, a missing file sums to nothing."""
        sums = cls()
        try:
            with open(path, "rb") as handle:
                for line in iter(partial(handle.readline, MAX_LINE_BYTES), b""):
                    entry = _parse(line)
                    if entry is not None:
                        sums.add(entry)
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as exc:  # the lines read so far still count
            log.warning("usage log: cannot read %s: %s", path, exc)
        return sums

    def add(self, entry: "_Entry") -> None:
        """Count one parsed record."""
        model, tier, cost, baseline, latency, hit, kind, payment, paid, key = entry
        self.requests += 1
        self.cost += cost
        self.baseline += baseline
        self.latency += latency
        self.cache_hits += hit
        groups = self.groups
        for group, name, amount in (("tier", tier, cost), ("model", model, cost),
                                    ("kind", kind, cost), ("payment", payment, paid),
                                    ("key", key, cost)):
            if name is not None:
                sums = groups[group].get(name)
                if sums is None:
                    groups[group][name] = [1, amount]
                else:
                    sums[0] += 1
                    sums[1] += amount

    def add_record(self, record: UsageRecord) -> None:
        """Count a record as :meth:`of_file` would count its line."""
        self.add(entry_of(record))

    def fields(self) -> dict[str, float]:
        """The sums as flat hash fields (``n``, ``cost``, ``tier|SIMPLE|n``, ...)."""
        out: dict[str, float] = {"n": self.requests, "cost": self.cost, "base": self.baseline,
                                 "lat": self.latency, "hits": self.cache_hits}
        for group, names in self.groups.items():
            for name, (count, amount) in names.items():
                out[f"{group}|{name}|n"] = count
                out[f"{group}|{name}|a"] = amount
        return out

    @classmethod
    def of_fields(cls, fields: dict) -> "DaySums":
        """The sums back from :meth:`fields` (keys and values as bytes or str); fields that
        do not fit are ignored."""
        sums = cls()
        for raw_field, raw_value in fields.items():
            field_name = raw_field.decode() if isinstance(raw_field, bytes) else raw_field
            try:
                value = float(raw_value)
            except ValueError:
                continue
            if field_name == "n":
                sums.requests = round(value)
            elif field_name == "hits":
                sums.cache_hits = round(value)
            elif field_name in ("cost", "base", "lat"):
                setattr(sums, {"cost": "cost", "base": "baseline", "lat": "latency"}[field_name],
                        value)
            else:
                group, _, rest = field_name.partition("|")
                name, _, part = rest.rpartition("|")
                if group in sums.groups and part in ("n", "a"):
                    pair = sums.groups[group].setdefault(name, [0, 0.0])
                    pair[part == "a"] = round(value) if part == "n" else value
        return sums


class Totals:
    """Running sums over several days, and the ``/stats`` answer they make."""

    def __init__(self) -> None:
        self.requests = self.cache_hits = 0
        self.cost = self.baseline = self.saved = self.latency = 0.0
        self.groups: dict[str, dict[str, list]] = {group: {} for group in _GROUPS}
        for tier in TIERS:
            self.groups["tier"][tier] = [0, 0.0]
        for status in ("settled", "unconfirmed", "refused"):
            self.groups["payment"][status] = [0, 0.0]
        self.daily: list[dict] = []

    def add_day(self, day: date, sums: DaySums) -> None:
        """Add one day's sums (a day without requests adds nothing)."""
        if not sums.requests:
            return
        saved = sums.baseline - sums.cost  # negative when it cost more than the baseline
        self.requests += sums.requests
        self.cost += sums.cost
        self.saved += saved
        self.baseline += sums.baseline
        self.latency += sums.latency
        self.cache_hits += sums.cache_hits
        for group, names in sums.groups.items():
            mine = self.groups[group]
            for name, (count, amount) in names.items():
                pair = mine.setdefault(name, [0, 0.0])
                pair[0] += count
                pair[1] += amount
        self.daily.append({"date": day.isoformat(), "requests": sums.requests,
                           "cost": _usd(sums.cost), "saved": _usd(saved)})

    def result(self, days: int) -> dict:
        n = self.requests
        groups = self.groups
        by_tier = {
            tier: {"count": c, "cost": _usd(cost), "percentage": _pct(c, n)}
            for tier, (c, cost) in groups["tier"].items()
        }
        models = sorted(groups["model"].items(), key=lambda item: (-item[1][0], item[0]))
        keys = sorted(groups["key"].items(), key=lambda item: (-item[1][1], item[0]))
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
                       for k, (c, cost) in sorted(groups["kind"].items())},
            "byKey": {k: {"requests": c, "cost": _usd(cost)} for k, (c, cost) in keys},
            "unconfirmedCost": _usd(groups["payment"]["unconfirmed"][1]),
            "payments": {status: {"count": c, "amount": _usd(paid)}
                         for status, (c, paid) in groups["payment"].items()},
            "dailyBreakdown": self.daily,
        }


_Entry = tuple[str, str, float, float, float, bool, str, "str | None", float, "str | None"]


def entry_of(record: UsageRecord) -> _Entry:
    """What :func:`_parse` makes of the record's line, without writing and parsing it."""
    cost, paid = record.cost, 0.0
    if record.payment is not None:
        paid = record.paid
        cost = paid if record.payment in SPENT_STATUSES else 0.0
    return (record.model, record.tier, cost, record.baseline_cost, record.latency_ms,
            record.cache_hit, record.kind, record.payment, paid, record.key)


def _parse(line: bytes) -> _Entry | None:
    """(model, tier, cost, baseline, latency, cache hit, kind, payment status, paid, key) of
    a log line, or None if unusable. A payment's spend is ``paid`` when its status is settled
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
        key = entry.get("key")
        return (model, tier, cost, baseline, latency, entry.get("cacheHit") is True,
                kind if isinstance(kind, str) else "chat", payment, paid,
                key if isinstance(key, str) else None)
    except (ValueError, KeyError, TypeError):
        return None


def _usd(value: float) -> float:
    return round(value, 6)


def _pct(part: float, whole: float) -> float:
    return round(part / whole * 100, 1) if whole else 0.0
