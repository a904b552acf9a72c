"""Freeze a held-out split of the routing corpus: write its lock file.

Run from the repository root:

    .venv/bin/python scripts/freeze_corpus_split.py            # the corpus's test split
    .venv/bin/python scripts/freeze_corpus_split.py --holdout  # the second held-out split

The first form loads and checks every tests/router/corpus/*.jsonl file, refuses to freeze a
corpus that is short of the issue #13 targets (3,000 rows, 10 languages, 25% not English, 600
test rows) unless ``--draft`` is given, and writes the count and SHA-256 of the test rows to
tests/router/corpus/test-split.lock.

``--holdout`` freezes tests/router/holdout/ (every row in it is held out) into
tests/router/holdout/holdout.lock, after the same checks (600 rows, 10 languages, 25% not
English) and one more: no row of it may repeat the ask of a corpus train or validation row
(such rows must be dropped from the folder before it is frozen).

tests/router/test_corpus.py then fails whenever a held-out row changes, appears or disappears.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from clawrouter_plugin.router.corpus import (
    CorpusError,
    holdout_shortfalls,
    load_corpus,
    near_copies,
    rows_digest,
    shortfalls,
    split_digest,
)

TESTS = Path(__file__).resolve().parent.parent / "tests" / "router"
CORPUS, HOLDOUT = TESTS / "corpus", TESTS / "holdout"
LOCK, HOLDOUT_LOCK = "test-split.lock", "holdout.lock"


def lock_text(digest: dict, draft: bool) -> str:
    """The lock file's content: a split's digest, plus the draft flag."""
    return json.dumps({**digest, "draft": draft}, indent=2) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="corpus folder")
    parser.add_argument("--holdout", action="store_true",
                        help=f"freeze the second held-out split ({HOLDOUT}) instead")
    parser.add_argument("--draft", action="store_true",
                        help="freeze an incomplete corpus (the size checks are then skipped)")
    args = parser.parse_args()
    try:
        rows = load_corpus(args.corpus)
        held = load_corpus(HOLDOUT) if args.holdout else []
    except CorpusError as exc:
        print(f"corpus error: {exc}", file=sys.stderr)
        return 1
    if args.holdout:
        repeats = [pair for pair in near_copies(rows, held) if pair[1] in {r["id"] for r in held}]
        if repeats:
            print("held-out rows repeat corpus asks (drop them first): "
                  + ", ".join(f"{kept} ~ {train}" for train, kept, _ in repeats), file=sys.stderr)
            return 1
        missing, digest, folder, name = (holdout_shortfalls(held), rows_digest(held, "holdout"),
                                         HOLDOUT, HOLDOUT_LOCK)
    else:
        missing, digest, folder, name = (shortfalls(rows), split_digest(rows, "test"),
                                         args.corpus, LOCK)
    if missing and not args.draft:
        print("incomplete: " + "; ".join(missing) + " (use --draft to freeze anyway)",
              file=sys.stderr)
        return 1
    text = lock_text(digest, draft=bool(missing))
    (folder / name).write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
