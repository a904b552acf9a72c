"""OpenAI chat-completion shapes: SSE encoding, completion → chunks, chunks → completion."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"
HEARTBEAT = b": heartbeat\n\n"
MAX_TOKENS = 100_000_000  # a larger token count in ``usage`` is not believed


def token_counts(completion: dict, default_input: int, default_output: int) -> tuple[int, int]:
    """(prompt, completion) tokens from a completion's ``usage``; a missing, zero or unreadable
    count (not a number, negative, absurdly large) is replaced by its default."""
    usage = completion.get("usage")
    if not isinstance(usage, dict):
        return default_input, default_output
    return (_count(usage.get("prompt_tokens"), default_input),
            _count(usage.get("completion_tokens"), default_output))


def _count(value: object, default: int) -> int:
    if type(value) is int or type(value) is float:
        if 0 < value <= MAX_TOKENS:
            return int(value)
    return default


def _object(value: object) -> dict:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _objects(value: object) -> list[dict]:
    """The JSON objects in ``value`` when it is a list; nothing otherwise."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _index(item: dict) -> int | None:
    """An item's ``index`` (0 when absent), None when it is not a whole number."""
    index = item.get("index", 0)
    return index if type(index) is int else None


def _text(value: object) -> str:
    """``value`` when it is text, else no text."""
    return value if isinstance(value, str) else ""


def sse_event(payload: dict[str, Any]) -> bytes:
    """One ``data:`` event carrying ``payload`` as compact JSON."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def assistant_completion(content: str, model: str, *, completion_id: str | None = None) -> dict:
    """A complete ``chat.completion`` object whose single choice says ``content``."""
    return {
        "id": completion_id or new_completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def completion_to_chunks(completion: dict) -> list[dict]:
    """Split a ``chat.completion`` into well-formed ``chat.completion.chunk`` objects."""
    base = {
        "id": completion.get("id") or new_completion_id(),
        "object": "chat.completion.chunk",
        "created": completion.get("created") or int(time.time()),
        "model": completion.get("model") or "unknown",
    }
    chunks: list[dict] = []
    for choice in _objects(completion.get("choices")):
        index = choice.get("index", 0)
        message = _object(choice.get("message"))
        delta: dict[str, Any] = {"role": message.get("role", "assistant")}
        if message.get("content"):
            delta["content"] = message["content"]
        calls = _objects(message.get("tool_calls"))
        if calls:
            delta["tool_calls"] = [{**call, "index": position} for position, call in enumerate(calls)]
        chunks.append({**base, "choices": [{"index": index, "delta": delta, "finish_reason": None}]})
        finish = choice.get("finish_reason") or ("tool_calls" if calls else "stop")
        chunks.append({**base, "choices": [{"index": index, "delta": {}, "finish_reason": finish}]})
    if completion.get("usage"):
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    return chunks


class CompletionAssembler:
    """Accumulates streamed chunks into the equivalent ``chat.completion`` object."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.created: int | None = None
        self.usage: dict | None = None
        self._choices: dict[int, dict[str, Any]] = {}

    def add(self, chunk: dict) -> str:
        """Fold one chunk in; returns the text it added (for live text deltas).

        Parts of an unexpected shape (a choice with no whole-number index, content that is
        not text, ...) are left out of the completion; the chunk itself is not changed.
        Runs once per streamed event, so the common shapes are checked inline.
        """
        self.id = self.id or chunk.get("id")
        self.model = self.model or chunk.get("model")
        self.created = self.created or chunk.get("created")
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return ""
        added = ""
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            if type(index) is not int:
                continue
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = {
                    "role": "assistant", "content": [], "tool_calls": {}, "finish_reason": None}
            delta = choice.get("delta")
            if isinstance(delta, dict):
                if delta.get("role"):
                    state["role"] = delta["role"]
                text = delta.get("content")
                if text and isinstance(text, str):
                    state["content"].append(text)
                    added += text
                calls = delta.get("tool_calls")
                if calls:
                    _add_tool_calls(state["tool_calls"], calls)
            if choice.get("finish_reason"):
                state["finish_reason"] = choice["finish_reason"]
        return added

    def completion(self) -> dict:
        """The assembled ``chat.completion``."""
        choices = []
        for index in sorted(self._choices):
            state = self._choices[index]
            message: dict[str, Any] = {"role": state["role"], "content": "".join(state["content"])}
            if state["tool_calls"]:
                message["tool_calls"] = [state["tool_calls"][k] for k in sorted(state["tool_calls"])]
            choices.append(
                {"index": index, "message": message, "finish_reason": state["finish_reason"] or "stop"}
            )
        result = {
            "id": self.id or new_completion_id(),
            "object": "chat.completion",
            "created": self.created or int(time.time()),
            "model": self.model or "unknown",
            "choices": choices,
        }
        if self.usage:
            result["usage"] = self.usage
        return result


def _add_tool_calls(slots: dict[int, dict], calls: object) -> None:
    """Fold a delta's ``tool_calls`` into ``slots`` (by index), appending name and argument
    fragments; calls of an unexpected shape are left out."""
    for call in _objects(calls):
        position = _index(call)
        if position is None:
            continue
        slot = slots.setdefault(
            position, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
        )
        slot["id"] = call.get("id") or slot["id"]
        function = _object(call.get("function"))
        slot["function"]["name"] += _text(function.get("name"))
        slot["function"]["arguments"] += _text(function.get("arguments"))
