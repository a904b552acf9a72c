"""A model turn: the conversation's history goes to a provider, the reply (streamed or not)
comes back and joins the history. A failed or cancelled turn leaves the history as it was."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import aclosing, nullcontext
from dataclasses import dataclass, field
from typing import Any

from .api import ProviderRequest, ProviderSpec
from .dispatch import log_failure, short_reason

DEFAULT_MODEL = "blockrun/auto"
log = logging.getLogger("clawrouter.host")


@dataclass
class Conversation:
    """One chat: its session id, model ref, who is talking, and the message history."""

    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    model: str = DEFAULT_MODEL
    channel: str = "terminal"
    sender_id: str = "local"
    authorized: bool = True
    owner: bool = True
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class HostReply:
    """What the host answers: a command's result or the model's reply."""

    text: str
    is_error: bool = False
    media_urls: tuple[str, ...] = ()
    command: str | None = None


async def model_turn(provider: ProviderSpec, model: str, text: str, conv: Conversation,
                     on_delta: Callable[[str], None] | None = None) -> HostReply:
    """Ask ``provider`` for ``model``'s answer to ``text`` after the conversation so far."""
    conv.history.append({"role": "user", "content": text})
    stream = on_delta is not None
    request = ProviderRequest(
        body={"model": model, "messages": list(conv.history), "stream": stream},
        session_id=conv.session_id, stream=stream)
    try:
        answer = await _collect(await provider.complete(request), on_delta)
    except BaseException as exc:
        conv.history.pop()
        if not isinstance(exc, Exception):
            raise
        log_failure(f"provider {provider.id}", exc, log)
        return HostReply(f"⚠️ {short_reason(exc)}", is_error=True)
    conv.history.append({"role": "assistant", "content": answer})
    return HostReply(answer)


async def _collect(out: Any, on_delta: Callable[[str], None] | None) -> str:
    """The assistant text of a completion dict or of a stream of text deltas."""
    if isinstance(out, dict):
        choices = out.get("choices") or [{}]
        text = (choices[0].get("message") or {}).get("content") or ""
        if on_delta is not None and text:
            on_delta(text)
        return text
    parts: list[str] = []
    async with aclosing(out) if hasattr(out, "aclose") else nullcontext(out) as deltas:
        async for delta in deltas:
            parts.append(delta)
            if on_delta is not None:
                on_delta(delta)
    return "".join(parts)
