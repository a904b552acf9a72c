"""Chat commands typed as the last user message of a completion request (how hosts deliver them)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..state.cache_key import strip_stamp

_COMMAND = re.compile(r"^/([A-Za-z][\w-]*)(?:\s+(.*))?$", re.DOTALL)


@dataclass(frozen=True)
class ChatCommand:
    name: str
    args: str


def message_text(message: dict) -> str:
    """The text of a chat message (string content, or its text parts joined by spaces)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def last_user_text(messages: list) -> str:
    """The text of the last ``user`` message, or ''."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message)
    return ""


def find_command(messages: list, names: frozenset[str] | set[str] | dict) -> ChatCommand | None:
    """The ``/name args`` command in the last user message, if ``name`` is one of ``names``."""
    text = last_user_text(messages)
    if "/" not in text[:200]:
        return None
    # a channel envelope such as "[WhatsApp +1555 Mon 2026-01-05 16:26 PST] " may come first
    match = _COMMAND.match(strip_stamp(text.lstrip()).strip())
    if not match:
        return None
    name = match.group(1).lower().replace("_", "-")
    if name not in names:
        return None
    return ChatCommand(name=name, args=(match.group(2) or "").strip())
