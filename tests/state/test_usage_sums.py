"""The team's totals in Redis are sums of the same records the log holds: a day's sums made
from records (what a process sends), flattened to hash fields and read back (what /stats reads)
give exactly the answer the log file itself gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clawrouter_plugin.usage import DaySums, Totals, UsageLog, UsageRecord, iso_timestamp

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def _records() -> list[UsageRecord]:
    rows = [  # days ago, model, tier, cost, baseline, cache hit, kind, payment, paid, key
        (0, "openai/gpt-4o-mini", "SIMPLE", 0.001, 0.02, False, "chat", "settled", 0.001, "a"),
        (0, "openai/gpt-4o-mini", "SIMPLE", 0.0, 0.02, True, "chat", None, 0.0, "b"),
        (0, "google/nano-banana", "IMAGE", 0.039, 0.039, False, "image", "unconfirmed", 0.039,
         "a"),
        (0, "deepseek/deepseek-chat", "MEDIUM", 0.002, 0.002, False, "chat", "refused", 0.002,
         None),
        (1, "anthropic/claude|odd:name", "COMPLEX", 0.05, 0.04, False, "chat", "settled", 0.05,
         "b"),
        (1, "/v1/embeddings", "FORWARD", 0.003, 0.003, False, "forward", "settled", 0.003, "a"),
        (3, "openai/o3", "REASONING", 0.2, 0.9, False, "chat", None, 0.0, None),
    ]
    records = []
    for days_ago, model, tier, cost, baseline, hit, kind, payment, paid, key in rows:
        moment = (NOW - timedelta(days=days_ago)).timestamp()
        records.append(UsageRecord(
            timestamp=iso_timestamp(moment), session="s", requested_model="auto", model=model,
            tier=tier, input_tokens=10, output_tokens=5, cost=cost, baseline_cost=baseline,
            savings=baseline - cost, latency_ms=12.5, cache_hit=hit, fallbacks=0, kind=kind,
            payment=payment, paid=paid, nonce="0x01" if payment else None, key=key))
    return records


@pytest.mark.parametrize("days", [1, 2, 7])
def test_sums_through_hash_fields_equal_the_log(tmp_path, days):
    log = UsageLog(tmp_path / "logs")
    sums: dict[str, DaySums] = {}
    for record in _records():
        log.append(record)
        sums.setdefault(record.timestamp[:10], DaySums()).add_record(record)
    from_log = log.aggregate(days, now=NOW)
    log.close()
    totals = Totals()
    for offset in range(days - 1, -1, -1):
        day = (NOW - timedelta(days=offset)).date()
        day_sums = sums.get(day.isoformat(), DaySums())
        # what Redis holds and gives back: field names and numbers as bytes
        stored = {name.encode(): repr(float(value)).encode()
                  for name, value in day_sums.fields().items()}
        totals.add_day(day, DaySums.of_fields(stored))
    assert totals.result(days) == from_log
    assert from_log["totalRequests"] == {1: 4, 2: 6, 7: 7}[days]
    assert from_log["byKey"]["a"]["requests"] == {1: 2, 2: 3, 7: 3}[days]
