"""The usage log (one JSON line per request, one file per UTC day) and its aggregation.

Lines are written with a single ``os.write`` on an ``O_APPEND`` descriptor, so concurrent
writers never interleave inside a line. If a crash left a partial last line, the next append
starts on a fresh line, and readers skip anything that does not parse. Field names in the file
are camelCase like the reference's log, so its old logs aggregate too (for those, the saving
is recomputed from ``baselineCost - cost``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from .errors import BadRequest
from .paths import ensure_private_dir
from .state.writer import BackgroundWriter

log = logging.getLogger(__name__)

TIERS = ("SIMPLE", "MEDIUM", "COMPLEX", "REASONING")
MAX_DAYS = 365
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


def utc_now_iso() -> str:
    """The current time as an ISO-8601 UTC timestamp with milliseconds, e.g. ...T10:30:00.123Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class UsageRecord:
    """One served request. ``cost`` is USD actually paid, ``savings`` USD saved vs the baseline."""

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

    def to_json(self) -> str:
        return json.dumps(
            {key: getattr(self, name) for name, key in _FIELDS.items()},
            ensure_ascii=False, allow_nan=False
        )


def _utc_date(timestamp: str) -> date:
    moment = datetime.fromisoformat(timestamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date()


def _number(value: Any) -> float:
    """A JSON number as float; anything else counts as a bad line."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError("not a number")
    return float(value)


class UsageLog:
    """Usage files ``usage-YYYY-MM-DD.jsonl`` in one directory (``data_dir / "logs"``)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        # lines are written by one background thread, in order, off the request's path
        self._writer = BackgroundWriter("clawrouter-usage")

    def _file(self, day: date) -> Path:
        return self.directory / f"{_PREFIX}{day.isoformat()}{_SUFFIX}"

    def append(self, record: UsageRecord) -> None:
        """Queue one line for the file of the record's UTC date. A record that cannot be
        serialised raises ValueError here; disk errors are logged, never raised (the request
        was already served). Readers of this log see every line appended before them."""
        line = record.to_json().encode("utf-8") + b"\n"
        self._writer.submit(self._write, self._file(_utc_date(record.timestamp)), line)

    def flush(self) -> None:
        """Wait until every appended line is in its file."""
        self._writer.flush()

    def close(self) -> None:
        """Write what is queued and stop the writer thread."""
        self._writer.close()

    def _write(self, path: Path, line: bytes) -> None:
        """One ``os.write`` under an advisory lock shared by our writers."""
        try:
            fd = self._open(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # so the last-byte check sees no write half done
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # a crash left a partial line: do not extend it
                written = os.write(fd, line)
                if written != len(line):
                    log.warning("usage log: short write to %s (%d/%d)", path, written, len(line))
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("usage log: cannot write %s: %s", path, exc)

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
        return deleted


class _Totals:
    """Running sums for :meth:`UsageLog.aggregate`."""

    def __init__(self) -> None:
        self.requests = self.cache_hits = 0
        self.cost = self.baseline = self.saved = self.latency = 0.0
        self.tiers: dict[str, list] = {tier: [0, 0.0] for tier in TIERS}
        self.models: dict[str, list] = {}
        self.daily: list[dict] = []

    def add_file(self, day: date, path: Path) -> None:
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            log.warning("usage log: cannot read %s: %s", path, exc)
            return
        requests, cost, saved = 0, 0.0, 0.0
        for line in raw.splitlines():
            entry = _parse(line)
            if entry is None:
                continue
            model, tier, entry_cost, baseline, latency, hit = entry
            entry_saved = max(0.0, baseline - entry_cost)
            requests += 1
            cost += entry_cost
            saved += entry_saved
            self.baseline += baseline
            self.latency += latency
            self.cache_hits += hit
            tier_sums = self.tiers.setdefault(tier, [0, 0.0])
            tier_sums[0] += 1
            tier_sums[1] += entry_cost
            model_sums = self.models.setdefault(model, [0, 0.0])
            model_sums[0] += 1
            model_sums[1] += entry_cost
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
            "dailyBreakdown": self.daily,
        }


def _parse(line: bytes) -> tuple[str, str, float, float, float, bool] | None:
    """(model, tier, cost, baseline, latency, cache hit) of a log line, or None if unusable."""
    try:
        entry = json.loads(line)
        model, tier = entry["model"], entry["tier"]
        if not isinstance(model, str) or not isinstance(tier, str):
            return None
        cost = _number(entry["cost"])
        baseline = _number(entry.get("baselineCost", cost))
        latency = _number(entry.get("latencyMs", 0))
        return model, tier, cost, baseline, latency, entry.get("cacheHit") is True
    except (ValueError, KeyError, TypeError):
        return None


def _usd(value: float) -> float:
    return round(value, 6)


def _pct(part: float, whole: float) -> float:
    return round(part / whole * 100, 1) if whole else 0.0
