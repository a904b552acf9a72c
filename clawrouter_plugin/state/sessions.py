"""Per-conversation model pinning, so a conversation does not switch models mid-task.

The store only stores. The pipeline decides: it routes with ``min_tier=pin.tier`` (escalate
when the task gets harder, never silently downgrade), pins the decision, and calls
:meth:`SessionStore.set_model` when a fallback model answered instead.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..ask import conversation_opening
from .canonical import canonical_json
from .expiring import ExpiringMap
from .headers import header

MAX_ID_LENGTH = 128
# what an HTTP header value may not hold (RFC 9110 §5.5; tab is allowed): the id is sent back
# in the x-clawrouter-session response header, where aiohttp refuses these characters
_NOT_IN_HEADERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def session_id(headers: Mapping[str, str], body: dict) -> str:
    """The conversation id for a request.

    The ``x-session-id`` header, else the body's ``user``, ``metadata.session_id`` or
    ``metadata.conversation_id``; else derived from the system prompt and the first user
    message (both stay the same on every turn of a conversation; see
    :func:`~clawrouter_plugin.ask.conversation_opening`): 16 hex characters.
    Explicit ids longer than 128 characters, or holding control characters such as a line
    break (they could not be sent back in a response header), are replaced by a hash of them.
    """
    candidates = [header(headers, "x-session-id"), body.get("user")]
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        candidates += [metadata.get("session_id"), metadata.get("conversation_id")]
    for candidate in candidates:
        if _usable(candidate):
            text = str(candidate).strip()
            if len(text) <= MAX_ID_LENGTH and not _NOT_IN_HEADERS.search(text):
                return text
            return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return _derived_id(body)


def header_session_id(sid: str) -> str:
    """The id :func:`session_id` gives a request whose ``x-session-id`` header is ``sid``:
    what chat hosts key a conversation's model preference by, so it meets the pipeline's pin."""
    return session_id({"x-session-id": sid}, {})


def _usable(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return False
    return str(value).strip() != ""


def _derived_id(body: dict) -> str:
    opening = conversation_opening(body)
    # an agent host's prompt may carry facts that change between turns: its first message,
    # which holds the host's timestamp, tells conversations apart on its own
    system = None if opening.host_system else opening.system
    return hashlib.sha256(canonical_json([system, opening.first])).hexdigest()[:16]


@dataclass(slots=True)
class Pin:
    """The model and tier a session is pinned to."""

    model: str
    tier: str
    table: str
    requests: int
    last_used: float

    def copy(self) -> Pin:
        """A copy (cheaper than ``dataclasses.replace``; the store hands out copies only)."""
        return Pin(self.model, self.tier, self.table, self.requests, self.last_used)


class SessionStore:
    """Session pins (and chat-host model preferences) that expire after ``ttl_seconds`` idle,
    in this process (the local backend's :class:`~.stores.SessionPins`; the methods are async
    for that interface and answer at once).

    ``requests`` counts the requests served under a pin: 1 when created, +1 for each later
    :meth:`pin` or :meth:`touch`. Memory is bounded by ``max_sessions`` (expired first, then
    the least recently used).
    """

    def __init__(
        self,
        ttl_seconds: float = 3600,
        clock: Callable[[], float] = time.monotonic,
        max_sessions: int = 10000,
    ):
        self._clock = clock
        self._pins: ExpiringMap[Pin] = ExpiringMap(ttl_seconds, max_sessions)
        self._preferences: ExpiringMap[str] = ExpiringMap(ttl_seconds, max_sessions)

    async def get(self, sid: str) -> Pin | None:
        """A copy of the session's pin, or None if absent or idle longer than the ttl."""
        pin = self._pins.get(sid, self._clock())
        return pin.copy() if pin is not None else None

    async def pin(self, sid: str, model: str, tier: str, table: str) -> Pin:
        """Pin ``sid`` to ``model``/``tier`` (create or overwrite); returns a copy."""
        now = self._clock()
        previous = self._pins.get(sid, now)
        requests = previous.requests + 1 if previous is not None else 1
        pin = Pin(model=model, tier=tier, table=table, requests=requests, last_used=now)
        self._pins.set(sid, pin, now)
        self._preferences.get(sid, now, refresh=True)
        return pin.copy()

    async def touch(self, sid: str) -> None:
        """Another request was served under the existing pin: refresh its idle timer."""
        now = self._clock()
        pin = self._pins.get(sid, now, refresh=True)
        if pin is not None:
            pin.requests += 1
            pin.last_used = now
        self._preferences.get(sid, now, refresh=True)

    async def set_model(self, sid: str, model: str) -> None:
        """Record the model that actually answered (after a fallback); no-op without a pin."""
        now = self._clock()
        pin = self._pins.get(sid, now, refresh=True)
        if pin is not None:
            pin.model = model
            pin.last_used = now

    async def set_preference(self, sid: str, model: str) -> None:
        """Remember the model a chat host's user chose for this session."""
        self._preferences.set(sid, model, self._clock())

    async def preference(self, sid: str) -> str | None:
        """The session's preferred model; looking it up keeps it alive."""
        return self._preferences.get(sid, self._clock(), refresh=True)

    async def clear(self, sid: str | None = None) -> None:
        """Forget one session (pin and preference), or all of them."""
        if sid is None:
            self._pins.clear()
            self._preferences.clear()
        else:
            self._pins.pop(sid)
            self._preferences.pop(sid)

    def __len__(self) -> int:
        """Number of live pinned sessions."""
        return self._pins.live(self._clock())
