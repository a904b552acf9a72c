"""The user's ask, found once: host wrapping undone, relays recognised, hostile input survived."""

from __future__ import annotations

import time

import pytest

from clawrouter_plugin.ask import (
    NO_ASK,
    conversation_opening,
    find_ask,
    is_host_prompt,
    read_envelope,
    strip_runtime,
)
from tests.support.host_shapes import (
    CONTEXT_BLOCK,
    RUNTIME,
    SYSTEM_PROMPT,
    openclaw_turn,
    plain_turn,
    whatsapp_turn,
)


def test_the_fixture_looks_like_openclaw():
    assert 46_000 <= len(SYSTEM_PROMPT) <= 48_000
    body = openclaw_turn("hello")
    assert body["messages"][-1]["content"][0]["text"] == CONTEXT_BLOCK
    assert body["messages"][-2]["content"].endswith(RUNTIME)
    assert 11 <= len(body["tools"]) <= 14 and body["stream"] is True


def test_plain_request():
    ask = find_ask(plain_turn("What is 2+2?", system="Be brief."))
    assert ask == ("What is 2+2?", 1, False, "", False, ())


def test_openclaw_first_turn_gives_the_users_words():
    body = openclaw_turn("hello")
    ask = find_ask(body)
    assert ask.text == "hello"
    assert ask.index == len(body["messages"]) - 2  # not the trailing context block
    assert not ask.relayed and ask.channel == "" and ask.host_system


def test_a_turn_of_only_tool_results_keeps_the_last_real_ask():
    body = openclaw_turn("summarise the README", first_turn=False, tool_results=True)
    assert body["messages"][-2]["role"] == "tool"
    ask = find_ask(body)
    assert ask.text == "summarise the README"
    assert body["messages"][ask.index]["content"].endswith("summarise the README")


def test_relayed_message_names_its_channel():
    ask = find_ask(whatsapp_turn("/img2img --image ~/photo.png make it blue"))
    assert ask.text == "/img2img --image ~/photo.png make it blue"
    assert ask.relayed and ask.channel == "WhatsApp"


@pytest.mark.parametrize(("text", "relayed", "channel", "rest"), [
    ("[Mon 2024-01-15 10:30 UTC] hi", False, "", "hi"),
    ("[Thu 2026-12-03 07:45 UTC] hi", False, "", "hi"),
    ("[2026-12-03T07:45:12.5Z] hi", False, "", "hi"),
    ("[Thursday, 2026-12-03 07:45 Pacific Standard Time] hi", False, "", "hi"),
    ("[WhatsApp +1555 Mon 2026-01-05 16:26:34 PST] hi", True, "WhatsApp", "hi"),
    ("[Telegram Bob (@bob) id:42 +5m 2026-01-05 16:26 PST] hi", True, "Telegram", "hi"),
    ("[Slack #general Fri 2026-01-09 08:00:01 GMT+1] hi", True, "Slack", "hi"),
    ("[Discord guild#dev alice] hi", True, "Discord", "hi"),  # a known channel, no date
    ("[Signal] hi", True, "Signal", "hi"),
    ("  [Thu 2026-12-03 07:45 UTC] hi", False, "", "hi"),
    ("[WIP] fix the parser", False, "", "[WIP] fix the parser"),
    ("[x]", False, "", "[x]"),
    ("[1, 2, 3] sort this list", False, "", "[1, 2, 3] sort this list"),
    ("see [Mon 2024-01-15 10:30 UTC] here", False, "", "see [Mon 2024-01-15 10:30 UTC] here"),
    ("[" + "a" * 300 + " 2026-01-05 16:26] hi", False, "", "[" + "a" * 300 + " 2026-01-05 16:26] hi"),
    ("[line one\n2026-01-05 16:26] hi", False, "", "[line one\n2026-01-05 16:26] hi"),
])
def test_envelope_rules(text, relayed, channel, rest):
    assert read_envelope(text) == (rest, relayed, channel)


def test_runtime_suffix_is_removed_only_when_it_is_one():
    assert strip_runtime("hello" + RUNTIME) == "hello"
    kept = ["Runtime: how long does quicksort take?", "explain\n\nRuntime: it is slow",
            "a\n\nRuntime: x=1\nmore text", "inline Runtime: agent=main"]
    for text in kept:
        assert strip_runtime(text) == text


def test_host_boilerplate_is_recognised_and_a_users_prompt_is_not():
    assert is_host_prompt(SYSTEM_PROMPT)
    assert not is_host_prompt("Answer in JSON.")
    essay = "The history of the printing press. " * 2000  # long, but no host markers
    assert not is_host_prompt(essay)
    # a long prompt with two host sections, identity line or not
    assert is_host_prompt("## Tooling\n- read\n" + "x " * 5000 + "\n## Runtime\nagent=main")
    assert find_ask(plain_turn("hi", system="Answer in JSON.")).host_system is False


def test_history_is_earlier_asks_newest_first_without_host_blocks():
    body = openclaw_turn("and now?", earlier=(("first question", "a1"), ("second one", "a2")))
    body["messages"].insert(3, {"role": "user", "content": CONTEXT_BLOCK})
    ask = find_ask(body, history=5)
    assert ask.text == "and now?"
    assert ask.history == ("second one", "first question")
    assert find_ask(body, history=1).history == ("second one",)


def test_opening_skips_host_blocks_and_the_runtime_line():
    first = conversation_opening(openclaw_turn("hello"))
    later = conversation_opening(openclaw_turn("more", earlier=(("hello", "hi!"),)))
    assert first.first == later.first == "[Thu 2026-12-03 07:45 UTC] hello"
    assert first.host_system and first.system == SYSTEM_PROMPT


@pytest.mark.parametrize("body", [
    None, 3, "text", [], {}, {"messages": None}, {"messages": "hi"}, {"messages": [None, 3, "x"]},
    {"messages": [{"role": "user", "content": 5}]},
    {"messages": [{"role": "user", "content": [None, 7, {"type": "text", "text": 9}]}]},
    {"messages": [{"role": "system", "content": {"a": 1}}, {"role": ["user"], "content": "x"}]},
    {"messages": [{"role": "user", "content": "[" * 100_000}]},
    {"messages": [{"role": "user", "content": "Runtime: " * 100_000}]},
])
def test_hostile_input_never_raises(body):
    ask = find_ask(body, history=3)
    assert ask.index == -1 or isinstance(ask.text, str)
    conversation_opening(body)


def test_hostile_content_gives_no_ask():
    assert find_ask({"messages": [{"role": "user", "content": 5}]}) == NO_ASK._replace(index=0)
    assert find_ask({"messages": [{"role": "assistant", "content": "x"}]}) == NO_ASK


def test_huge_text_is_read_in_bounded_time():
    huge = "[" + "x" * 5_000_000 + "]\n\nRuntime: " + "y" * 5_000_000
    body = {"messages": [{"role": "system", "content": "## Tooling " * 1_000_000},
                         {"role": "user", "content": huge}]}
    started = time.perf_counter()
    for _ in range(20):
        find_ask(body)
    assert (time.perf_counter() - started) / 20 < 0.05  # generous: about 10 µs in practice


def test_openclaw_request_is_read_in_microseconds():
    body = openclaw_turn("refactor the parser", earlier=(("hello", "hi"),) * 10,
                         tool_results=True)
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        find_ask(body, history=3)
    per_call = (time.perf_counter() - started) / rounds
    assert per_call < 0.002, per_call  # generous for a shared machine; ~10 µs measured
