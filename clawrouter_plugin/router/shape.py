"""Structural features: what the shape of a request says, independent of its words."""

from __future__ import annotations

import re
from typing import NamedTuple

from .features import RequestView, text_tokens
from .ngrams import latin1

PROBE_CHARS = 2000  # regex-based checks only look at this much of the text

_LIST_ITEM = re.compile(r"(?m)^[ \t]*(?:\d{1,2}[.)]|[-*•])[ \t]+\S")
_MATH_SYMBOLS = "√∑∏∫≤≥≠≈∞∀∃∈⊆∪∩Ωθλσμ²³"
_MATH_CHARS = re.compile(f"[{_MATH_SYMBOLS}]")
_MATH_LATIN1 = tuple(ch for ch in _MATH_SYMBOLS if ord(ch) < 256)  # the only ones Latin-1 has
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
_FENCED = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_WIDE_COMMAS = ("，", "、", "،")
# bytes table keeping digits, "," "." and the magnitude suffixes k / m / b; the rest → space
_NUMERIC = bytes(c if chr(c) in "0123456789,.kKmMbB" else 32 for c in range(256))
_SUFFIXES = b"kKmMbB"
_NOT_DIGITS = bytes(c for c in range(256) if not 48 <= c <= 57)


def numbers(text: str) -> list[bytes]:
    """The numbers in ``text`` as written ("12", "100,000", "50M"), found without a regex."""
    raw = text.encode("utf-8", "surrogatepass")
    if not raw.translate(None, _NOT_DIGITS):
        return []
    return [token for token in raw.translate(_NUMERIC).split() if token[:1].isdigit()]


def _large(number: bytes) -> bool:
    """System-scale: 50M / 10k / 3B, 100,000 or 5.000 (grouped thousands), or 5+ digits."""
    body = number.rstrip(_SUFFIXES)
    if len(body) < len(number):
        return body[-1:].isdigit()
    body = body.rstrip(b".,")
    groups = body.replace(b",", b".").split(b".")
    if len(groups) > 1:
        return all(len(group) == 3 for group in groups[1:])
    return len(body) >= 5


class Shape(NamedTuple):
    """Structural feature values, 0..1 (features of the classifier)."""

    code_block: float  # fenced or code-shaped text
    multi_step: float  # numbered / bulleted lists
    enumeration: float  # many comma-separated requirements
    questions: float  # several questions (? and ？)
    math_notation: float  # ^ √ ∑ ≤, f(x), a_n, ...
    scale: float  # system-scale numbers (50M users, 100,000 writes, 10k requests)
    trivial_math: float  # a short question about small-number arithmetic
    file_paths: float
    agent_question: float  # the instruction asks a question (less likely an agent task)


_OPERATORS = ("+", "*", "×", "÷", "% of", " - ", " x ", " / ", "times", "plus", "minus",
              "divided")


def _trivial_arithmetic(text: str, own_tokens: int, notation: int, count: int) -> bool:
    """A short question about small-number arithmetic ("what is 2+2", "15% of 80")."""
    return (own_tokens < 40 and not notation and count in (2, 3)
            and any(op in text for op in _OPERATORS) and _ARITHMETIC.search(text) is not None)


def shape(view: RequestView) -> Shape:
    """The structural features of a request."""
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
        if latin1(body):
            notation += sum(map(body.count, _MATH_LATIN1))
        else:
            notation += len(_MATH_CHARS.findall(body))  # one scan, no str per character
    if "(" in body or "_" in body:
        notation += len(_MATH_TERMS.findall(body, 0, PROBE_CHARS))
    code = 0.5 * ("```" in body) + (body.count("{") + body.count(";") + body.count("=>")
                                    + body.count("==")) / 8
    items = len(_LIST_ITEM.findall(text, 0, PROBE_CHARS)) / 4 if "\n" in text else 0.0
    files = ("." in text and _FILE.search(text)) or ("/" in text and _PATH.search(text))
    found = numbers(text[:PROBE_CHARS])
    scale = sum(map(_large, found)) if found else 0
    # tuple.__new__ skips NamedTuple's Python-level __new__ (this runs on every request)
    return tuple.__new__(Shape, (
        min(code, 1.0),
        min(items, 1.0),
        0.0 if commas <= 1 else 1.0 if commas >= 6 else (commas - 1) / 5,
        0.0 if questions <= 1 else 1.0 if questions >= 4 else (questions - 1) / 3,
        1.0 if notation >= 3 else notation / 3,
        1.0 if scale >= 2 else scale / 2,
        1.0 if found and _trivial_arithmetic(text, own, notation, len(found)) else 0.0,
        1.0 if files else 0.0,
        1.0 if questions else 0.0,
    ))
