"""The labelled routing corpus (tests/router/corpus/): loader, pad filler, splits and the lock."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from clawrouter_plugin.router.corpus import (
    CorpusError,
    expand,
    holdout_shortfalls,
    in_split,
    load_corpus,
    near_copies,
    rows_digest,
    shortfalls,
    split_digest,
    split_of,
)
from clawrouter_plugin.router.evaluate import Report, format_report
from clawrouter_plugin.router.filler import KINDS, filler

CORPUS = Path(__file__).parent / "corpus"
LOCK = CORPUS / "test-split.lock"
HOLDOUT = Path(__file__).parent / "holdout"  # the second held-out split, a folder of its own
HOLDOUT_LOCK = HOLDOUT / "holdout.lock"


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    return load_corpus(CORPUS)


@pytest.fixture(scope="module")
def holdout() -> list[dict]:
    return load_corpus(HOLDOUT)


def _row(row_id: str = "a-0001", content: object = "title?", **extra: object) -> dict:
    return {"id": row_id, "tier": "SIMPLE", "agentic": False, "lang": "en",
            "category": "long_input_trivial", "reason": "a trivial ask about a long input",
            "body": {"model": "blockrun/auto",
                     "messages": [{"role": "system", "content": "be brief"},
                                  {"role": "user", "content": "earlier ask"},
                                  {"role": "assistant", "content": "earlier answer"},
                                  {"role": "user", "content": content}]},
            **extra}


def _write(folder: Path, name: str, rows: list[object]) -> None:
    lines = [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)
             for row in rows]
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- the filler -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_filler_has_the_exact_length_and_is_deterministic(kind: str) -> None:
    for chars in (1_000, 5_003, 77_777):
        text = filler(chars, kind, 42)
        assert len(text) == chars
        assert text == filler(chars, kind, 42)
    assert filler(5_000, kind, 1) != filler(5_000, kind, 2)
    # a longer document starts with the shorter one: the length only cuts the same stream
    assert filler(9_000, kind, 3).startswith(filler(4_000, kind, 3))


def test_filler_looks_like_its_kind() -> None:
    log = filler(20_000, "log", 5).splitlines()
    assert all(line[:4] == "2024" and "[" in line for line in log[:-1])
    csv = filler(20_000, "csv", 5).splitlines()
    assert csv[0].startswith("order_id,") and {line.count(",") for line in csv[:-1]} == {7}
    assert "def " in filler(5_000, "code", 5) and "return " in filler(5_000, "code", 5)
    for line in filler(20_000, "json", 5).splitlines()[1:-1]:
        json.loads(line.strip().rstrip(","))  # every complete record parses
    prose = filler(20_000, "prose", 5)
    assert prose.count(". ") > 100 and "\n\n" in prose


def test_filler_of_600k_chars_is_fast() -> None:
    for kind in KINDS:
        start = time.perf_counter()
        filler(600_000, kind, 9)
        # typically 8-50 ms; generous for a shared machine
        assert time.perf_counter() - start < 0.5, kind


def test_filler_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown filler kind"):
        filler(100, "poetry", 1)


# --- expanding pad ----------------------------------------------------------------------------

def test_pad_goes_before_the_last_user_ask_in_string_content() -> None:
    row = _row(pad={"chars": 12_345, "kind": "log", "seed": 7})
    before = json.dumps(row)
    body = expand(row)
    text = body["messages"][-1]["content"]
    assert text == filler(12_345, "log", 7) + "\n\n" + "title?"
    assert body["messages"][1]["content"] == "earlier ask"  # only the LAST user message
    assert body["messages"][0]["content"] == "be brief"
    assert json.dumps(row) == before  # the row is not modified
    assert expand(row) == body


def test_pad_goes_into_the_first_text_part_of_list_content() -> None:
    parts = [{"type": "image_url", "image_url": {"url": "https://example.test/a.png"}},
             {"type": "text", "text": "what is this about?"},
             {"type": "text", "text": "one line please"}]
    body = expand(_row(content=parts, pad={"chars": 5_000, "kind": "csv", "seed": 3}))
    got = body["messages"][-1]["content"]
    assert got[0] == parts[0]
    assert got[1]["text"] == filler(5_000, "csv", 3) + "\n\n" + "what is this about?"
    assert got[2] == parts[2]


def test_pad_adds_a_text_part_when_list_content_has_none() -> None:
    parts = [{"type": "image_url", "image_url": {"url": "https://example.test/a.png"}}]
    got = expand(_row(content=parts, pad={"chars": 5_000, "kind": "prose", "seed": 1}))
    assert got["messages"][-1]["content"] == [
        {"type": "text", "text": filler(5_000, "prose", 1) + "\n\n"}, parts[0]]


def test_row_without_pad_is_used_as_written() -> None:
    row = _row()
    assert expand(row) is row["body"]


# --- loading and checking ---------------------------------------------------------------------

@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "not valid JSON"),
    (json.dumps({k: v for k, v in _row().items() if k != "reason"}), "missing field(s): reason"),
    (json.dumps(_row(colour="red")), "unknown field(s): colour"),
    (json.dumps({**_row(), "tier": "HARD"}), "tier 'HARD'"),
    (json.dumps({**_row(), "agentic": "no"}), "agentic must be true or false"),
    (json.dumps({**_row(), "lang": "english"}), "lang 'english'"),
    (json.dumps({**_row(), "id": "0001"}), "id '0001'"),
    (json.dumps({**_row(), "reason": " "}), "reason must be"),
    (json.dumps({**_row(), "body": {"model": "gpt-4o", "messages": []}}), "body.model"),
    (json.dumps({**_row(), "body": {"model": "blockrun/auto", "messages": [
        {"role": "system", "content": "x"}]}}), "no user message"),
    (json.dumps({**_row(), "body": {"model": "blockrun/auto", "messages": [
        {"role": "robot", "content": "x"}]}}), "messages[0] needs a role"),
    (json.dumps(_row(pad={"chars": 5000, "kind": "xml", "seed": 1})), "pad.kind"),
    (json.dumps(_row(pad={"chars": 4_999, "kind": "log", "seed": 1})), "pad.chars"),
    (json.dumps(_row(pad={"chars": 600_001, "kind": "log", "seed": 1})), "pad.chars"),
    (json.dumps({**_row(), "body": {"model": "blockrun/auto", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1"}]},
        {"role": "tool", "tool_call_id": "call_2", "content": "{}"}]}}),
     "messages[2] answers no earlier tool call"),
    (json.dumps(_row(pad={"chars": 5000, "kind": "log"})), "pad must be"),
])
def test_a_bad_line_names_its_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    tool_round = {"model": "blockrun/auto", "messages": [
        {"role": "user", "content": "weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1"}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"c\": 3}"}]}
    _write(tmp_path, "a-good.jsonl", [_row("a-0001"), {**_row("a-0002"), "body": tool_round}])
    assert len(load_corpus(tmp_path)) == 2
    _write(tmp_path, "b-bad.jsonl", [_row("b-0001"), "", line])
    with pytest.raises(CorpusError) as caught:
        load_corpus(tmp_path)
    assert str(caught.value).startswith("b-bad.jsonl:3: ")
    assert message in str(caught.value)


def test_duplicate_ids_across_files_are_an_error(tmp_path: Path) -> None:
    _write(tmp_path, "a-one.jsonl", [_row("a-0001"), _row("a-0002")])
    _write(tmp_path, "a-two.jsonl", [_row("a-0002")])
    with pytest.raises(CorpusError, match=r"a-two.jsonl:1: duplicate id a-0002 "
                                          r"\(first at a-one.jsonl:2\)"):
        load_corpus(tmp_path)


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no \\*.jsonl files"):
        load_corpus(tmp_path)


# --- splits -----------------------------------------------------------------------------------

def test_split_depends_on_the_id_only_and_is_about_60_20_20() -> None:
    ids = [f"z-{n:04d}" for n in range(5_000)]
    splits = [split_of(i) for i in ids]
    assert splits == [split_of(i) for i in ids]
    shares = {name: splits.count(name) / len(ids) for name in ("train", "validation", "test")}
    assert 0.57 < shares["train"] < 0.63
    assert 0.17 < shares["validation"] < 0.23 and 0.17 < shares["test"] < 0.23


def test_adding_rows_moves_no_existing_row(tmp_path: Path) -> None:
    first = [_row(f"a-{n:04d}") for n in range(1, 301)]
    _write(tmp_path, "a-x.jsonl", first)
    before = {name: [r["id"] for r in in_split(load_corpus(tmp_path), name)]
              for name in ("train", "validation", "test")}
    digest = split_digest(load_corpus(tmp_path))
    _write(tmp_path, "b-x.jsonl", [_row(f"b-{n:04d}") for n in range(1, 301)])
    rows = load_corpus(tmp_path)
    for name, ids in before.items():
        now = [r["id"] for r in in_split(rows, name) if r["id"].startswith("a-")]
        assert now == ids
    # new rows in the test split change its digest; relabelling a test row changes it too
    assert split_digest(rows) != digest
    test_id = before["test"][0]
    relabelled = [{**r, "tier": "MEDIUM"} if r["id"] == test_id else r for r in rows]
    assert split_digest(relabelled) != split_digest(rows)
    assert split_of(test_id) == "test"
    # a train row may change without touching the frozen test split
    train_id = before["train"][0]
    edited = [{**r, "reason": "edited"} if r["id"] == train_id else r for r in rows]
    assert split_digest(edited) == split_digest(rows)
    # the file order does not matter
    assert split_digest(list(reversed(rows))) == split_digest(rows)


# --- the real corpus --------------------------------------------------------------------------

def test_the_corpus_is_well_formed(corpus: list[dict]) -> None:
    # load_corpus checked every row; check the pads expand to the length they ask for
    assert corpus
    padded = [row for row in corpus if "pad" in row][:20]
    for row in padded:
        last = next(m for m in reversed(expand(row)["messages"]) if m["role"] == "user")
        text = last["content"] if isinstance(last["content"], str) else next(
            p["text"] for p in last["content"] if p.get("type") == "text")
        assert text.startswith(filler(row["pad"]["chars"], row["pad"]["kind"],
                                      row["pad"]["seed"]) + "\n\n")


def test_the_lock_matches_the_current_test_split(corpus: list[dict]) -> None:
    lock = json.loads(LOCK.read_text("utf-8"))
    now = split_digest(corpus, "test")
    assert (now["count"], now["sha256"]) == (lock["count"], lock["sha256"]), (
        "the frozen test split changed: test rows were edited, added or removed. Test rows "
        "must not change once frozen; if the corpus is still being written, re-freeze with "
        "`python scripts/freeze_corpus_split.py` (see tests/router/corpus/README.md)")


def test_no_training_row_repeats_a_held_out_ask(corpus: list[dict], holdout: list[dict]) -> None:
    # a near-copy in train or validation would let a held-out split reward memory
    assert near_copies(corpus, holdout) == []


def test_near_copies_finds_a_reworded_test_ask() -> None:
    test_id = next(f"x-{n:04d}" for n in range(1, 999) if split_of(f"x-{n:04d}") == "test")
    train_id = next(f"x-{n:04d}" for n in range(1, 999) if split_of(f"x-{n:04d}") == "train")
    rows = [_row(test_id, "Design Slack."), _row(train_id, "design slack"),
            _row("x-9999", "What is the capital of France?")]
    found = near_copies(rows)
    assert [(a, b) for a, b, _ in found] == [(train_id, test_id)]


def test_near_copies_finds_a_reworded_holdout_ask() -> None:
    train_id = next(f"x-{n:04d}" for n in range(1, 999) if split_of(f"x-{n:04d}") == "train")
    rows = [_row(train_id, "Prove that there are infinitely many primes!"),
            _row("x-9999", "What is the capital of France?")]
    held = [_row("z-0001", "prove that there are infinitely many primes"),
            _row("z-0002", "capital of Peru?")]
    assert [(a, b) for a, b, _ in near_copies(rows, held)] == [(train_id, "z-0001")]
    assert near_copies(rows) == []  # without the held-out rows nothing repeats


def test_the_holdout_lock_matches_its_rows(holdout: list[dict]) -> None:
    lock = json.loads(HOLDOUT_LOCK.read_text("utf-8"))
    now = rows_digest(holdout, "holdout")
    assert (now["count"], now["sha256"]) == (lock["count"], lock["sha256"]), (
        "the second held-out split changed: its rows were edited, added or removed. They must "
        "not change once frozen (see tests/router/holdout/README.md)")
    assert not lock["draft"] and holdout_shortfalls(holdout) == []


def test_holdout_ids_are_not_corpus_ids(corpus: list[dict], holdout: list[dict]) -> None:
    assert not {row["id"] for row in corpus} & {row["id"] for row in holdout}


def test_the_frozen_corpus_meets_the_targets(corpus: list[dict]) -> None:
    if json.loads(LOCK.read_text("utf-8")).get("draft"):
        pytest.skip("the lock is a draft: the corpus is still being written "
                    f"({'; '.join(shortfalls(corpus))})")
    assert shortfalls(corpus) == []


def test_report_counts_over_and_under_routing() -> None:
    report = Report(total=4, correct=1)
    report.confusion.update({("SIMPLE", "SIMPLE"): 1, ("SIMPLE", "COMPLEX"): 1,
                             ("REASONING", "MEDIUM"): 2})
    assert (report.above, report.below) == (0.25, 0.5)
    assert "routed above the label: 25.0%" in format_report(report, "t")
