"""What the user asked: the one place that reads a chat request's messages for the user's ask.

Agent hosts wrap the user's words. OpenClaw, for example, sends on every turn a large system
prompt (tool list, workspace files, skills, runtime facts), prefixes the user's text with a
timestamp (``[Thu 2026-12-03 07:45 UTC] hello``) or, for a message relayed from a chat channel,
an envelope (``[WhatsApp +1555 Mon 2026-01-05 16:26 PST] hello``), appends a ``Runtime: agent=…``
line on a session's first turn, and adds one host-internal user message after the user's own
(``<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>> … <<<END_OPENCLAW_INTERNAL_CONTEXT>>>``).

:func:`find_ask` undoes that wrapping. The router, the chat-command intercept, the cache key
and the session id all read the ask from it. It is pure (no I/O), never raises, and only looks
at bounded slices of long texts (the envelope in the first characters, the ``Runtime:`` line
in the last ones, host markers in the system prompt's head and tail).

Rules:

- **The ask** is the last ``user`` message that is not host-internal (a message whose text
  starts with ``<<<BEGIN_…INTERNAL_CONTEXT>>>``). Tool results and assistant turns after it do
  not replace it, so a turn that is only tool results keeps the last real ask.
- **Envelope**: a leading ``[…]`` on the first line, at most 200 characters. It is the host's
  bare timestamp when nothing but a weekday comes before its date-time (``YYYY-MM-DD HH:MM``);
  it is a channel envelope when something else comes before the date-time, or when its first
  word is a known channel name (then a date is not needed). The channel is that first word.
  Anything else in brackets (``[WIP] fix the bug``) is the user's own text and stays.
- **Runtime suffix**: a last paragraph ``Runtime: `` holding ``key=value | …`` pairs.
- **Host boilerplate**: the first system/developer prompt is an agent host's when it is long
  (at least 6,000 characters) and shows host markers: OpenClaw's identity line, or at least
  two of the section headings agent hosts use (tooling, workspace, skills, runtime, safety…)
  in its first and last 6,000 characters. A user's own short system prompt is never
  boilerplate.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

TEXT_PARTS = ("text", "input_text")
IMAGE_PARTS = ("image_url", "input_image", "image")
SYSTEM_ROLES = ("system", "developer")

ENVELOPE_CHARS = 200  # a leading [...] longer than this is the user's text
RUNTIME_TAIL_CHARS = 1500  # where the Runtime: line is looked for
HOST_PROMPT_MIN_CHARS = 6000  # shorter system prompts are the user's own
HOST_PROBE_CHARS = 6000  # head and tail of a long system prompt searched for markers
HOST_MARKERS_NEEDED = 2

# chat channels an agent host relays from (names that are also common words are left out:
# with a date-time after them they are still read as an envelope)
KNOWN_CHANNELS = frozenset({
    "whatsapp", "telegram", "discord", "slack", "signal", "imessage", "bluebubbles", "sms",
    "matrix", "msteams", "googlechat", "mattermost", "irc", "nostr", "zalo", "zalouser",
    "feishu", "lark", "twitch", "nextcloud", "synology", "tlon", "wechat", "webchat",
    "instagram", "twitter",
})
_INTERNAL_OPEN = "<<<BEGIN_"
_INTERNAL_TAG = re.compile(r"<<<BEGIN_[A-Z0-9_]{0,40}INTERNAL_CONTEXT>>>")
_WEEKDAY = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]{0,6},?")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}")
_RUNTIME = re.compile(r"Runtime: [\w.-]{1,40}=[^\n]*")
_IDENTITY = "running inside OpenClaw"
_HOST_SECTIONS = ("## Tooling", "## Tools", "## Workspace", "## Skills", "## Runtime",
                  "## Safety", "<available_skills>", "## Tool Call Style", "## Memory",
                  "# AGENTS.md", "## Project Context", "## Heartbeat")


class Envelope(NamedTuple):
    """What a leading ``[…]`` said: the text after it, and the channel that relayed it."""

    text: str
    relayed: bool
    channel: str  # the envelope's first word as written ("WhatsApp"); "" when none


class Ask(NamedTuple):
    """What the user asked in one chat request (see the module docstring for the rules)."""

    text: str  # the user's words: envelope, timestamp and Runtime suffix removed
    index: int  # type: ignore[assignment]  # position in ``messages`` of the user message (-1: none)
    relayed: bool  # the message came through a chat channel (it had a channel envelope)
    channel: str  # that channel's name as written ("WhatsApp"); "" when not relayed
    host_system: bool  # the system prompt is an agent host's boilerplate
    history: tuple[str, ...]  # earlier asks, newest first (as many as asked for)


NO_ASK = Ask("", -1, False, "", False, ())


def _envelope(text: str, relayed: bool, channel: str) -> Envelope:
    """``Envelope(text, relayed, channel)``, built without NamedTuple's Python-level
    ``__new__`` (this runs for every user message the router reads)."""
    return tuple.__new__(Envelope, (text, relayed, channel))


def content_text(content: Any) -> tuple[str, int]:
    """(the text of a message content, number of image parts). Text parts are joined with a
    newline; anything that is not text or an image part is ignored."""
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        return "", 0
    texts: list[str] = []
    images = 0
    for part in content:
        if isinstance(part, dict):
            kind = part.get("type")
            text = part.get("text")
            if kind in TEXT_PARTS and isinstance(text, str):
                texts.append(text)
            elif kind in IMAGE_PARTS:
                images += 1
        elif isinstance(part, str):
            texts.append(part)
    return "\n".join(texts), images


def message_text(message: Any) -> str:
    """The text of one message ('' for anything that is not a message with text)."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    return content if isinstance(content, str) else content_text(content)[0]


def is_host_internal(text: str) -> bool:
    """Whether a user message's text is a host-internal block (OpenClaw's context block)."""
    head = text[:120].lstrip()
    return head.startswith(_INTERNAL_OPEN) and _INTERNAL_TAG.match(head) is not None


def read_envelope(text: str) -> Envelope:
    """``text`` without one leading host timestamp or channel envelope, and who relayed it."""
    if text[:1] != "[":
        if text[:1].isspace() and text.lstrip()[:1] == "[":
            return read_envelope(text.lstrip())
        return _envelope(text, False, "")
    end = text.find("]", 1, ENVELOPE_CHARS + 2)
    if end < 0:
        return _envelope(text, False, "")
    inside = text[1:end]
    if "\n" in inside or "[" in inside:
        return _envelope(text, False, "")
    rest = text[end + 1:]
    if rest[:1] == " ":
        rest = rest[1:]
    inside = inside.strip()
    dated = _DATE_TIME.search(inside)
    before = inside[:dated.start()].strip() if dated is not None else inside
    if dated is not None and (not before or _WEEKDAY.fullmatch(before)):
        return _envelope(rest, False, "")  # the host's clock: [Thu 2026-12-03 07:45 UTC]
    first = before.split(" ", 1)[0]
    if dated is not None or first.lower() in KNOWN_CHANNELS:
        return _envelope(rest, True, first)
    return _envelope(text, False, "")


def strip_runtime(text: str) -> str:
    """``text`` without a trailing ``Runtime: agent=… | …`` paragraph (hosts add it on a
    session's first turn)."""
    start = text.rfind("Runtime: ", max(0, len(text) - RUNTIME_TAIL_CHARS))
    if start < 0 or (start > 0 and text[start - 1] != "\n"):
        return text
    found = _RUNTIME.match(text, start)
    if found is None or text[found.end():].strip():
        return text
    return text[:start].rstrip()


def user_words(text: str) -> Envelope:
    """A user message's own words (envelope and Runtime suffix removed), and its relay."""
    envelope = read_envelope(text)
    return _envelope(strip_runtime(envelope.text), envelope.relayed, envelope.channel)


def is_host_prompt(text: str) -> bool:
    """Whether a system prompt is an agent host's boilerplate (see the module docstring)."""
    if len(text) < HOST_PROMPT_MIN_CHARS:
        return False
    if len(text) > 2 * HOST_PROBE_CHARS:
        head, tail = text[:HOST_PROBE_CHARS], text[-HOST_PROBE_CHARS:]
    else:
        head, tail = text, ""
    if _IDENTITY in head[:2000]:
        return True
    found = 0
    for marker in _HOST_SECTIONS:
        if marker in head or marker in tail:
            found += 1
            if found >= HOST_MARKERS_NEEDED:
                return True
    return False


def find_ask(body: Any, history: int = 0) -> Ask:
    """What the user asked in a chat-completions ``body`` (never raises; :data:`NO_ASK` when
    there is no user message). ``history`` earlier asks are returned too, newest first."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return NO_ASK
    host_system = False
    for message in messages:
        if isinstance(message, dict) and message.get("role") in SYSTEM_ROLES:
            host_system = is_host_prompt(message_text(message))
            break
    index = len(messages) - 1
    found: Envelope | None = None
    at = -1
    earlier: list[str] = []
    while index >= 0:
        message = messages[index]
        if isinstance(message, dict) and message.get("role") == "user":
            text = message_text(message)
            if not is_host_internal(text):
                words = user_words(text)
                if found is None:
                    found, at = words, index
                    if history <= 0:
                        break
                else:
                    earlier.append(words.text)
                    if len(earlier) >= history:
                        break
        index -= 1
    if found is None:
        return NO_ASK._replace(host_system=host_system)
    # tuple.__new__ skips NamedTuple's Python-level __new__ (this runs on every request)
    return tuple.__new__(Ask, (found.text, at, found.relayed, found.channel, host_system,
                               tuple(earlier)))


class Opening(NamedTuple):
    """How a conversation began: what stays the same on every turn of it."""

    system: Any  # the first system/developer message's content (None when there is none)
    first: str  # the first real user message, its Runtime suffix removed (stamp kept)
    host_system: bool  # the system prompt is an agent host's boilerplate


def conversation_opening(body: Any) -> Opening:
    """The system prompt and first user message of ``body`` (host-internal blocks skipped;
    the timestamp stays, so two conversations opened with the same words stay apart)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    system: Any = None
    seen_system = False
    first = ""
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if not seen_system and role in SYSTEM_ROLES:
            system, seen_system = message.get("content"), True
        elif role == "user":
            text = message_text(message)
            if not is_host_internal(text):
                first = strip_runtime(text)
                break
    host = seen_system and is_host_prompt(system if isinstance(system, str)
                                          else content_text(system)[0])
    return Opening(system, first, host)
