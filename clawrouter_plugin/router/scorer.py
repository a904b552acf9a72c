"""The classifier: weighted dimensions → score → tier, sigmoid confidence, agentic score.

Each keyword dimension gets a value in 0..1 from the distinct keywords found: the instruction
counts fully, earlier user turns, the system prompt and pasted material with lower weights
(each capped at its weight). Structural dimensions (length, code, lists, questions, math
notation) come from the shape of the text. The score is the weighted sum; the tier follows
from the boundaries, except that REASONING also needs enough *formal* evidence (the
reasoning, math, algorithmic and math-notation parts of the score). Confidence is a sigmoid of
the distance to the nearest boundary.
"""

from __future__ import annotations

import math
from functools import lru_cache
from operator import mul
from typing import NamedTuple

from .features import RequestView
from .keywords import KeywordMatcher, normalize
from .settings import FORMAL_DIMS, KEYWORD_DIMS, TIERS, Settings
from .shape import LABELS, SCORED, Shape, shape

AGENT_DIMS = ("agent_action", "agent_object", "agent_verify", "agent_sequence")
TIER_DIMS = tuple(d for d in KEYWORD_DIMS if d not in AGENT_DIMS)
AGENT_KEYWORD_DIMS = frozenset(AGENT_DIMS)
# dimensions that describe the topic rather than the task (damped in creative requests)
TOPIC_DIMS = ("reasoning", "math", "algorithmic", "code", "engineering", "domain", "design",
              "analysis", "constraints")

_LABELS = {dim: dim.replace("_", "-") for dim in KEYWORD_DIMS}
CONTEXT_CACHE = 256  # scans of texts seen again (system prompts, earlier turns, tool loops) per Scorer


class Classification(NamedTuple):
    """The classifier's verdict on one request."""

    tier: str
    score: float
    confidence: float
    agentic_score: float
    agentic: bool
    signals: tuple[str, ...]


class Scorer:
    """Scores requests with precompiled keyword tables; one instance per Router."""

    def __init__(self, settings: Settings):
        self.s = settings
        self.matcher = KeywordMatcher(settings.keywords)
        w = settings.weights
        self._w = w
        self._inv_sat = {dim: 1.0 / settings.saturation[dim] for dim in KEYWORD_DIMS}
        self._tier_w = {d: w[d] for d in TIER_DIMS if w[d]}
        self._agent_w = tuple((d, w[d]) for d in AGENT_DIMS if w[d])
        self._formal_w = {d: w[d] for d in FORMAL_DIMS if w[d]}
        # weight vectors in Shape field order
        self._shape_w = tuple(w[f] if f in SCORED else 0.0 for f in Shape._fields)
        agentic_shape = {"file_paths": w["file_paths"], "tool_loop": w["tool_loop"],
                         "agent_question": -w["agent_question"]}
        self._agentic_shape_w = tuple(agentic_shape.get(f, 0.0) for f in Shape._fields)
        self._agentic_w = w["agentic"]
        self._notation_w = w["math_notation"]
        self._damped = frozenset(TOPIC_DIMS)
        # system prompts, earlier turns and (in tool loops) the last user message come back
        # unchanged on every turn of a conversation
        self._scan_context = lru_cache(maxsize=CONTEXT_CACHE)(self._scan_text)

    def _scan_text(self, text: str) -> list[tuple[str, str]]:
        return self.matcher.scan(normalize(text))

    def clear_cache(self) -> None:
        """Forget cached scans of system prompts and earlier turns (benchmarks, tests)."""
        self._scan_context.cache_clear()

    def _values(self, view: RequestView) -> tuple[dict[str, float], dict[str, list[str]]]:
        """Keyword-dimension values (0..1) and the keywords found in the instruction."""
        shown: dict[str, list[str]] = {}
        # cached too: an agent's tool loop re-sends the same last user message many times
        for dim, word in self._scan_context(view.instruction):
            group = shown.get(dim)
            if group is None:
                shown[dim] = [word]
            else:
                group.append(word)
        inv_sat = self._inv_sat
        values = {}
        for dim, words in shown.items():
            value = len(words) * inv_sat[dim]
            values[dim] = min(value, 1.0)
        if view.material or view.history or view.system:
            self._context(view, shown, values)
        return values, shown

    def _context(self, view: RequestView, shown: dict[str, list[str]],
                 values: dict[str, float]) -> None:
        """Add keywords found outside the instruction, each segment capped at its weight."""
        s, inv_sat = self.s, self._inv_sat
        segments = [(view.material, s.material_weight, False)]
        segments += [(text, s.history_weight, True) for text in view.history]
        segments.append((view.system, s.system_weight, False))
        for text, weight, agentic_ok in segments:
            if weight <= 0 or not text:
                continue
            new: dict[str, int] = {}
            for dim, word in self._scan_context(text):
                if (agentic_ok or dim not in AGENT_KEYWORD_DIMS) and word not in shown.get(dim, ()):
                    new[dim] = new.get(dim, 0) + 1
            for dim, count in new.items():
                gain = weight * min(1.0, count * inv_sat[dim])
                values[dim] = min(1.0, values.get(dim, 0.0) + gain)

    def classify(self, view: RequestView) -> Classification:
        """Tier, score, confidence and agentic verdict for one request."""
        s = self.s
        values, shown = self._values(view)
        form = shape(view)
        agentic = sum(map(mul, self._agentic_shape_w, form))
        for dim, weight in self._agent_w:
            if dim in values:
                agentic += weight * values[dim]
        agentic = 0.0 if agentic < 0.0 else min(agentic, 1.0)
        if "simple" in values:
            values["simple"] *= form.brevity
        if "creative" in shown:
            for dim in self._damped.intersection(values):
                values[dim] *= s.creative_damping
        score = self._agentic_w * agentic + sum(map(mul, self._shape_w, form))
        formal = self._notation_w * form.math_notation
        tier_w, formal_w = self._tier_w, self._formal_w
        for dim, value in values.items():
            if dim in tier_w:
                score += tier_w[dim] * value
                if dim in formal_w:
                    formal += formal_w[dim] * value
        tier, distance = self._tier(score, formal)
        confidence = 1.0 / (1.0 + math.exp(-s.steepness * distance))
        signals = self._signals(form, agentic, shown, values)
        if confidence < s.confidence_threshold and s.ambiguous_default_tier != "keep":
            tier = self._ambiguous(tier, score, formal)
            signals.append(f"ambiguous -> {tier}")
        # tuple.__new__ skips NamedTuple's Python-level __new__ (this runs on every request)
        return tuple.__new__(Classification, (tier, score, confidence, agentic,
                                              agentic >= s.agentic_threshold, tuple(signals)))

    def _tier(self, score: float, formal: float) -> tuple[str, float]:
        low, mid, high = self.s.boundaries
        evidence = self.s.reasoning_min_evidence
        if score < low:
            return "SIMPLE", low - score
        if score < mid:
            return "MEDIUM", min(score - low, mid - score)
        if score >= high and formal >= evidence:
            return "REASONING", min(score - high, formal - evidence)
        # REASONING needs both a high score and formal evidence: the distance to it is the larger gap
        return "COMPLEX", min(score - mid, max(high - score, evidence - formal))

    def _ambiguous(self, tier: str, score: float, formal: float) -> str:
        choice = self.s.ambiguous_default_tier
        if choice != "up":
            return choice
        low, mid, high = self.s.boundaries
        upper = {"SIMPLE": low, "MEDIUM": mid, "COMPLEX": high}.get(tier)
        lower = {"MEDIUM": low, "COMPLEX": mid, "REASONING": high}.get(tier)
        if upper is None or (lower is not None and score - lower < upper - score):
            return tier  # nearer the lower boundary: already the safer tier
        nxt = TIERS[TIERS.index(tier) + 1]
        return "COMPLEX" if nxt == "REASONING" and formal < self.s.reasoning_min_evidence else nxt

    def _signals(self, form: Shape, agentic: float, shown: dict[str, list[str]],
                 values: dict[str, float]) -> list[str]:
        signals = [f"{_LABELS[dim]} ({', '.join(sorted(words)[:3]) if len(words) > 1 else words[0]})"
                   for dim, words in shown.items()]
        if len(values) > len(shown):
            context = [_LABELS[d] for d in values if d not in shown]
            signals.append(f"context ({', '.join(context[:4])})")
        if form.length <= -0.6 or form.length >= 0.6:
            signals.append("short" if form.length < 0 else "long")
        signals += [label for index, label in LABELS if form[index] >= 0.5]
        if agentic >= self.s.agentic_threshold:
            signals.append(f"agentic-task ({agentic:.2f})")
        return signals
