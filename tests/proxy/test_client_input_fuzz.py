"""Seeded fuzzing of the chat route with oddly shaped client input.

Bad input gets a clear error and loses nothing: an OpenAI-style JSON error with a 4xx status
(never a 500 or a traceback), and the proxy keeps answering normal requests afterwards.
"""

from __future__ import annotations

import json
import random
from typing import Any

import aiohttp

ROUNDS = 300
SEED = 20240515
_UNSET = object()

ROLES: list[Any] = ["user", "system", "assistant", "tool", "developer", "", "USER", "function"]
ODD_ROLES: list[Any] = [1, 0.5, None, True, [], {"role": "user"}, ["user"]]
CONTENTS: list[Any] = [
    "hi", "What is 2+2?", "", " ", None, 42, -1.5, True, [], {}, {"text": "hi"},
    [{"type": "text", "text": "hello"}], [{"type": "text", "text": 5}], [{"type": "text"}],
    [{"type": "image_url", "image_url": "not-a-url"}], [{"type": "image_url"}],
    [{"type": "input_audio", "input_audio": {"data": 1}}], ["plain part"], [1, None, True],
    [[["deep"]]], [{"type": {"nested": ["x"]}, "text": {"a": 1}}],
    "[Mon 2024-01-15 10:30 UTC] stamped", "/stats", "/model premium", "\u00fc\u00f1\u00ee\u00e7\u00f8d\u00e9 \U0001f600",
    "line\r\nbreak\x00nul", "```python\nprint(1)\n```", "Prove it step by step. " * 20,
]
TOOL_CALLS: list[Any] = ["x", 1, [], [1], [None], [{"function": "x"}], [{"function": {"arguments": {"a": 1}}}],
                        [{"id": 1, "type": "function", "function": {"name": "f", "arguments": "{}"}}]]
TOOLS: list[Any] = [None, [], "x", {}, 1, [1], [None], [{"type": "function"}], [[]],
                    [{"type": "function", "function": {"name": 1, "parameters": "x"}}],
                    [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]]
TOOL_CHOICES: list[Any] = ["auto", "none", "required", "weird", 1, None, {}, [], {"type": "function"},
                           {"type": "function", "function": {"name": 7}}]
STREAMS: list[Any] = [True, True, False, "yes", "true", 1, 0, None, [], {}, 1.0]
TOKEN_LIMITS: list[Any] = ["100", "abc", -1, 0, 1, 1.5, -0.5, 2**31, 2**53, 2**63 - 1, -(2**63), True,
                           [], {}, None, 64]
USERS: list[Any] = [[], [1], 1, -7, 1.5, {}, {"a": [1]}, "", " ", True, False, None, "u" * 300,
                    "alice", "bob\r\ninjected: 1", "tab\there", "nul\x00byte", "\u00fcser-\U0001f600",
                    "\u2028sep", "x\ny", 2**63 - 1]
METADATA: list[Any] = [[], 1, "x", None, True, {}, {"session_id": []}, {"session_id": {"a": 1}},
                       {"conversation_id": 3.5}, {"session_id": "m" * 500}, {"session_id": "s\r\nx"},
                       {"conversation_id": "conv-\u00e9"}, {"session_id": True}, {"nested": {"a": [1, {}]}},
                       {"session_id": 12345}]
MODELS: list[Any] = [0, 1.5, "", "  ", "gpt", "blockrun/free", "free", "auto", "eco", "premium", "agentic",
                     "blockrun/auto", "unknown/model", "gtp-4o", None, [], {}, True, "blockrun/", "/",
                     "br-sonnet", "nvidia/gpt-oss-120b", "AUTO", "google/nano-banana", "m\u00f6del",
                     "a" * 300, "auto\r\nx"]
CACHE_VALUES: list[Any] = [False, True, "no", "false", 0, 1, None, [], {}]
SESSION_HEADERS: list[str] = ["s" * 3000, "sess-\u00fc-\U0001f600", "  ", "", "plain-session", "\u00e9" * 200,
                              "a b c", "x" * 129]
CACHE_CONTROLS: list[str] = ["", ",,,", "no-cache", "NO-STORE", "no-cache=foo", "max-age=abc", "\u00fc",
                             "=,=", "no-cache, no-cache", " ; "]
RAW_BODIES: list[bytes] = [b"[]", b"[1, 2]", b'"a string"', b"null", b"42", b"true", b"\xff\xfe\xfd",
                           b"", b"{", b'{"messages": "hi"}', b'{"messages": {}}', b'{"messages": []}',
                           b'{"model": "auto", "messages": [{"role": "user", "content": "\xc3\x28"}]}',
                           b'{"model": "auto", "messages": [{"role": "user", "content": "\\ud800"}]}',
                           b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}], '
                           b'"max_tokens": 1000000000000000000000000}',
                           b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}], '
                           b'"max_tokens": NaN}']


def _maybe(rng: random.Random, options: list[Any], chance: float) -> Any:
    return rng.choice(options) if rng.random() < chance else _UNSET


def _message(rng: random.Random) -> Any:
    if rng.random() < 0.03:
        return rng.choice([42, "hi", None, [], ["user", "hi"]])
    message: dict[str, Any] = {}
    if rng.random() < 0.96:  # mostly a string role, so that the other fields get looked at
        message["role"] = rng.choice(ROLES) if rng.random() < 0.93 else rng.choice(ODD_ROLES)
    content = _maybe(rng, CONTENTS, 0.95)
    if content is not _UNSET:
        message["content"] = content
    for key, options in (("tool_calls", TOOL_CALLS), ("name", [1, "n", None, []]),
                         ("tool_call_id", [1, "call_1", {}])):
        value = _maybe(rng, options, 0.08)
        if value is not _UNSET:
            message[key] = value
    return message


def _body(rng: random.Random) -> dict[str, Any]:
    """One odd but JSON-encodable chat-completions body."""
    body: dict[str, Any] = {"messages": [_message(rng) for _ in range(rng.randint(1, 3))]}
    if rng.random() < 0.03:
        body["messages"] = rng.choice([[], "hi", 5, None, {"role": "user"}])
    fields = (("model", MODELS, 0.9), ("tools", TOOLS, 0.2), ("tool_choice", TOOL_CHOICES, 0.15),
              ("stream", STREAMS, 0.35), ("max_tokens", TOKEN_LIMITS, 0.2),
              ("max_completion_tokens", TOKEN_LIMITS, 0.15), ("user", USERS, 0.25),
              ("metadata", METADATA, 0.2), ("cache", CACHE_VALUES, 0.15),
              ("no_cache", CACHE_VALUES, 0.1))
    for key, options, chance in fields:
        value = _maybe(rng, options, chance)
        if value is not _UNSET:
            body[key] = value
    return body


def _headers(rng: random.Random) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    session = _maybe(rng, SESSION_HEADERS, 0.2)
    if session is not _UNSET:
        headers["x-session-id"] = session
    cache_control = _maybe(rng, CACHE_CONTROLS, 0.15)
    if cache_control is not _UNSET:
        headers["Cache-Control"] = cache_control
    return headers


def _problem(status: int, content_type: str, raw: bytes, streamed: bool) -> str | None:
    """What is wrong with one answer of the proxy, or None when it meets the standard."""
    if status >= 500 or status == 0:
        return f"status {status}" if status else "no valid HTTP answer"
    if status == 200 and streamed:
        if not content_type.startswith("text/event-stream"):
            return f"stream answered with {content_type}"
        if not raw.rstrip().endswith(b"data: [DONE]"):
            return "stream did not end with data: [DONE]"
        return None
    try:
        answer = json.loads(raw)
    except ValueError:
        return f"body is not JSON ({content_type})"
    if status >= 400:
        error = answer.get("error") if isinstance(answer, dict) else None
        if not isinstance(error, dict) or not all(
                isinstance(error.get(key), str) and error[key] for key in ("message", "type", "code")):
            return "error body lacks error.message/type/code strings"
        if "Traceback" in error["message"]:
            return "traceback in the error message"
        return None
    if status != 200:
        return f"unexpected status {status}"
    if not (isinstance(answer, dict) and answer.get("object") == "chat.completion"
            and isinstance(answer.get("choices"), list)):
        return "200 without a chat.completion"
    return None


async def test_odd_client_input_never_breaks_the_proxy(start, x402_upstream):
    """~300 seeded odd requests: each gets a 200 or a 4xx OpenAI-style JSON error; afterwards
    the proxy still answers normally. A second proxy with a session budget covers the spend
    guard (429 is then a fine answer too)."""
    rng = random.Random(SEED)
    proxy = await start()
    budgeted = await start(maxCostPerRun=0.002)
    failures: list[str] = []
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def send(handle, raw: bytes, headers: dict[str, str], streamed: bool) -> None:
            try:
                async with session.post(handle.base_url + "/v1/chat/completions", data=raw,
                                        headers=headers) as resp:
                    status, content_type, data = resp.status, resp.content_type, await resp.read()
            except aiohttp.ClientError as exc:  # e.g. a broken HTTP answer or a dropped connection
                status, content_type, data = 0, "", repr(exc).encode()
            statuses[status] = statuses.get(status, 0) + 1
            problem = _problem(status, content_type, data, streamed)
            if problem is not None:
                failures.append(f"{problem}: headers={headers!r} body={raw[:600]!r} -> {data[:300]!r}")

        for raw in RAW_BODIES:
            await send(proxy, raw, {"Content-Type": "application/json"}, False)
        for index in range(ROUNDS - len(RAW_BODIES)):
            body = _body(rng)
            handle = budgeted if index % 4 == 3 else proxy
            await send(handle, json.dumps(body).encode(), _headers(rng), body.get("stream") is True)

        assert not failures, f"{len(failures)} bad answers (statuses {statuses}):\n" + "\n".join(failures[:15])
        assert statuses.get(200, 0) > 50 and sum(n for s, n in statuses.items() if s >= 400) > 50

        # nothing corrupted: a normal request, the stats and the cache still answer
        normal = {"model": "auto", "messages": [{"role": "user", "content": "Still there after the fuzz?"}]}
        for handle in (proxy, budgeted):
            async with session.post(handle.base_url + "/v1/chat/completions", json=normal) as resp:
                assert resp.status == 200, await resp.text()
                assert (await resp.json())["choices"][0]["message"]["content"].startswith("Echo from ")
            for path in ("/stats", "/cache"):
                async with session.get(handle.base_url + path) as resp:
                    assert resp.status == 200, (path, await resp.text())
                    assert isinstance(await resp.json(), dict)
