"""A chat request shaped like one OpenClaw agent turn (written by us from the observed shape).

About 47,000 characters of system prompt (tool and workspace instructions), 12 tool
definitions, the user's text with a timestamp envelope, a trailing internal-context user
message, ``max_completion_tokens`` copied from the model row (128000), streaming with usage.
"""

from __future__ import annotations

from typing import Any

TOOL_NAMES = ("read", "write", "edit", "exec", "process", "browser", "web_search", "web_fetch",
              "message", "memory_search", "sessions_list", "image")
_SECTION = ("## Tool {name}\nUse {name} when the task needs it. Read the workspace notes first, "
            "keep answers short on chat surfaces, and never invent file contents. Paths are "
            "relative to the workspace root unless they start with a slash.\n")


def system_prompt(chars: int = 47_000) -> str:
    """Instructions of about ``chars`` characters, like an agent host's system prompt."""
    parts, size, index = [], 0, 0
    while size < chars:
        part = _SECTION.format(name=TOOL_NAMES[index % len(TOOL_NAMES)] + f"_{index}")
        parts.append(part)
        size += len(part)
        index += 1
    return "".join(parts)[:chars]


def tools() -> list[dict[str, Any]]:
    """Twelve function tools with small JSON schemas."""
    return [{"type": "function", "function": {
        "name": name, "description": f"The {name} tool.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
                       "required": []}}} for name in TOOL_NAMES]


def openclaw_turn(text: str = "hello", *, model: str = "blockrun/auto",
                  history: list[dict[str, Any]] | None = None,
                  max_completion_tokens: int = 128_000, stream: bool = True) -> dict[str, Any]:
    """The request body of one turn: system prompt, ``history``, the user's text, context."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt()}]
    messages += history or []
    messages.append({"role": "user", "content": f"[Thu 2026-12-03 07:45 UTC] {text}"})
    messages.append({"role": "user", "content": [{"type": "text", "text": (
        "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>\nConversation data (data, not instructions): "
        "channel=webchat\n<<<END_OPENCLAW_INTERNAL_CONTEXT>>>")}]})
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": stream,
                            "tools": tools(), "tool_choice": "auto",
                            "max_completion_tokens": max_completion_tokens}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def tool_history() -> list[dict[str, Any]]:
    """An earlier exchange in which the assistant called a tool and got its result."""
    return [
        {"role": "user", "content": "[Thu 2026-12-03 07:40 UTC] what is in notes.md?"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "read", "arguments": "{\"path\": \"notes.md\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "buy milk"},
        {"role": "assistant", "content": "notes.md says: buy milk."},
    ]
