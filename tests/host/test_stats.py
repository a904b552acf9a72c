"""/stats: the box (golden text for a fixed usage log, equal display widths) and the command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from wcwidth import wcswidth

from clawrouter_plugin.usage import UsageLog, UsageRecord, utc_now_iso
from commands import stats

from .services import ctx, make_services

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
ROWS = [  # days ago, model, tier, cost, baseline cost, latency ms
    (2, "google/gemini-2.5-flash", "SIMPLE", 0.0004, 0.0120, 420),
    (2, "google/gemini-2.5-flash", "SIMPLE", 0.0006, 0.0150, 380),
    (1, "deepseek/deepseek-chat", "MEDIUM", 0.0010, 0.0300, 900),
    (1, "nvidia/gpt-oss-120b", "SIMPLE", 0.0, 0.0080, 300),
    (0, "anthropic/claude-sonnet-4.6", "COMPLEX", 0.0150, 0.0250, 2100),
    (0, "openai/o3", "REASONING", 0.0200, 0.0600, 5400),
    (0, "anthropic/claude-opus-4.6", "DIRECT", 0.0500, 0.0500, 3000),
    (0, "google/gemini-2.5-flash", "SIMPLE", 0.0005, 0.0100, 350),
]

GOLDEN = """\
╔════════════════════════════════════════════════════════════╗
║                ClawRouter Usage Statistics                 ║
╠════════════════════════════════════════════════════════════╣
║  Period:           last 7 days                             ║
║  Total Requests:   8                                       ║
║  Total Cost:       $0.0875                                 ║
║  Baseline Cost:    $0.2100  (at claude-opus-4.6 prices)    ║
║  💰 Total Saved:   $0.1225  (58.3%)                        ║
║  Avg Latency:      1606 ms                                 ║
║  Cache Hits:       0                                       ║
╠════════════════════════════════════════════════════════════╣
║  Routing by Tier:                                          ║
║    SIMPLE     ██████████            50.0% (4)              ║
║    MEDIUM     ██                    12.5% (1)              ║
║    COMPLEX    ██                    12.5% (1)              ║
║    REASONING  ██                    12.5% (1)              ║
║    DIRECT     ██                    12.5% (1)              ║
╠════════════════════════════════════════════════════════════╣
║  Top Models:                                               ║
║    google/gemini-2.5-flash          3 reqs  $0.0015        ║
║    anthropic/claude-opus-4.6        1 reqs  $0.0500        ║
║    anthropic/claude-sonnet-4.6      1 reqs  $0.0150        ║
║    deepseek/deepseek-chat           1 reqs  $0.0010        ║
║    nvidia/gpt-oss-120b              1 reqs  $0.0000        ║
╠════════════════════════════════════════════════════════════╣
║  Daily Breakdown:                                          ║
║    Date          Requests        Cost       Saved          ║
║    2026-01-08           2     $0.0010     $0.0260          ║
║    2026-01-09           2     $0.0010     $0.0370          ║
║    2026-01-10           4     $0.0855     $0.0595          ║
╚════════════════════════════════════════════════════════════╝
"""


def record(when: str, model: str, tier: str, cost: float, baseline: float, latency: float,
           cache_hit: bool = False) -> UsageRecord:
    return UsageRecord(timestamp=when, session="s", requested_model="blockrun/auto", model=model,
                       tier=tier, input_tokens=100, output_tokens=50, cost=cost,
                       baseline_cost=baseline, savings=max(0.0, baseline - cost),
                       latency_ms=latency, cache_hit=cache_hit, fallbacks=0)


def fill(log: UsageLog, now: datetime) -> None:
    for days_ago, *fields in ROWS:
        when = (now - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")
        log.append(record(when, *fields))


def assert_aligned(box: str) -> None:
    widths = {wcswidth(line) for line in box.splitlines()}
    assert widths == {stats.INNER + 2}, widths


def test_golden_box_for_a_fixed_usage_log(tmp_path):
    log = UsageLog(tmp_path / "logs")
    fill(log, NOW)
    box = stats.render_stats(log.aggregate(7, now=NOW), baseline="claude-opus-4.6")
    assert box == GOLDEN.rstrip("\n")
    assert_aligned(box)


def test_wide_characters_and_long_names_keep_the_borders_aligned():
    aggregate = {
        "period": "last 30 days", "totalRequests": 3, "totalCost": 12345.6789,
        "totalBaselineCost": 99999.5, "totalSavings": 87653.8211, "savingsPercentage": 87.7,
        "avgLatencyMs": 12.0, "cacheHits": 1,
        "byTier": {"SIMPLE": {"count": 1, "percentage": 33.3}, "画像": {"count": 2, "percentage": 66.7}},
        "byModel": {"模型/日本語モデル-とても長い名前のモデルです": {"count": 2, "cost": 1.0},
                    "👍🏽/emoji-model": {"count": 1, "cost": 0.5}},
        "dailyBreakdown": [{"date": "2026-01-10", "requests": 3, "cost": 1.5, "saved": 2.0}],
    }
    box = stats.render_stats(aggregate)
    assert_aligned(box)
    assert "…" in box and "画像" in box


def test_a_session_dearer_than_the_baseline_shows_no_saving(tmp_path):
    log = UsageLog(tmp_path / "logs")
    when = NOW.isoformat().replace("+00:00", "Z")
    log.append(record(when, "openai/o1", "DIRECT", 0.6700, 0.2650, 900))
    log.append(record(when, "google/gemini-2.5-flash", "SIMPLE", 0.0010, 0.0300, 300))
    aggregate = log.aggregate(1, now=NOW)
    assert aggregate["totalSavings"] == pytest.approx(0.2950 - 0.6710)
    assert aggregate["savingsPercentage"] == pytest.approx(-127.5, abs=0.05)
    box = stats.render_stats(aggregate)
    assert_aligned(box)
    assert "Total Saved" not in box
    assert "No saving:       $0.3760 over the baseline (+127.5%)" in box
    assert "-$0.3760" in box  # the day's "Saved" column


def test_empty_log_box(tmp_path):
    box = stats.render_stats(UsageLog(tmp_path / "none").aggregate(1, now=NOW))
    assert_aligned(box)
    assert "Period:           today" in box and "Total Requests:   0" in box
    assert "Top Models" not in box


@pytest.fixture
def services(tmp_path):
    return make_services(tmp_path / "data")


async def test_command_renders_the_fenced_box(services):
    fill(services.usage, datetime.now(UTC))
    reply = await stats.command(services).handler(ctx())
    assert reply.text.startswith("```\n╔") and reply.text.endswith("╝\n```")
    box = reply.text.strip("`\n")
    assert_aligned(box)
    assert "Total Requests:   8" in box and "(at claude-opus-4.6 prices)" in box
    one_day = await stats.command(services).handler(ctx("1"))
    assert "Period:           today" in one_day.text and "Total Requests:   4" in one_day.text


@pytest.mark.parametrize("args, expected", [
    ("abc", "Usage:"), ("-3", "Usage:"), ("7 8", "Usage:"), ("0", "between 1 and 365"),
    ("400", "between 1 and 365"),
])
async def test_command_argument_errors(services, args, expected):
    reply = await stats.command(services).handler(ctx(args))
    assert reply.is_error and expected in reply.text


async def test_clear_asks_first_and_deletes_only_usage_logs(services):
    services.usage.append(record(utc_now_iso(), "openai/o3", "SIMPLE", 0.1, 0.2, 10))
    services.usage.flush()
    other = services.usage.directory / "keep-me.txt"
    other.write_text("not a usage log")
    wallet_key = services.data_dir / "wallet.key"
    handler = stats.command(services).handler
    asked = await handler(ctx("clear"))
    assert "/stats clear --yes" in asked.text and not asked.is_error
    assert list(services.usage.directory.glob("usage-*.jsonl"))
    denied = await handler(ctx("clear --yes", is_authorized_sender=False))
    assert denied.is_error and list(services.usage.directory.glob("usage-*.jsonl"))
    done = await handler(ctx("CLEAR --yes"))
    assert done.text == "Stats cleared — 1 log file(s) deleted."
    assert not list(services.usage.directory.glob("usage-*.jsonl"))
    assert other.exists() and wallet_key.exists()
    assert (await handler(ctx("clear --yes"))).text == "Stats cleared — 0 log file(s) deleted."
