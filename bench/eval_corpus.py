"""Today's router on the labelled corpus (tests/router/corpus/, issue #13).

Run: .venv/bin/python bench/eval_corpus.py [--corpus DIR ...] [--validation | --test | --holdout]
     [--wrapped] [--failures]

By default only the train and validation splits are routed: the test split is frozen for the
final measurement and is never looked at while tuning. ``--validation`` routes the validation
split alone (what tuning is judged on), ``--test`` the test split alone, ``--holdout`` the
second held-out split (tests/router/holdout/, every row of it) alone.
Rows with a ``pad`` are routed with their filler expanded; ``--wrapped`` sends every request
as the OpenClaw gateway would (tests/support/host_shapes.py). Prints markdown: accuracy,
under- and over-routing, recall per tier, agentic precision / recall, the price of the routed
models against always-premium and against routing by the labels, then per language and per
category.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from clawrouter_plugin.router import Router
from clawrouter_plugin.router.corpus import CorpusError, expand, in_split, load_corpus
from clawrouter_plugin.router.evaluate import Report, evaluate, format_report

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "router" / "corpus"
HOLDOUT = ROOT / "tests" / "router" / "holdout"
sys.path.insert(0, str(ROOT))

from tests.support.host_shapes import wrap  # noqa: E402


def group_table(report: Report, prefix: str) -> str:
    """One markdown row per language or category: size, accuracy, below, above."""
    lines = [f"| {prefix} | requests | accuracy | below | above |", "|---|---:|---:|---:|---:|"]
    for group in sorted(g for g in report.by_group if g.startswith(prefix + ":")):
        c = report.by_group[group]
        lines.append(f"| {group.split(':', 1)[1]} | {c['n']} | {c['ok'] / c['n']:.2f} | "
                     f"{c['below'] / c['n']:.0%} | {c['above'] / c['n']:.0%} |")
    return "\n".join(lines)


def load(folders: list[Path]) -> list[dict]:
    """The rows of several corpus folders; an id may appear only once over all of them."""
    rows: list[dict] = []
    for folder in folders:
        rows += load_corpus(folder)
    twice = [i for i, n in Counter(r["id"] for r in rows).items() if n > 1]
    if twice:
        raise CorpusError(f"ids in more than one folder: {', '.join(sorted(twice)[:10])}")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, action="append",
                        help=f"corpus folder (repeatable; default {CORPUS})")
    parser.add_argument("--test", action="store_true",
                        help="route the frozen test split instead of train + validation")
    parser.add_argument("--holdout", action="store_true",
                        help=f"route the second held-out split ({HOLDOUT}) instead")
    parser.add_argument("--validation", action="store_true",
                        help="route the validation split only")
    parser.add_argument("--profile", default="auto")
    parser.add_argument("--wrapped", action="store_true",
                        help="send every request wrapped as the OpenClaw gateway does")
    parser.add_argument("--failures", action="store_true", help="list misrouted ids")
    args = parser.parse_args()
    try:
        rows = load([HOLDOUT] if args.holdout else args.corpus or [CORPUS])
    except CorpusError as exc:
        print(f"corpus error: {exc}", file=sys.stderr)
        return 1
    splits = ("holdout",) if args.holdout else ("test",) if args.test else (
        "validation",) if args.validation else ("train", "validation")
    chosen = [{**row, "body": wrap(expand(row)) if args.wrapped else expand(row)}
              for row in (rows if args.holdout else in_split(rows, *splits))]
    start = time.perf_counter()
    report = evaluate(chosen, Router(), args.profile)
    elapsed = time.perf_counter() - start
    shape = ", OpenClaw-wrapped" if args.wrapped else ""
    print(format_report(report, f"Corpus, {' + '.join(splits)} ({report.total} of {len(rows)} "
                                f"requests, profile {args.profile}{shape})"))
    print(f"\n(routed in {elapsed:.1f} s)\n\n#### Per language\n")
    print(group_table(report, "lang"))
    print("\n#### Per category\n")
    print(group_table(report, "category"))
    if args.failures:
        print("\nMisrouted:", Counter(f"{a}->{b}" for _, a, b in report.failures))
        for item in report.failures:
            print("  ", *item)
    return 0


if __name__ == "__main__":
    sys.exit(main())
