"""Accuracy of the router on the labelled sets; prints the markdown used in docs/routing.md.

Run: .venv/bin/python bench/eval_router.py [--failures]

- tests/router/devset.jsonl: the development set. Weights were tuned on the "dev" part; the
  "held-out" part (a fixed quarter, chosen by a hash of the id) was not looked at while tuning.
- tests/router/fresh.jsonl (batch A) and fresh_b.jsonl (batch B): requests written after
  tuning. Batch A's first measurement led to a general vocabulary extension, so it is no longer
  unseen; batch B was written last (its first measurement is quoted in docs/routing.md).
- Each set again wrapped the way OpenClaw sends it (tests/support/host_shapes.py: its ~47k-char
  system prompt and tools, timestamped user text, Runtime line, trailing context block): the
  router reads the user's ask, so the accuracy must not move.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from collections import Counter
from pathlib import Path

from clawrouter_plugin.router import Router
from clawrouter_plugin.router.evaluate import Report, evaluate, format_report, load_rows

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "tests" / "router"
sys.path.insert(0, str(ROOT))  # for the host-shaped fixtures under tests/

from tests.support.host_shapes import wrap  # noqa: E402


def wrapped(rows: list[dict]) -> list[dict]:
    """``rows`` with every request wrapped in OpenClaw's shape."""
    return [dict(row, body=wrap(row["body"])) for row in rows]


def held_out(row: dict) -> bool:
    """The fixed quarter of the development set that weight tuning never looked at."""
    return zlib.crc32(row["id"].encode()) % 4 == 0


def calibration(report: Report) -> str:
    """Accuracy per confidence band (is the sigmoid confidence honest?)."""
    bands = [(0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.01)]
    lines = ["| confidence | requests | accuracy |", "|---|---:|---:|"]
    for low, high in bands:
        hits = [ok for conf, ok in report.confidences if low <= conf < high]
        if hits:
            lines.append(f"| {low:.1f}–{min(high, 1.0):.1f} | {len(hits)} | "
                         f"{sum(hits) / len(hits):.2f} |")
    return "\n".join(lines)


def groups(report: Report, prefix: str) -> str:
    names = sorted(g for g in report.by_group if g.startswith(prefix))
    cells = [f"{g.split(':', 1)[1]} {report.group_accuracy(g):.2f} "
             f"({report.by_group[g]['n']})" for g in names]
    return ", ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--failures", action="store_true", help="list misrouted ids")
    args = parser.parse_args()
    router = Router()
    rows = load_rows(HERE / "devset.jsonl")
    full = evaluate(rows, router)
    print(format_report(full, f"Development set ({len(rows)} requests)"))
    print()
    for name, part in (("dev part", [r for r in rows if not held_out(r)]),
                       ("held-out part", [r for r in rows if held_out(r)])):
        report = evaluate(part, router)
        print(f"- {name}: {report.accuracy:.3f} ({report.correct}/{report.total})")
    for name in ("fresh", "fresh_b"):
        fresh = evaluate(load_rows(HERE / f"{name}.jsonl"), router)
        print()
        print(format_report(fresh, f"{name}.jsonl ({fresh.total} requests)"))
    print("\nWrapped in OpenClaw's request shape (plain → wrapped):")
    for name in ("devset", "fresh", "fresh_b"):
        part = load_rows(HERE / f"{name}.jsonl")
        plain, host = evaluate(part, router), evaluate(wrapped(part), router)
        print(f"- {name}.jsonl: {plain.accuracy:.3f} → {host.accuracy:.3f}")
    print("\nPer language:", groups(full, "lang:"))
    print("\nPer category (development set):", groups(full, "category:"))
    print("\nConfidence calibration (development set):\n")
    print(calibration(full))
    for profile in ("eco", "premium", "agentic"):
        report = evaluate(rows, router, profile)
        print(f"\n- tier accuracy with profile {profile}: {report.accuracy:.3f}")
    if args.failures:
        print("\nMisrouted:", Counter(f"{a}->{b}" for _, a, b in full.failures))
        for item in full.failures:
            print("  ", *item)


if __name__ == "__main__":
    main()
