"""Freeze the corpus's test split: write tests/router/corpus/test-split.lock.

Run from the repository root once the corpus is complete:

    .venv/bin/python scripts/freeze_corpus_split.py

It loads and checks every tests/router/corpus/*.jsonl file, refuses to freeze a corpus that is
short of the issue #13 targets (3,000 rows, 10 languages, 25% not English, 600 test rows)
unless ``--draft`` is given, and writes the count and SHA-256 of the test rows.
tests/router/test_corpus.py then fails whenever a test row changes, appears or disappears.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from clawrouter_plugin.router.corpus import CorpusError, load_corpus, shortfalls, split_digest

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "router" / "corpus"
LOCK = "test-split.lock"


def lock_text(rows: list[dict], draft: bool) -> str:
    """The lock file's content: the test split's digest, plus the draft flag."""
    return json.dumps({**split_digest(rows, "test"), "draft": draft}, indent=2) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="corpus folder")
    parser.add_argument("--draft", action="store_true",
                        help="freeze an incomplete corpus (the size checks are then skipped)")
    args = parser.parse_args()
    try:
        rows = load_corpus(args.corpus)
    except CorpusError as exc:
        print(f"corpus error: {exc}", file=sys.stderr)
        return 1
    missing = shortfalls(rows)
    if missing and not args.draft:
        print("corpus incomplete: " + "; ".join(missing) + " (use --draft to freeze anyway)",
              file=sys.stderr)
        return 1
    text = lock_text(rows, draft=bool(missing))
    (args.corpus / LOCK).write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
