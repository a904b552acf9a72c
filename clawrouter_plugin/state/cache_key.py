"""The response cache's key: which requests count as identical, and when to bypass the cache."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from .canonical import canonical_json
from .headers import header

_IGNORED_FIELDS = frozenset({"stream", "user", "request_id", "x-request-id", "cache", "no_cache"})

# One leading "[Mon 2024-01-15 10:30 UTC] " stamp, optionally preceded by a channel envelope
# such as "[WhatsApp +1555 Mon 2026-01-05 16:26 PST] " or "[Telegram ... 2026-01-05 16:26:34 PST] ".
_STAMP = re.compile(
    r"\[(?:[^\[\]\n]{1,120} )?(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) )?"
    r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2})?(?: ?[^\[\]\s]{1,40})?\]\s?"
)


def strip_stamp(text: str) -> str:
    """``text`` without one leading timestamp or channel envelope that hosts prepend."""
    if text[:1] != "[":
        return text
    match = _STAMP.match(text)
    return text[match.end() :] if match else text


def _strip_content(content: Any) -> Any:
    """Message content with stamps removed; the same object when nothing changed."""
    if isinstance(content, str):
        return strip_stamp(content)
    if not isinstance(content, list):
        return content
    parts = None
    for i, part in enumerate(content):
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            stripped = strip_stamp(part["text"])
            if stripped is not part["text"]:
                if parts is None:
                    parts = list(content)
                parts[i] = {**part, "text": stripped}
    return content if parts is None else parts


def _strip_messages(messages: list) -> list:
    out = None
    for i, message in enumerate(messages):
        if isinstance(message, dict):
            content = message.get("content")
            stripped = _strip_content(content)
            if stripped is not content:
                if out is None:
                    out = list(messages)
                out[i] = {**message, "content": stripped}
    return messages if out is None else out


def cache_key(body: dict) -> str:
    """SHA-256 hex of ``body`` with volatile fields dropped, stamps stripped and keys sorted."""
    normalised = {k: v for k, v in body.items() if k not in _IGNORED_FIELDS}
    messages = normalised.get("messages")
    if isinstance(messages, list):
        normalised["messages"] = _strip_messages(messages)
    return hashlib.sha256(canonical_json(normalised)).hexdigest()


def _has_token(value: str | None, *tokens: str) -> bool:
    if not value:
        return False
    present = {part.strip().split("=", 1)[0].lower() for part in value.split(",")}
    return any(token in present for token in tokens)


def cache_bypassed(body: dict, headers: Mapping[str, str]) -> bool:
    """Whether the client asked not to be served from the cache.

    ``Cache-Control: no-cache`` or ``no-store`` (or ``Pragma: no-cache``), or the body fields
    ``"cache": false`` / ``"no_cache": true``.
    """
    if body.get("cache") is False or body.get("no_cache") is True:
        return True
    return _has_token(header(headers, "cache-control"), "no-cache", "no-store") or _has_token(
        header(headers, "pragma"), "no-cache"
    )
