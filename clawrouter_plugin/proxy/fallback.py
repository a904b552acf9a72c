"""Which upstream failures are worth trying the next model for."""

from __future__ import annotations

import json
import re

# Provider-side trouble that another model may not have, recognisable in a 400/413 body.
_PROVIDER_ERROR = re.compile(
    r"billing|insufficient.balance|credits|quota.exceeded|rate.limit|model.(?:is.)?(?:not.)?"
    r"(?:un)?available|service.unavailable|capacity|overloaded|temporarily.unavailable|"
    r"context.length|context.window|maximum.context|too.many.tokens|request.too.large|"
    r"payload.too.large|model.not.allowed|unknown.model|unsupported.model|does.not.support",
    re.IGNORECASE,
)
# Statuses that say the request itself is wrong (or not allowed): retrying elsewhere won't help.
_FINAL_STATUSES = frozenset({401, 403, 404, 422})


def should_try_next(status: int, body: bytes) -> bool:
    """True when a failed attempt should move on to the next model in the chain."""
    if status == 429 or status >= 500:
        return True
    if status in _FINAL_STATUSES:
        return False
    if status in (400, 413):
        return bool(_PROVIDER_ERROR.search(body[:4096].decode("utf-8", "replace")))
    return False


def error_message(status: int, body: bytes) -> str:
    """A short readable message from an upstream error body (OpenAI or plain shapes)."""
    text = body[:2000].decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return f"upstream answered {status}: {text[:300] or 'no details'}"
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict) and error.get("message"):
            return f"upstream answered {status}: {error['message']}"
        if isinstance(error, str):
            detail = parsed.get("details") or parsed.get("message") or ""
            return f"upstream answered {status}: {error}{': ' + str(detail) if detail else ''}"
    return f"upstream answered {status}: {text[:300]}"
