"""Structural dimensions: what the shape of a request says, independent of its words."""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from .features import RequestView, text_tokens

SHORT_TOKENS, LONG_TOKENS = 20, 50  # "simple" cues fade out between these instruction lengths
PROBE_CHARS = 2000  # regex-based checks only look at this much of the text

_LIST_ITEM = re.compile(r"(?m)^[ \t]*(?:\d{1,2}[.)]|[-*•])[ \t]+\S")
_MATH_CHARS = frozenset("√∑∏∫≤≥≠≈∞∀∃∈⊆∪∩Ωθλσμ²³")
_MATH_TERMS = re.compile(r"\b[a-zA-Z]_\{?[a-zA-Z0-9]|\b[a-zA-Z]\([a-zA-Z0-9+-]{1,5}\)(?!\s*[{:])")
_FILE = re.compile(
    r"\.(?<=\w\.)(?:py|js|ts|tsx|jsx|go|rs|java|rb|php|cpp|cs|json|ya?ml|toml|md|txt|cfg|ini|sh|"
    r"sql|lock|env|html|css)\b"
)
_PATH = re.compile(r"/(?<=\w/)[\w.-]+\.\w{1,5}\b")
_ARITHMETIC = re.compile(
    r"(?<![\w.^])\d{1,4}(?:\.\d+)?\s*(?:[+*×÷]|\s[-x/]\s|times|plus|minus|divided by|%\s*of)"
    r"\s*\d{1,4}(?:\.\d+)?(?![\w.^(])"
)
_NUMBERS = re.compile(r"\d+")
_DIGITS = frozenset("0123456789")
_FENCED = re.compile(r"```.*?(?:```|\Z)", re.S)
_WIDE_COMMAS = ("，", "、", "،")
# system-scale numbers: 100,000 / 5.000 / 500 000 / 12345 / 50M / 10k / 2 TB / 5000 rps
_SCALE = re.compile(
    r"\d{1,3}(?:[,.\u00a0\u202f]\d{3})+(?!\d)|\d{5,}|\d+(?:\.\d+)?\s?(?:k|m|b|bn|mm|tb|gb|pb)\b"
    r"|\d+\s?(?:qps|rps|tps|ms)\b", re.I)


class Shape(NamedTuple):
    """Structural dimension values: 0..1, except ``length`` (-1..1)."""

    length: float  # -1 for a few words .. +1 for hundreds (instruction only, log scale)
    code_block: float  # fenced or code-shaped text
    multi_step: float  # numbered / bulleted lists
    enumeration: float  # many comma-separated requirements
    questions: float  # several questions (? and ？)
    math_notation: float  # ^ √ ∑ ≤, f(x), a_n, ...
    scale: float  # system-scale numbers (50M users, 100,000 writes, 2 TB, 10k rps)
    trivial_math: float  # a short question about small-number arithmetic
    brevity: float  # 1 for short instructions, down to 0.3 for long ones
    file_paths: float
    tool_loop: float
    agent_question: float  # the instruction asks a question (less likely an agent task)


# the fields that add to the tier score, in Shape order
SCORED = Shape._fields[:8]
LABELS = ((1, "code block"), (2, "multi-step"), (3, "many requirements"),
          (4, "several questions"), (5, "math notation"), (6, "large scale"),
          (7, "trivial arithmetic"), (9, "file paths"), (10, "tool loop"))


def _trivial_arithmetic(text: str, own_tokens: int, notation: int) -> bool:
    """A short question about small-number arithmetic ("what is 2+2", "15% of 80")."""
    if own_tokens >= 40 or notation or not _DIGITS.intersection(text):
        return False
    return len(_NUMBERS.findall(text)) in (2, 3) and _ARITHMETIC.search(text) is not None


def shape(view: RequestView) -> Shape:
    """The structural dimensions of a request."""
    instruction = view.instruction
    body = instruction + "\n" + view.material[:PROBE_CHARS] if view.material else instruction
    text = _FENCED.sub(" ", instruction) if "```" in instruction else instruction
    own = text_tokens(text)
    questions = text.count("?")
    commas = text.count(",") + text.count(";")
    notation = body.count("^")
    if not body.isascii():
        questions += text.count("？")
        commas += sum(map(text.count, _WIDE_COMMAS))
        notation += sum(map(body.count, _MATH_CHARS.intersection(body)))
    if "(" in body or "_" in body:
        notation += len(_MATH_TERMS.findall(body, 0, PROBE_CHARS))
    length = math.log2(own / 40) / 3 if own else -1.0
    code = 0.5 * ("```" in body) + (body.count("{") + body.count(";") + body.count("=>")
                                    + body.count("==")) / 8
    items = len(_LIST_ITEM.findall(text, 0, PROBE_CHARS)) / 4 if "\n" in text else 0.0
    brevity = (LONG_TOKENS - own) / (LONG_TOKENS - SHORT_TOKENS)
    files = ("." in text and _FILE.search(text)) or ("/" in text and _PATH.search(text))
    scale = len(_SCALE.findall(text, 0, PROBE_CHARS)) if _DIGITS.intersection(text) else 0
    # tuple.__new__ skips NamedTuple's Python-level __new__ (this runs on every request)
    return tuple.__new__(Shape, (
        -1.0 if length < -1.0 else 1.0 if length > 1.0 else length,
        1.0 if code > 1.0 else code,
        1.0 if items > 1.0 else items,
        0.0 if commas <= 1 else 1.0 if commas >= 6 else (commas - 1) / 5,
        0.0 if questions <= 1 else 1.0 if questions >= 4 else (questions - 1) / 3,
        1.0 if notation >= 3 else notation / 3,
        1.0 if scale >= 2 else scale / 2,
        1.0 if _trivial_arithmetic(text, own, notation) else 0.0,
        0.3 if brevity < 0.3 else 1.0 if brevity > 1.0 else brevity,
        1.0 if files else 0.0,
        1.0 if view.tool_loop else 0.0,
        1.0 if questions else 0.0,
    ))
