"""Chat commands typed as the user's ask in a completion request (how hosts without our
plugin deliver them): ``/name args`` found in :func:`clawrouter_plugin.ask.find_ask`'s text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..ask import Ask

_COMMAND = re.compile(r"^/([A-Za-z][\w-]*)(?:\s+(.*))?$", re.DOTALL)


@dataclass(frozen=True)
class ChatCommand:
    """A command found in a chat request, and where the message came from."""

    name: str
    args: str
    relayed: bool = False  # relayed from a chat channel (an envelope, or the host said so)
    channel: str = ""  # that channel's name, when known


def find_command(ask: Ask, names: frozenset[str] | set[str] | dict,
                 relayed: bool = False) -> ChatCommand | None:
    """The ``/name args`` command that is the whole of the user's ask, if ``name`` is one of
    ``names``. ``relayed`` adds the host's own word that the message came from a channel."""
    text = ask.text.strip()
    if text[:1] != "/":
        return None
    match = _COMMAND.match(text)
    if not match:
        return None
    name = match.group(1).lower().replace("_", "-")
    if name not in names:
        return None
    return ChatCommand(name=name, args=(match.group(2) or "").strip(),
                       relayed=ask.relayed or relayed, channel=ask.channel)
