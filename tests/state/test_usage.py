"""UsageLog: append, aggregate over calendar days, clear."""

import json
import os
import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from clawrouter_plugin.errors import BadRequest
from clawrouter_plugin.usage import UsageLog, UsageRecord, utc_now_iso

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def record(day_offset=0, model="openai/gpt-4o-mini", tier="SIMPLE", cost=0.001, baseline=0.01,
           latency=100.0, cache_hit=False, hour=10):
    moment = NOW.replace(hour=hour) - timedelta(days=day_offset)
    return UsageRecord(
        timestamp=moment.isoformat().replace("+00:00", "Z"),
        session="s1",
        requested_model="blockrun/auto",
        model=model,
        tier=tier,
        input_tokens=100,
        output_tokens=50,
        cost=cost,
        baseline_cost=baseline,
        savings=max(0.0, baseline - cost),
        latency_ms=latency,
        cache_hit=cache_hit,
        fallbacks=0,
        profile="auto",
    )


@pytest.fixture
def log(tmp_path):
    return UsageLog(tmp_path / "logs")


def test_append_writes_one_camel_case_line_per_record(log):
    log.append(record())
    log.append(record(model="deepseek/deepseek-chat"))
    log.flush()  # lines are written by a background thread
    path = log.directory / "usage-2026-01-10.jsonl"
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    entry = json.loads(lines[0])
    assert entry["requestedModel"] == "blockrun/auto" and entry["baselineCost"] == 0.01
    assert entry["inputTokens"] == 100 and entry["cacheHit"] is False and entry["kind"] == "chat"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_file_is_chosen_by_utc_date(log):
    rec = record()
    rec.timestamp = "2026-01-10T23:30:00-05:00"  # 04:30 UTC on the 11th
    log.append(rec)
    log.flush()
    assert (log.directory / "usage-2026-01-11.jsonl").exists()


def test_invalid_timestamp_is_rejected(log):
    rec = record()
    rec.timestamp = "yesterday"
    with pytest.raises(ValueError):
        log.append(rec)


def test_utc_now_iso_round_trips():
    stamp = utc_now_iso()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp), stamp
    assert [utc_now_iso() <= utc_now_iso() for _ in range(1000)] == [True] * 1000  # in order
    parsed = datetime.fromisoformat(stamp)
    assert abs((parsed - datetime.now(UTC)).total_seconds()) < 5


def test_aggregate(log):
    log.append(record(tier="SIMPLE", cost=0.001, baseline=0.01, latency=100))
    log.append(record(tier="SIMPLE", cost=0.002, baseline=0.01, latency=200))
    log.append(record(tier="COMPLEX", model="anthropic/claude-sonnet-4.6", cost=0.02,
                      baseline=0.03, latency=300, day_offset=1))
    log.append(record(tier="DIRECT", model="anthropic/claude-sonnet-4.6", cost=0.0,
                      baseline=0.03, latency=0, cache_hit=True, day_offset=2))
    stats = log.aggregate(7, now=NOW)
    assert stats["period"] == "last 7 days" and stats["days"] == 7
    assert stats["totalRequests"] == 4
    assert stats["totalCost"] == pytest.approx(0.023)
    assert stats["totalBaselineCost"] == pytest.approx(0.08)
    assert stats["totalSavings"] == pytest.approx(0.057)
    assert stats["savingsPercentage"] == pytest.approx(71.2)
    assert stats["avgLatencyMs"] == 150.0
    assert stats["avgCostPerRequest"] == pytest.approx(0.00575)
    assert stats["cacheHits"] == 1
    assert list(stats["byTier"]) == ["SIMPLE", "MEDIUM", "COMPLEX", "REASONING", "DIRECT"]
    assert stats["byTier"]["SIMPLE"] == {"count": 2, "cost": 0.003, "percentage": 50.0}
    assert stats["byTier"]["MEDIUM"] == {"count": 0, "cost": 0.0, "percentage": 0.0}
    assert stats["byTier"]["DIRECT"]["count"] == 1
    assert stats["byModel"] == {
        "anthropic/claude-sonnet-4.6": {"count": 2, "cost": 0.02},
        "openai/gpt-4o-mini": {"count": 2, "cost": 0.003},
    }
    assert [d["date"] for d in stats["dailyBreakdown"]] == [
        "2026-01-08", "2026-01-09", "2026-01-10"
    ]
    assert stats["dailyBreakdown"][0] == {"date": "2026-01-08", "requests": 1, "cost": 0.0,
                                          "saved": 0.03}


def test_by_model_is_sorted_by_count(log):
    for model, count in (("a", 1), ("b", 3), ("c", 2)):
        for _ in range(count):
            log.append(record(model=model))
    assert list(log.aggregate(1, now=NOW)["byModel"]) == ["b", "c", "a"]


def test_window_is_calendar_days_not_newest_files(log):
    log.append(record(day_offset=0))
    log.append(record(day_offset=1))
    log.append(record(day_offset=5))  # outside a 3-day window even though only 3 files exist
    log.append(record(day_offset=-1))  # tomorrow: not in the window either
    assert log.aggregate(1, now=NOW)["totalRequests"] == 1
    assert log.aggregate(1, now=NOW)["period"] == "today"
    assert log.aggregate(3, now=NOW)["totalRequests"] == 2
    assert log.aggregate(6, now=NOW)["totalRequests"] == 3


def test_empty_log(log):
    stats = log.aggregate(now=NOW)
    assert stats["totalRequests"] == 0 and stats["savingsPercentage"] == 0.0
    assert stats["avgLatencyMs"] == 0.0 and stats["dailyBreakdown"] == []
    assert list(stats["byTier"]) == ["SIMPLE", "MEDIUM", "COMPLEX", "REASONING"]


@pytest.mark.parametrize("days", [0, -1, 366, 1.5, "7", True, None])
def test_days_is_validated(log, days):
    with pytest.raises(BadRequest, match="days must be"):
        log.aggregate(days, now=NOW)


def test_bad_and_truncated_lines_are_skipped(log):
    log.append(record(cost=0.001))
    log.flush()
    path = log.directory / "usage-2026-01-10.jsonl"
    with open(path, "a") as handle:
        handle.write("not json\n[1, 2]\n{}\n")
        handle.write('{"model": "m", "tier": "SIMPLE", "cost": NaN}\n')
        handle.write('{"model": "m", "tier": "SIMPLE", "cost": "free"}\n')
        handle.write('{"timestamp": "2026-01-10T10:00:00Z", "model": "openai/gpt-4o-mi')  # crash
    assert log.aggregate(1, now=NOW)["totalRequests"] == 1
    # The next append starts a new line instead of extending the partial one.
    log.append(record(cost=0.002))
    log.flush()
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["cost"] == 0.002
    assert log.aggregate(1, now=NOW)["totalCost"] == pytest.approx(0.003)


def test_reference_format_lines_aggregate(log):
    log.directory.mkdir()
    (log.directory / "usage-2026-01-10.jsonl").write_text(
        '{"timestamp":"2026-01-10T09:00:00.000Z","model":"openai/gpt-4o","tier":"MEDIUM",'
        '"cost":0.004,"baselineCost":0.02,"savings":0.8,"latencyMs":900}\n'
        '{"timestamp":"2026-01-10T09:01:00.000Z","model":"openai/gpt-4o","tier":"MEDIUM",'
        '"cost":0.01,"latencyMs":100}\n'
    )
    stats = log.aggregate(1, now=NOW)
    assert stats["totalRequests"] == 2
    assert stats["totalSavings"] == pytest.approx(0.016)  # baseline - cost, not the 0..1 ratio
    assert stats["totalBaselineCost"] == pytest.approx(0.03)  # missing baseline = cost


def test_concurrent_appends_never_interleave(log):
    pids = []
    for worker in range(4):
        pid = os.fork()
        if pid == 0:
            try:
                for _ in range(200):
                    log.append(record(model=f"worker-{worker}" + "x" * 500))
                log.flush()
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    lines = (log.directory / "usage-2026-01-10.jsonl").read_text().splitlines()
    assert len(lines) == 800
    assert all(json.loads(line)["cost"] == 0.001 for line in lines)


def test_append_errors_are_logged_not_raised(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    broken = UsageLog(blocker / "logs")
    broken.append(record())
    broken.flush()
    assert "cannot write" in caplog.text


def test_clear_deletes_only_usage_files(log):
    log.append(record(day_offset=0))
    log.append(record(day_offset=1))
    log.flush()
    (log.directory / "other.txt").write_text("keep me")
    assert log.clear() == 2
    assert os.listdir(log.directory) == ["other.txt"]
    assert log.clear() == 0
    assert UsageLog(log.directory / "missing").clear() == 0


def test_aggregating_ten_thousand_lines_is_fast(log):
    log.directory.mkdir()
    line = record().to_bytes() + b"\n"
    (log.directory / "usage-2026-01-10.jsonl").write_bytes(line * 10_000)
    start = time.perf_counter()
    stats = log.aggregate(7, now=NOW)
    elapsed = time.perf_counter() - start
    assert stats["totalRequests"] == 10_000
    assert elapsed < 2.0


def test_lines_reach_the_file_on_their_own_in_one_write(log, monkeypatch):
    writes = []
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: writes.append(data) or real_write(fd, data))
    for day in (0, 0, 0, 1, 1):  # a run of lines per file
        log.append(record(day_offset=day))
    path = log.directory / "usage-2026-01-10.jsonl"
    deadline = time.monotonic() + 5
    while not (path.exists() and len(path.read_text().splitlines()) == 3):
        assert time.monotonic() < deadline, "the lines were not written without a flush"
        time.sleep(0.02)
    log.flush()
    assert [data.count(b"\n") for data in writes] == [3, 2]
    assert len((log.directory / "usage-2026-01-09.jsonl").read_text().splitlines()) == 2


def test_a_log_file_deleted_behind_its_back_is_opened_afresh(log):
    log.append(record())
    log.flush()
    path = log.directory / "usage-2026-01-10.jsonl"
    path.unlink()  # e.g. DELETE /stats served by another process
    log.append(record(cost=0.005))
    log.flush()
    assert [json.loads(line)["cost"] for line in path.read_text().splitlines()] == [0.005]
