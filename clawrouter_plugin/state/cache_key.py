"""The response cache's key: which requests count as identical, and when to bypass the cache."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ..ask import is_host_internal, message_text, user_words
from .canonical import canonical_json
from .headers import header

_IGNORED_FIELDS = frozenset({"stream", "user", "request_id", "x-request-id", "cache", "no_cache"})
_DROPPED = object()  # marks a host-internal message left out of the key


def _user_content(content: Any) -> Any:
    """A user message's content as the user wrote it (see :func:`clawrouter_plugin.ask.user_words`);
    the same object when nothing changed."""
    if isinstance(content, str):
        return user_words(content).text
    if not isinstance(content, list):
        return content
    parts = None
    for i, part in enumerate(content):
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            stripped = user_words(part["text"]).text
            if stripped is not part["text"]:
                if parts is None:
                    parts = list(content)
                parts[i] = {**part, "text": stripped}
    return content if parts is None else parts


def _user_messages(messages: list) -> list:
    """``messages`` without host-internal blocks, user texts without the host's wrapping."""
    out = None
    for i, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if is_host_internal(message_text(message)):
                stripped: Any = _DROPPED
            else:
                stripped = _user_content(content)
            if stripped is not content:
                if out is None:
                    out = list(messages[:i])
                if stripped is not _DROPPED:
                    out.append({**message, "content": stripped})
                continue
        if out is not None:
            out.append(message)
    return messages if out is None else out


def cache_key(body: dict) -> str:
    """SHA-256 hex of ``body`` with volatile fields dropped and keys sorted. The host's wrapping
    of the user's words (timestamp or channel envelope, ``Runtime:`` suffix, host-internal
    context blocks) is left out: it changes on every turn, the question does not."""
    normalised = {k: v for k, v in body.items() if k not in _IGNORED_FIELDS}
    messages = normalised.get("messages")
    if isinstance(messages, list):
        normalised["messages"] = _user_messages(messages)
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
