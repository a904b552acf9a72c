"""Fixtures for router tests: one default Router (building it compiles the keyword tables)."""

from __future__ import annotations

import pytest

from clawrouter_plugin.router import Router


@pytest.fixture(scope="session")
def router() -> Router:
    return Router()


def chat(text: str, *, system: str | None = None, history: list[str] | None = None,
         tools: bool = False, **extra) -> dict:
    """A chat-completions body: optional system prompt, earlier user turns, a tool."""
    messages = [{"role": "system", "content": system}] if system else []
    for turn in history or []:
        messages += [{"role": "user", "content": turn}, {"role": "assistant", "content": "OK."}]
    messages.append({"role": "user", "content": text})
    body = {"messages": messages, **extra}
    if tools:
        body["tools"] = [{"type": "function", "function": {
            "name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]
    return body
