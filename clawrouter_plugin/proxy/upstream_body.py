"""The chat-completions body sent upstream for one model of the chain.

- our own switches (``cache``, ``no_cache``) stay here;
- ``model`` and ``stream`` are set for this attempt;
- the output cap is the routed one (see ``router/output_cap.py``), at most the model's own
  maximum: written to whichever of ``max_completion_tokens`` / ``max_tokens`` the client sent,
  or to ``max_completion_tokens`` when it sent neither, so the upstream prices what we priced;
- a model that cannot call tools (the free model) gets no tool definitions, and the
  conversation's earlier tool calls and results are turned into plain text it can read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..router.features import content_text

if TYPE_CHECKING:
    from ..catalog import ChatModel

_NOT_SENT = frozenset({"cache", "no_cache"})  # our cache switches, not the upstream's business
_CAP_KEYS = ("max_completion_tokens", "max_tokens")
_TOOL_FIELDS = ("tools", "tool_choice", "parallel_tool_calls", "functions", "function_call")


def upstream_body(body: dict, model: ChatModel, output_cap: int, stream: bool) -> dict:
    """The body to send ``model`` for ``body`` (which is not changed)."""
    payload = {k: v for k, v in body.items() if k not in _NOT_SENT}
    payload["model"], payload["stream"] = model.id, stream
    cap = model.output_limit(output_cap)
    for key in [k for k in _CAP_KEYS if k in payload] or _CAP_KEYS[:1]:
        payload[key] = cap
    if not model.tools:
        _drop_tools(payload)
    return payload


def tools_dropped(body: dict, model: ChatModel) -> bool:
    """Whether ``model`` is sent ``body`` without the tools it defines."""
    return not model.tools and bool(body.get("tools") or body.get("functions"))


def _drop_tools(payload: dict) -> None:
    for key in _TOOL_FIELDS:
        payload.pop(key, None)
    messages = payload.get("messages")
    if isinstance(messages, list) and any(_is_tool_history(m) for m in messages):
        payload["messages"] = _plain_history(messages)


def _is_tool_history(message: Any) -> bool:
    return isinstance(message, dict) and (
        message.get("role") in ("tool", "function") or bool(message.get("tool_calls")))


def _plain_history(messages: list) -> list:
    """The messages with tool calls written into the assistant's text and tool results as
    user messages, for a model that has never seen the tool definitions."""
    names: dict[str, str] = {}
    plain = []
    for message in messages:
        if not _is_tool_history(message):
            plain.append(message)
            continue
        text, _ = content_text(message.get("content"))
        if message.get("role") == "assistant":
            lines = [text] if text else []
            calls = message.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    name = str(function.get("name") or "tool")
                    names[str(call.get("id"))] = name
                    lines.append(f"[called the tool {name} with {function.get('arguments') or '{}'}]")
            plain.append({"role": "assistant", "content": "\n".join(lines)})
        else:
            name = names.get(str(message.get("tool_call_id")), str(message.get("name") or "tool"))
            plain.append({"role": "user", "content": f"[result of the tool {name}]\n{text}"})
    return plain
