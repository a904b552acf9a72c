"""Keyword dimensions: multilingual keyword lists → one value (0..1) per dimension.

These values are features of the learned classifier (classifier.py); they carry what the
keyword lists know in every language (``доказ*`` and ``证明`` are both "reasoning"). Each
dimension's value grows with the distinct keywords found. The ask and its context (earlier
user turns, the system prompt and pasted material, each with a lower weight and capped at it)
give separate values, so that the context cannot pass for the ask. Agent keywords in the
system prompt or pasted material are ignored.
"""

from __future__ import annotations

from functools import lru_cache

from .features import RequestView
from .keywords import KeywordMatcher, normalize
from .settings import KEYWORD_DIMS, Settings

AGENT_KEYWORD_DIMS = frozenset(("agent_action", "agent_object", "agent_verify", "agent_sequence"))
CONTEXT_CACHE = 256  # scans of texts seen again (system prompts, earlier turns, tool loops) per Scorer


class Scorer:
    """Keyword-dimension values of requests, from precompiled keyword tables; one per Router."""

    def __init__(self, settings: Settings):
        self.s = settings
        self.matcher = KeywordMatcher(settings.keywords)
        self._inv_sat = {dim: 1.0 / settings.saturation[dim] for dim in KEYWORD_DIMS}
        # system prompts, earlier turns and (in tool loops) the last user message come back
        # unchanged on every turn of a conversation
        self._scan_context = lru_cache(maxsize=CONTEXT_CACHE)(self._scan_text)

    def _scan_text(self, text: str) -> list[tuple[str, str]]:
        return self.matcher.scan(normalize(text))

    def clear_cache(self) -> None:
        """Forget cached scans of system prompts and earlier turns (benchmarks, tests)."""
        self._scan_context.cache_clear()

    def values(self, view: RequestView) -> tuple[dict[str, float], dict[str, float]]:
        """Keyword-dimension values (0..1) of the ask, and of its context (pasted material,
        earlier turns, system prompt: keywords not in the ask, each segment counted with its
        weight). Dimensions without keywords are left out."""
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
        context: dict[str, float] = {}
        if view.material or view.history or view.system:
            self._context(view, shown, context)
        return values, context

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
