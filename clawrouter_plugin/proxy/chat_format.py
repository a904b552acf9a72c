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
    for choice in completion.get("choices") or []:
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": message.get("role", "assistant")}
        if message.get("content"):
            delta["content"] = message["content"]
        if message.get("tool_calls"):
            delta["tool_calls"] = [
                {**call, "index": position} for position, call in enumerate(message["tool_calls"])
            ]
        chunks.append({**base, "choices": [{"index": index, "delta": delta, "finish_reason": None}]})
        finish = choice.get("finish_reason") or ("tool_calls" if message.get("tool_calls") else "stop")
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
        """Fold one chunk in; returns the text it added (for live text deltas)."""
        self.id = self.id or chunk.get("id")
        self.model = self.model or chunk.get("model")
        self.created = self.created or chunk.get("created")
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        added = []
        for choice in chunk.get("choices") or []:
            state = self._choices.setdefault(
                choice.get("index", 0),
                {"role": "assistant", "content": [], "tool_calls": {}, "finish_reason": None},
            )
            delta = choice.get("delta") or {}
            if delta.get("role"):
                state["role"] = delta["role"]
            if delta.get("content"):
                state["content"].append(delta["content"])
                added.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                slot = state["tool_calls"].setdefault(
                    call.get("index", 0),
                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                )
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                state["finish_reason"] = choice["finish_reason"]
        return "".join(added)

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


def completion_text(completion: dict) -> str:
    """The first choice's assistant text."""
    choices = completion.get("choices") or [{}]
    return (choices[0].get("message") or {}).get("content") or ""
