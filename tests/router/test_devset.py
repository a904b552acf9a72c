"""The labelled development set: its shape, and accuracy floors the router must keep.

The keyword router was tuned on these sets; the learned classifier never saw them (it is
trained on tests/router/corpus/), so they are a second check of how it carries over to
requests written by other hands. The floors sit about two points under what it reaches (see
docs/routing.md); a change that lowers accuracy below them fails here. Regenerate the numbers
with bench/eval_router.py.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from clawrouter_plugin.router import TIERS
from clawrouter_plugin.router.evaluate import evaluate, load_rows

DEVSET = Path(__file__).with_name("devset.jsonl")
LANGUAGES = {"en", "zh", "ja", "ru", "de", "es", "pt", "ko", "ar", "fr"}

OVERALL_FLOOR = 0.90  # measured 0.923
TIER_FLOORS = {"SIMPLE": 0.96, "MEDIUM": 0.78, "COMPLEX": 0.91, "REASONING": 0.98}
# measured 1.00 / 0.71: this set calls "agentic" some single edits the corpus's rules do not
AGENTIC_PRECISION_FLOOR, AGENTIC_RECALL_FLOOR = 0.95, 0.69
# the two sets written after the keyword router was tuned (fresh.jsonl, fresh_b.jsonl)
FRESH_FLOOR = 0.94  # measured 0.958


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return load_rows(DEVSET)


@pytest.fixture(scope="module")
def report(rows, router):
    return evaluate(rows, router)


def test_devset_shape(rows):
    assert len(rows) >= 220
    assert len({row["id"] for row in rows}) == len(rows)
    tiers = Counter(row["tier"] for row in rows)
    assert set(tiers) == set(TIERS) and min(tiers.values()) >= 50
    assert {row["lang"] for row in rows} == LANGUAGES
    for row in rows:
        assert set(row) == {"id", "tier", "agentic", "lang", "category", "body"}, row["id"]
        assert isinstance(row["body"]["messages"], list) and row["body"]["messages"]
    assert sum(row["agentic"] for row in rows) >= 25
    assert sum("tools" in row["body"] for row in rows) >= 8
    assert sum(any(m["role"] == "system" for m in row["body"]["messages"]) for row in rows) >= 10
    assert sum(sum(m["role"] == "user" for m in row["body"]["messages"]) > 1 for row in rows) >= 8
    assert sum(row["category"].startswith("adversarial") for row in rows) >= 15


def test_overall_accuracy_floor(report):
    assert report.accuracy >= OVERALL_FLOOR, report.failures


@pytest.mark.parametrize("tier", TIERS)
def test_tier_accuracy_floor(report, tier):
    assert report.tier_accuracy(tier) >= TIER_FLOORS[tier]


def test_agentic_precision_and_recall(report):
    assert report.agentic_precision >= AGENTIC_PRECISION_FLOOR
    assert report.agentic_recall >= AGENTIC_RECALL_FLOOR


def test_fresh_sets_floor(router):
    rows = load_rows(DEVSET.with_name("fresh.jsonl")) + load_rows(DEVSET.with_name("fresh_b.jsonl"))
    assert len(rows) >= 100
    assert evaluate(rows, router).accuracy >= FRESH_FLOOR


# each language has 12 to 60 requests here, so one request moves its accuracy by up to 8 points
# (measured: lowest zh 0.83, fr 0.87, ja 0.88; the others 0.93 to 1.00)
LANGUAGE_FLOOR = 0.80


def test_every_language_is_routed_well(report):
    for lang in LANGUAGES:
        assert report.group_accuracy(f"lang:{lang}") >= LANGUAGE_FLOOR, lang
