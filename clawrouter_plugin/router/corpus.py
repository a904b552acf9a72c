"""Load, validate and split the labelled routing corpus (``*.jsonl`` files in one folder).

Used by the corpus tests, ``bench/eval_corpus.py``, the split freeze script and the classifier
training; never on the request path. The folder is always passed in: the package does not know
where the repository's corpus lives.

- :func:`load_corpus` reads every ``*.jsonl`` file of a folder (sorted by name), checks each row
  and raises :class:`CorpusError` naming ``file:line`` for the first bad one.
- :func:`expand` returns a row's request body with its ``pad`` filler inserted.
- :func:`split_of` puts a row in ``train``, ``validation`` or ``test`` from its id alone, so
  adding rows never moves existing ones; :func:`split_digest` fingerprints the test split and
  :func:`rows_digest` any set of rows (the second held-out split, a folder of its own).
- :func:`near_copies` finds train/validation rows whose ask repeats a held-out row's ask, which
  would let the held-out splits measure memory instead of routing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from .filler import KINDS, filler
from .settings import TIERS

FIELDS = {"id", "tier", "agentic", "lang", "category", "reason", "body"}
OPTIONAL = {"pad"}
ROLES = {"system", "developer", "user", "assistant", "tool"}
PAD_MIN, PAD_MAX = 5_000, 600_000
SPLITS = ("train", "validation", "test")
# percent boundaries: [0, 60) train, [60, 80) validation, [80, 100) test
_SPLIT_EDGES = (60, 80)
_SPLIT_SALT = b"clawrouter-corpus-split-v1:"
# issue #13's targets for the complete corpus
MIN_ROWS, MIN_LANGS, MIN_NON_ENGLISH, MIN_TEST = 3000, 10, 0.25, 600
_ID = re.compile(r"[a-z]+-\d{4,}")
_LANG = re.compile(r"[a-z]{2}")
_CATEGORY = re.compile(r"[a-z][a-z0-9_]*")
NEAR_COPY = 0.6  # Jaccard similarity of the asks' character 4-gram sets


class CorpusError(ValueError):
    """A corpus row that breaks the format; the message starts with ``file:line``."""


def _check_body(body: Any) -> str | None:
    """Why ``body`` is not a usable chat-completions request, or None."""
    if not isinstance(body, dict):
        return "body must be an object"
    if body.get("model") != "blockrun/auto":
        return 'body.model must be "blockrun/auto"'
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "body.messages must be a non-empty list"
    call_ids: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return f"body.messages[{i}] needs a role out of {sorted(ROLES)}"
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            return f"body.messages[{i}].content must be a string, a list or null"
        calls = message.get("tool_calls") or []
        if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
            return f"body.messages[{i}].tool_calls must be a list of objects"
        call_ids.update(str(call.get("id")) for call in calls)
        if message["role"] == "tool" and message.get("tool_call_id") not in call_ids:
            return f"body.messages[{i}] answers no earlier tool call"
    if not any(m["role"] == "user" for m in messages):
        return "body.messages has no user message"
    if "tools" in body and not isinstance(body["tools"], list):
        return "body.tools must be a list"
    return None


def _check_pad(pad: Any) -> str | None:
    """Why ``pad`` is not a valid filler spec, or None."""
    if not isinstance(pad, dict) or set(pad) != {"chars", "kind", "seed"}:
        return "pad must be {chars, kind, seed}"
    chars, seed = pad["chars"], pad["seed"]
    if type(chars) is not int or not PAD_MIN <= chars <= PAD_MAX:
        return f"pad.chars must be an integer from {PAD_MIN} to {PAD_MAX}"
    if pad["kind"] not in KINDS:
        return f"pad.kind must be one of {', '.join(KINDS)}"
    if type(seed) is not int:
        return "pad.seed must be an integer"
    return None


def check_row(row: Any) -> str | None:
    """Why ``row`` is not a valid corpus row, or None when it is."""
    if not isinstance(row, dict):
        return "a row must be a JSON object"
    missing = FIELDS - set(row)
    if missing:
        return f"missing field(s): {', '.join(sorted(missing))}"
    extra = set(row) - FIELDS - OPTIONAL
    if extra:
        return f"unknown field(s): {', '.join(sorted(extra))}"
    problems = (
        (not isinstance(row["id"], str) or not _ID.fullmatch(row["id"]),
         f"id {row['id']!r} must look like a-0001"),
        (row["tier"] not in TIERS, f"tier {row['tier']!r} must be one of {', '.join(TIERS)}"),
        (type(row["agentic"]) is not bool, "agentic must be true or false"),
        (not isinstance(row["lang"], str) or not _LANG.fullmatch(row["lang"]),
         f"lang {row['lang']!r} must be a two-letter ISO 639-1 code"),
        (not isinstance(row["category"], str) or not _CATEGORY.fullmatch(row["category"]),
         f"category {row['category']!r} must be a snake_case name"),
        (not isinstance(row["reason"], str) or not row["reason"].strip(),
         "reason must be a non-empty string"),
    )
    for bad, message in problems:
        if bad:
            return message
    return _check_body(row["body"]) or ("pad" in row and _check_pad(row["pad"])) or None


def load_corpus(folder: str | Path) -> list[dict]:
    """Every row of every ``*.jsonl`` file in ``folder``, checked; ids are unique."""
    rows: list[dict] = []
    seen: dict[str, str] = {}
    files = sorted(Path(folder).glob("*.jsonl"))
    if not files:
        raise CorpusError(f"{folder}: no *.jsonl files")
    for path in files:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                where = f"{path.name}:{number}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CorpusError(f"{where}: not valid JSON ({exc.msg})") from None
                problem = check_row(row)
                if problem:
                    raise CorpusError(f"{where}: {problem}")
                if row["id"] in seen:
                    raise CorpusError(f"{where}: duplicate id {row['id']} "
                                      f"(first at {seen[row['id']]})")
                seen[row["id"]] = where
                rows.append(row)
    return rows


def expand(row: dict) -> dict:
    """The row's request body, with its ``pad`` filler (if any) before the last user ask.

    The filler and a blank line go at the start of the last user message's text: its string
    content, or the first text part of list content (a text part is added in front when the
    list has none). The row itself is not changed.
    """
    pad = row.get("pad")
    if not pad:
        return row["body"]
    body = copy.deepcopy(row["body"])
    text = filler(pad["chars"], pad["kind"], pad["seed"]) + "\n\n"
    message = next(m for m in reversed(body["messages"]) if m["role"] == "user")
    content = message.get("content")
    if isinstance(content, list):
        part = next((p for p in content if isinstance(p, dict) and p.get("type") == "text"),
                    None)
        if part is None:
            content.insert(0, {"type": "text", "text": text})
        else:
            part["text"] = text + part.get("text", "")
    else:
        message["content"] = text + (content or "")
    return body


def split_of(row_id: str) -> str:
    """``train``, ``validation`` or ``test`` for a row id (60/20/20 by a SHA-256 of the id).

    The split depends on the id only, so adding or relabelling rows never moves another row.
    """
    digest = hashlib.sha256(_SPLIT_SALT + row_id.encode("utf-8")).digest()
    percent = int.from_bytes(digest[:8], "big") % 100
    return SPLITS[sum(percent >= edge for edge in _SPLIT_EDGES)]


def in_split(rows: list[dict], *names: str) -> list[dict]:
    """The rows that belong to any of the named splits, in their original order."""
    unknown = set(names) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split(s): {', '.join(sorted(unknown))}")
    return [row for row in rows if split_of(row["id"]) in names]


def canonical(row: dict) -> str:
    """One row as canonical JSON (sorted keys, no spaces, UTF-8 text kept as is)."""
    return json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def split_digest(rows: list[dict], name: str = "test") -> dict[str, Any]:
    """``{"split", "count", "sha256"}`` of one split of the corpus (see :func:`rows_digest`)."""
    return rows_digest(in_split(rows, name), name)


def rows_digest(rows: list[dict], name: str) -> dict[str, Any]:
    """``{"split", "count", "sha256"}`` of ``rows`` (called ``name``): the hash covers the rows
    sorted by id.

    Rows are hashed as written (``pad`` specs, not generated filler), so the digest does not
    depend on the Python version that generates the filler.
    """
    digest = hashlib.sha256()
    for row in sorted(rows, key=lambda row: row["id"]):
        digest.update(canonical(row).encode("utf-8") + b"\n")
    return {"split": name, "count": len(rows), "sha256": digest.hexdigest()}


def shortfalls(rows: list[dict]) -> list[str]:
    """What the corpus still lacks against the issue #13 targets (empty when complete)."""
    return _size_shortfalls(rows, MIN_ROWS) + _size_shortfalls(in_split(rows, "test"), MIN_TEST,
                                                                 "test rows", languages=False)


def holdout_shortfalls(rows: list[dict]) -> list[str]:
    """What a second held-out split (a folder of its own, every row held out) still lacks:
    the size, languages and share not in English asked of the first (empty when complete)."""
    return _size_shortfalls(rows, MIN_TEST)


def _size_shortfalls(rows: list[dict], minimum: int, what: str = "rows", *,
                     languages: bool = True) -> list[str]:
    """Which of the size, language count and non-English share checks ``rows`` fail."""
    checks = [(len(rows) >= minimum, f"{len(rows)} {what}, need {minimum}")]
    if languages:
        langs = {row["lang"] for row in rows}
        non_english = sum(row["lang"] != "en" for row in rows) / max(1, len(rows))
        checks += [(len(langs) >= MIN_LANGS, f"{len(langs)} languages, need {MIN_LANGS}"),
                   (non_english >= MIN_NON_ENGLISH,
                    f"{non_english:.1%} not English, need {MIN_NON_ENGLISH:.0%}")]
    return [message for ok, message in checks if not ok]


def _ask_grams(row: dict) -> frozenset[str]:
    """The character 4-grams of the row's last user ask (lower case, single spaces)."""
    content = next(m for m in reversed(row["body"]["messages"]) if m["role"] == "user")["content"]
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    text = " ".join(str(content or "").lower().split())
    return frozenset(text[i:i + 4] for i in range(max(1, len(text) - 3)))


def near_copies(rows: list[dict], held: list[dict] | None = None,
                threshold: float = NEAR_COPY) -> list[tuple[str, str, float]]:
    """``(row id, held-out row id, similarity)`` for every train/validation row of ``rows``
    whose last user ask is at least ``threshold`` similar (Jaccard over character 4-grams) to
    a held-out row's: the test split's, and those of ``held`` (rows kept outside the corpus)."""
    tests = [(row["id"], _ask_grams(row)) for row in in_split(rows, "test") + (held or [])]
    index: dict[str, list[int]] = {}
    for number, (_, grams) in enumerate(tests):
        for gram in grams:
            index.setdefault(gram, []).append(number)
    found = []
    for row in in_split(rows, "train", "validation"):
        grams = _ask_grams(row)
        shared: dict[int, int] = {}
        for gram in grams:
            for number in index.get(gram, ()):
                shared[number] = shared.get(number, 0) + 1
        for number, count in shared.items():
            similarity = count / (len(grams) + len(tests[number][1]) - count)
            if similarity >= threshold:
                found.append((row["id"], tests[number][0], round(similarity, 3)))
    return found
