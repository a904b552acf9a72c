"""The body sent upstream for one model: output cap, our switches, tools for models without them."""

from __future__ import annotations

import copy

from clawrouter_plugin.catalog import load_catalog
from clawrouter_plugin.proxy.upstream_body import tools_dropped, upstream_body
from tests.support.openclaw_turn import openclaw_turn, tool_history

CATALOG = load_catalog()
FREE = CATALOG.chat[CATALOG.free_model]
MINI = CATALOG.chat["openai/gpt-4o-mini"]  # tools, max output 16384
KIMI = CATALOG.chat["moonshot/kimi-k2.5"]  # tools, max output 8192


def test_the_cap_goes_where_the_client_put_it_at_most_the_models_maximum():
    base = {"messages": [{"role": "user", "content": "hi"}], "cache": False, "no_cache": True}
    assert upstream_body(base, MINI, 4096, False) == {
        "messages": base["messages"], "model": MINI.id, "stream": False,
        "max_completion_tokens": 4096}
    both = upstream_body({**base, "max_tokens": 5, "max_completion_tokens": 9}, MINI, 300, True)
    assert (both["max_tokens"], both["max_completion_tokens"], both["stream"]) == (300, 300, True)
    legacy = upstream_body({**base, "max_tokens": 10**6}, KIMI, 16384, False)
    assert legacy["max_tokens"] == 8192 and "max_completion_tokens" not in legacy


def test_a_model_that_calls_tools_gets_the_request_unchanged():
    body = openclaw_turn(history=tool_history())
    sent = upstream_body(body, MINI, 4096, True)
    assert sent["tools"] == body["tools"] and sent["messages"] is body["messages"]
    assert not tools_dropped(body, MINI)


def test_the_free_model_gets_no_tools_and_reads_the_tool_history_as_text():
    body = openclaw_turn(history=tool_history())
    original = copy.deepcopy(body)
    sent = upstream_body(body, FREE, 4096, True)
    assert body == original  # the client's body is not changed
    assert tools_dropped(body, FREE)
    assert not {"tools", "tool_choice"} & set(sent)
    roles = [m["role"] for m in sent["messages"]]
    assert "tool" not in roles and not any("tool_calls" in m for m in sent["messages"])
    call, result = sent["messages"][2], sent["messages"][3]
    assert call == {"role": "assistant",
                    "content": '[called the tool read with {"path": "notes.md"}]'}
    assert result == {"role": "user", "content": "[result of the tool read]\nbuy milk"}
    assert len(sent["messages"]) == len(body["messages"])


def test_odd_tool_history_shapes_do_not_break_the_rewrite():
    body = {"tools": [], "messages": [
        {"role": "assistant", "content": [{"type": "text", "text": "let me look"}],
         "tool_calls": [1, None, {"function": "x"}, {"id": 7, "function": {"name": 5}}]},
        {"role": "assistant", "tool_calls": "x"},
        {"role": "tool", "tool_call_id": 7, "content": None},
        {"role": "function", "name": None, "content": 42}]}
    sent = upstream_body(body, FREE, 100, False)
    assert [m["role"] for m in sent["messages"]] == ["assistant", "assistant", "user", "user"]
    assert sent["messages"][0]["content"] == "let me look\n[called the tool 5 with {}]"
    assert sent["messages"][2]["content"].startswith("[result of the tool 5]")
    assert not tools_dropped(body, FREE)  # an empty tools list defines none
