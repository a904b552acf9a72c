"""The router reads the user's ask: an agent host's wrapping changes neither the tier, the cache
key nor the command found, and the labelled sets route the same wrapped as plain."""

from __future__ import annotations

from pathlib import Path

import pytest

from clawrouter_plugin.ask import find_ask
from clawrouter_plugin.proxy.intercept import find_command
from clawrouter_plugin.router.evaluate import evaluate, load_rows
from clawrouter_plugin.state.cache_key import cache_key
from tests.support.host_shapes import (
    OPENCLAW_TOOLS,
    STAMP,
    SYSTEM_PROMPT,
    context_message,
    openclaw_turn,
    plain_turn,
    whatsapp_turn,
    wrap,
)

HERE = Path(__file__).parent
MAX_GAP = 0.03  # wrapped and plain accuracy on the labelled sets

ASKS = [
    "hello",
    "What is the capital of Australia?",
    "Translate 'good morning' into French.",
    "Write a Python function that merges two sorted lists and add unit tests for it.",
    "Prove that there are infinitely many primes, step by step.",
    "Design a distributed rate limiter for 50M users across three regions; compare the "
    "token bucket and sliding window approaches and their failure modes.",
    "/imagegen --model banana-pro a red kite over the sea",
]


@pytest.mark.parametrize("text", ASKS)
def test_ask_tier_and_command_are_the_same_wrapped_and_plain(router, text):
    plain = plain_turn(text)
    want = find_command(find_ask(plain), {"imagegen"})
    assert (want is not None) == text.startswith("/")
    for wrapped in (openclaw_turn(text), openclaw_turn(text, first_turn=False),
                    whatsapp_turn(text)):
        assert find_ask(wrapped).text == find_ask(plain).text == text
        assert router.route(wrapped).tier == router.route(plain).tier, text
        got = find_command(find_ask(wrapped), {"imagegen"})
        assert (got and (got.name, got.args)) == (want and (want.name, want.args))
    # a turn that is only tool results still reads the same ask (its tier may rise: a tool
    # loop is agent work, wrapped or not)
    looped = openclaw_turn(text, first_turn=False, tool_results=True)
    assert find_ask(looped).text == text


def test_hello_stays_simple_and_is_not_large_context(router):
    decision = router.route(openclaw_turn("hello"))
    assert decision.tier == "SIMPLE", decision.signals
    assert decision.input_tokens > 12_000  # the host's prompt is still paid for and sized
    assert not any(s.startswith("large-context") for s in decision.signals)


def test_a_long_paste_with_a_trivial_ask_is_not_raised(router):
    """No large-context override: the chain's context-window filter alone makes room."""
    pasted = "Here is our incident log:\n" + "line of log output 1234 ok\n" * 20_000
    decision = router.route(openclaw_turn(pasted + "\nhello"))
    assert not any(s.startswith("large-context") for s in decision.signals)
    assert decision.tier in ("SIMPLE", "MEDIUM"), decision.signals
    need = 1.1 * (decision.input_tokens + decision.output_tokens)
    assert all(router.catalog.chat[m].context_window >= need for m in decision.chain)


def test_the_context_window_filter_counts_the_whole_request(router):
    plain, wrapped = router.route(plain_turn("hello")), router.route(openclaw_turn("hello"))
    assert wrapped.input_tokens - plain.input_tokens >= len(SYSTEM_PROMPT) // 4


def test_a_users_own_short_system_prompt_still_counts(router):
    own = "Reply only with a valid JSON object matching the schema {name, age}."
    plain = plain_turn("Tell me about Ada Lovelace.", system=own)
    wrapped = wrap(plain)
    assert router.route(plain).tier == router.route(wrapped).tier
    assert any("structured" in s for s in router.route(wrapped).signals)
    assert not any("structured" in s for s in
                   router.route(wrap(plain_turn("Tell me about Ada Lovelace."))).signals)


def test_host_prompt_keywords_do_not_score(router):
    decision = router.route(openclaw_turn("thanks!"))
    assert not any(s.startswith("context (") for s in decision.signals), decision.signals


def test_cache_key_ignores_the_hosts_wrapping_of_the_users_words():
    def with_host_prompt(text, wrapped):
        content = (STAMP + text + "\n\nRuntime: agent=main | session=s1 | shell=bash") \
            if wrapped else text
        messages = [{"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": content}]
        if wrapped:
            messages.append(context_message())
        return {"model": "auto", "messages": messages, "tools": OPENCLAW_TOOLS}

    for text in ASKS:
        assert cache_key(with_host_prompt(text, True)) == cache_key(with_host_prompt(text, False))
    later = openclaw_turn("hello")
    later["messages"][-2]["content"] = "[Fri 2026-12-04 09:00 UTC] hello"
    assert cache_key(later) == cache_key(openclaw_turn("hello"))
    assert cache_key(openclaw_turn("hello")) != cache_key(openclaw_turn("goodbye"))


@pytest.mark.parametrize("name", ["devset", "fresh", "fresh_b"])
def test_labelled_sets_route_the_same_wrapped(router, name):
    rows = load_rows(HERE / f"{name}.jsonl")
    plain = evaluate(rows, router)
    wrapped = evaluate([dict(row, body=wrap(row["body"])) for row in rows], router)
    assert abs(plain.accuracy - wrapped.accuracy) <= MAX_GAP, (plain.accuracy, wrapped.accuracy,
                                                              wrapped.failures)
