"""``/stats [days]``: spend, savings against the baseline model and routing by tier, in a box.

``/stats clear`` asks for confirmation; ``/stats clear --yes`` deletes the usage logs (and
nothing else). Borders line up in a terminal: widths are display columns (``wcwidth``), so an
emoji or a CJK model name counts as two.
"""

from __future__ import annotations

from typing import Any

from wcwidth import wcswidth, wcwidth

from clawrouter_plugin.host.api import CommandContext, CommandResult, CommandSpec

INNER = 60  # display columns between the borders
DEFAULT_DAYS = 7
MAX_DAYS = 365
TIER_ORDER = ("SIMPLE", "MEDIUM", "COMPLEX", "REASONING", "DIRECT")
USAGE = "/stats [days]   (1-365, default 7)\n/stats clear    delete the usage logs (asks first)"


def width(text: str) -> int:
    """Display columns of ``text`` (control characters count as zero)."""
    columns = wcswidth(text)
    return columns if columns >= 0 else sum(max(wcwidth(ch), 0) for ch in text)


def fit(text: str, columns: int) -> str:
    """``text`` cut to ``columns`` display columns (with "…") and padded with spaces to it."""
    if width(text) > columns:
        end = len(text)
        while end and width(text[:end]) > columns - 1:
            end -= 1
        text = text[:end] + "…"
    return text + " " * (columns - width(text))


def _row(text: str = "") -> str:
    return "║" + fit(text, INNER) + "║"


def _rule(left: str = "╠", right: str = "╣") -> str:
    return left + "═" * INNER + right


def _money(value: float) -> str:
    return f"{'-' if value < 0 else ''}${abs(value):,.4f}"


def _tier_lines(by_tier: dict[str, dict[str, Any]]) -> list[str]:
    tiers = [t for t in TIER_ORDER if t in by_tier] + [t for t in by_tier if t not in TIER_ORDER]
    lines = []
    for tier in tiers:
        row = by_tier[tier]
        pct = float(row.get("percentage", 0))
        bar = "█" * min(20, round(pct / 5))
        lines.append(f"    {tier:<10} {bar:<20} {pct:5.1f}% ({int(row.get('count', 0))})")
    return lines or ["    (no requests yet)"]


def _model_lines(by_model: dict[str, dict[str, Any]]) -> list[str]:
    top = sorted(by_model.items(), key=lambda item: -int(item[1].get("count", 0)))[:5]
    return [f"    {fit(name, 28)} {int(row.get('count', 0)):>5} reqs  {_money(float(row.get('cost', 0)))}"
            for name, row in top]


def _daily_lines(days: list[dict[str, Any]]) -> list[str]:
    lines = ["    Date          Requests        Cost       Saved"]
    for day in days[-7:]:
        lines.append(f"    {day.get('date', '?'):<12} {int(day.get('requests', 0)):>9} "
                     f"{_money(float(day.get('cost', 0))):>11} "
                     f"{_money(float(day.get('saved', 0))):>11}")
    return lines


def _savings_line(stats: dict[str, Any]) -> str:
    """Saved (baseline - cost over the same requests), or how much more than the baseline."""
    saved = float(stats.get("totalSavings", 0))
    percent = float(stats.get("savingsPercentage", 0))
    if saved < 0:
        more = f" (+{-percent:.1f}%)" if percent else ""
        return f"  No saving:       {_money(-saved)} over the baseline{more}"
    return f"  💰 Total Saved:   {_money(saved)}  ({percent:.1f}%)"


def render_stats(stats: dict[str, Any], *, baseline: str = "Claude Opus") -> str:
    """The stats box for an aggregate from ``UsageLog.aggregate`` (every line equally wide)."""
    total = int(stats.get("totalRequests", 0))
    lines = [
        _rule("╔", "╗"),
        _row("ClawRouter Usage Statistics".center(INNER)),
        _rule(),
        _row(f"  Period:           {stats.get('period', '?')}"),
        *([_row(_SCOPES.get(stats["scope"], ""))] if "scope" in stats else []),
        _row(f"  Total Requests:   {total}"),
        _row(f"  Total Cost:       {_money(float(stats.get('totalCost', 0)))}"),
        _row(f"  Baseline Cost:    {_money(float(stats.get('totalBaselineCost', 0)))}"
             f"  (at {baseline} prices)"),
        _row(_savings_line(stats)),
        _row(f"  Avg Latency:      {float(stats.get('avgLatencyMs', 0)):.0f} ms"),
        _row(f"  Cache Hits:       {int(stats.get('cacheHits', 0))}"),
        _rule(),
        _row("  Routing by Tier:"),
        *(_row(line) for line in _tier_lines(stats.get("byTier") or {})),
    ]
    if total:
        lines += [_rule(), _row("  Top Models:"),
                  *(_row(line) for line in _model_lines(stats.get("byModel") or {}))]
        daily = stats.get("dailyBreakdown") or []
        if daily:
            lines += [_rule(), _row("  Daily Breakdown:"), *(_row(line) for line in _daily_lines(daily))]
    lines.append(_rule("╚", "╝"))
    return "\n".join(lines)


_SCOPES = {"team": "  Scope:            the whole team (every proxy process)",
           "local": "  Scope:            this machine only (Redis is unreachable)"}


def _baseline_name(services: Any) -> str:
    model_id = services.catalog.baseline_model
    return model_id.split("/", 1)[-1]


def command(services: Any) -> CommandSpec:
    """The /stats command; ``services`` is read when the command runs."""

    async def handler(ctx: CommandContext) -> CommandResult:
        words = (ctx.args or "").lower().split()
        if words[:1] in (["clear"], ["reset"]):
            if not ctx.is_authorized_sender:
                return CommandResult("⚠️ Only an authorized sender can clear the stats.", is_error=True)
            if words[1:] != ["--yes"]:
                return CommandResult("This deletes every usage log (the data behind /stats); "
                                     "nothing else is touched.\nRun `/stats clear --yes` to confirm.")
            deleted = await services.stats.clear()
            return CommandResult(f"Stats cleared — {deleted} log file(s) deleted.")
        if len(words) > 1 or (words and not words[0].isdecimal()):
            return CommandResult(f"Usage:\n{USAGE}", is_error=True)
        days = int(words[0]) if words else DEFAULT_DAYS
        if not 1 <= days <= MAX_DAYS:
            return CommandResult(f"Days must be between 1 and {MAX_DAYS}.", is_error=True)
        stats = await services.stats.aggregate(days)
        box = render_stats(stats, baseline=_baseline_name(services))
        return CommandResult(f"```\n{box}\n```")

    return CommandSpec(name="stats", description="Usage, cost and savings (last 7 days by default)",
                       handler=handler, accepts_args=True, require_auth=False, usage=USAGE)
