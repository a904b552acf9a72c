"""Measure the router against labelled requests (JSONL rows with id, tier, agentic, body).

Used by the accuracy-floor test and by ``bench/eval_router.py`` to produce the numbers in
docs/routing.md. Each row: ``{"id", "tier", "agentic", "lang", "category", "body"}``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .decision import REFERENCE_OUTPUT_TOKENS
from .features import read_request
from .router import Router
from .settings import TIERS


def load_rows(path: str | Path) -> list[dict]:
    """The rows of a JSONL file (blank lines skipped)."""
    lines = Path(path).read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@dataclass
class Report:
    """Tier accuracy, confusion matrix and agentic precision / recall."""

    total: int = 0
    correct: int = 0
    confusion: Counter = field(default_factory=Counter)  # (label, routed) -> count
    by_group: dict[str, Counter] = field(default_factory=dict)  # "lang:xx" -> n/ok/below/above
    agentic: Counter = field(default_factory=Counter)  # tp, fp, fn, tn
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # id, label, routed
    confidences: list[tuple[float, bool]] = field(default_factory=list)
    # USD over all rows, each priced at its input tokens and REFERENCE_OUTPUT_TOKENS of output:
    # the routed model, the baseline (premium) model, and the model its label's tier would get
    cost: float = 0.0
    baseline_cost: float = 0.0
    label_cost: float = 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def tier_accuracy(self, tier: str) -> float:
        n = sum(count for (label, _), count in self.confusion.items() if label == tier)
        return self.confusion[tier, tier] / n if n else 0.0

    def group_accuracy(self, group: str) -> float:
        counts = self.by_group.get(group, Counter())
        return counts["ok"] / counts["n"] if counts["n"] else 0.0

    @property
    def below(self) -> float:
        """Share of requests routed to a lower tier than their label."""
        return sum(c for (a, b), c in self.confusion.items()
                   if TIERS.index(b) < TIERS.index(a)) / max(1, self.total)

    @property
    def above(self) -> float:
        """Share of requests routed to a higher tier than their label."""
        return sum(c for (a, b), c in self.confusion.items()
                   if TIERS.index(b) > TIERS.index(a)) / max(1, self.total)

    @property
    def agentic_precision(self) -> float:
        a = self.agentic
        return a["tp"] / (a["tp"] + a["fp"]) if a["tp"] + a["fp"] else 0.0

    @property
    def agentic_recall(self) -> float:
        a = self.agentic
        return a["tp"] / (a["tp"] + a["fn"]) if a["tp"] + a["fn"] else 0.0


def evaluate(rows: list[dict], router: Router | None = None, profile: str = "auto") -> Report:
    """Route every row with ``profile`` and compare with its labels. The agentic flag compared
    is the classifier's (a request with tools uses the agentic table without being an agent
    task)."""
    router = router or Router()
    report = Report()
    chat = router.catalog.chat
    baseline = chat[router.catalog.baseline_model]
    for row in rows:
        decision = router.route(row["body"], profile)
        tokens = decision.input_tokens
        label_model = router.settings.tables[decision.table][row["tier"]][0]
        report.cost += chat[decision.model].cost(tokens, REFERENCE_OUTPUT_TOKENS)
        report.baseline_cost += baseline.cost(tokens, REFERENCE_OUTPUT_TOKENS)
        report.label_cost += chat[label_model].cost(tokens, REFERENCE_OUTPUT_TOKENS)
        ok = decision.tier == row["tier"]
        report.total += 1
        report.correct += ok
        report.confusion[row["tier"], decision.tier] += 1
        report.confidences.append((decision.confidence, ok))
        step = TIERS.index(decision.tier) - TIERS.index(row["tier"])
        for group in (f"lang:{row.get('lang', '?')}", f"category:{row.get('category', '?')}"):
            counts = report.by_group.setdefault(group, Counter())
            counts["n"] += 1
            counts["ok"] += ok
            counts["below"] += step < 0
            counts["above"] += step > 0
        view = read_request(row["body"], 0, router.settings.history_turns)
        expected, got = bool(row.get("agentic")), router.classifier.classify(view).agentic
        report.agentic["tp" if expected and got else "fp" if got else "fn" if expected
                       else "tn"] += 1
        if not ok:
            report.failures.append((row["id"], row["tier"], decision.tier))
    return report


def format_report(report: Report, title: str) -> str:
    """Markdown: summary lines, the confusion matrix and each tier's recall."""
    lines = [f"### {title}", "",
             f"- overall tier accuracy: **{report.accuracy:.3f}** ({report.correct}/{report.total})",
             f"- routed below the label: {report.below:.1%}",
             f"- routed above the label: {report.above:.1%}",
             (f"- agentic precision / recall: {report.agentic_precision:.2f} / "
             f"{report.agentic_recall:.2f}"),
             (f"- price of the routed models: {report.cost / max(1e-12, report.baseline_cost):.1%}"
              f" of always using the premium model, "
              f"{report.cost / max(1e-12, report.label_cost):.2f}× routing by the labels "
              f"(which is {report.label_cost / max(1e-12, report.baseline_cost):.1%} of premium)"),
             "",
             "| label \\ routed | " + " | ".join(TIERS) + " | accuracy |",
             "|---|" + "---:|" * (len(TIERS) + 1)]
    for label in TIERS:
        cells = " | ".join(str(report.confusion[label, got]) for got in TIERS)
        lines.append(f"| {label} | {cells} | {report.tier_accuracy(label):.2f} |")
    return "\n".join(lines)
