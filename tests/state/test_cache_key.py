"""Cache key normalisation and the bypass rules."""

import time

import pytest

from clawrouter_plugin.ask import read_envelope
from clawrouter_plugin.state.cache_key import cache_bypassed, cache_key


def strip_stamp(text: str) -> str:
    return read_envelope(text).text


def body(text="What is 2+2?", **extra):
    return {
        "model": "openai/gpt-4o",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}],
        **extra,
    }


def test_key_is_sha256_hex():
    key = cache_key(body())
    assert len(key) == 64 and int(key, 16) >= 0


@pytest.mark.parametrize(
    "stamped",
    [
        "[Mon 2024-01-15 10:30 UTC] What is 2+2?",
        "[Tue 2026-02-03 09:05 PST] What is 2+2?",
        "[WhatsApp +1555 Mon 2026-01-05 16:26 PST] What is 2+2?",
        "[Telegram Bob (@bob) id:42 2026-01-05 16:26:34 PST] What is 2+2?",
        "[Slack #general Fri 2026-01-09 08:00:01 GMT+1] What is 2+2?",
    ],
)
def test_leading_timestamps_and_envelopes_are_ignored(stamped):
    assert strip_stamp(stamped) == "What is 2+2?"
    assert cache_key(body(stamped)) == cache_key(body())


def test_only_one_leading_stamp_is_stripped_and_inner_brackets_stay():
    inner = "see [Mon 2024-01-15 10:30 UTC] here"
    assert strip_stamp(inner) == inner
    assert strip_stamp("[note] hello") == "[note] hello"
    assert strip_stamp("[x]") == "[x]"
    assert cache_key(body("[note] hello")) != cache_key(body("hello"))


def test_text_parts_are_stripped_but_other_parts_kept():
    parts = [
        {"type": "text", "text": "[Mon 2024-01-15 10:30 UTC] describe"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    plain = [dict(parts[0], text="describe"), parts[1]]
    stamped_body = body()
    stamped_body["messages"][1]["content"] = parts
    plain_body = body()
    plain_body["messages"][1]["content"] = plain
    assert cache_key(stamped_body) == cache_key(plain_body)
    assert parts[0]["text"].startswith("[Mon")  # the caller's body is not modified


def test_volatile_fields_are_excluded():
    base = cache_key(body())
    assert cache_key(body(stream=True)) == base
    assert cache_key(body(user="alice")) == base
    assert cache_key(body(request_id="r1", **{"x-request-id": "r2"})) == base
    assert cache_key(body(cache=True, no_cache=False)) == base


def test_key_order_is_irrelevant_at_every_depth():
    a = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [{"a": 1, "b": 2}]}
    b = {"tools": [{"b": 2, "a": 1}], "messages": [{"content": "hi", "role": "user"}], "model": "m"}
    assert cache_key(a) == cache_key(b)


@pytest.mark.parametrize(
    "change",
    [
        {"model": "openai/gpt-4o-mini"},
        {"temperature": 0.5},
        {"max_tokens": 10},
        {"messages": [{"role": "user", "content": "What is 3+3?"}]},
    ],
)
def test_different_requests_get_different_keys(change):
    assert cache_key({**body(), **change}) != cache_key(body())


def test_unicode_content_is_hashed():
    assert cache_key(body("naïve café 😀")) != cache_key(body("naive cafe"))


def test_key_is_fast():
    typical = body("[Mon 2024-01-15 10:30 UTC] " + "Explain the theory of relativity. " * 10)
    typical["messages"] = typical["messages"] * 3
    for _ in range(200):  # warm up
        cache_key(typical)
    rounds = 2000
    start = time.perf_counter()
    for _ in range(rounds):
        cache_key(typical)
    per_call = (time.perf_counter() - start) / rounds
    assert per_call < 200e-6  # target < 50 µs on a normal machine; generous for slow CI


@pytest.mark.parametrize(
    "headers",
    [
        {"Cache-Control": "no-cache"},
        {"cache-control": "no-store"},
        {"CACHE-CONTROL": "max-age=0, No-Cache"},
        {"Pragma": "no-cache"},
    ],
)
def test_bypass_by_header(headers):
    assert cache_bypassed(body(), headers)


@pytest.mark.parametrize("extra", [{"cache": False}, {"no_cache": True}])
def test_bypass_by_body(extra):
    assert cache_bypassed(body(**extra), {})


@pytest.mark.parametrize(
    "headers, extra",
    [
        ({}, {}),
        ({"Cache-Control": "max-age=60"}, {}),
        ({"Cache-Control": "no-cache-please"}, {}),
        ({}, {"cache": True}),
        ({}, {"no_cache": False}),
        ({}, {"cache": "false"}),
    ],
)
def test_no_bypass(headers, extra):
    assert not cache_bypassed(body(**extra), headers)


def test_bypass_with_multidict_headers():
    from multidict import CIMultiDict

    assert cache_bypassed(body(), CIMultiDict({"Cache-Control": "no-cache"}))
    assert not cache_bypassed(body(), CIMultiDict({"Accept": "*/*"}))
