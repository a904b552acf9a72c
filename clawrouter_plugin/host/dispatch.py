"""Chat-command dispatch rules: what counts as a command, argument hygiene, errors, /help.

A message is a command only when it is wholly ``/name args``. Names match case-insensitively
with ``-`` and ``_`` alike; a command that takes no arguments does not match a message with
arguments (the message then goes to the model, like any other text). Blanks and invisible
characters (zero-width spaces, byte-order and direction marks) around the message or its
arguments are ignored. Arguments lose control characters (tab and newline stay) and are capped
at 4096 characters. A failing handler gives
"Command failed" and a short reason; the traceback goes to the log only.

Who may run what is decided here, once, for every door (the terminal host, the HTTP chat
intercept, a host's command call): :func:`command_context` turns who is asking into a
:class:`CommandContext`, and :func:`run_command` refuses a ``require_auth`` command (one that
spends money or reads local files) for a sender that is not authorised, like OpenClaw's
``requireAuth``. A message relayed from a chat channel is not authorised unless
``commands.allowRelayed`` says so, and never reads local files unless
``commands.relayedLocalFiles`` says so too.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..config import CommandsConfig
from ..errors import ClawRouterError
from .api import CommandContext, CommandResult, CommandSpec

MAX_ARGS_CHARS = 4096
MAX_REASON_CHARS = 300
AUTH_REQUIRED = "⚠️ This command requires authorization."

log = logging.getLogger("clawrouter.host")
_MESSAGE = re.compile(r"/([A-Za-z][A-Za-z0-9_-]*)(?:\s+(.*))?", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# what trim() drops at the ends: every blank, and zero-width spaces/joiners, direction marks, BOM
_BLANKS = "".join(ch for ch in map(chr, range(0x3001)) if ch.isspace()) + \
    "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"


@dataclass(frozen=True)
class ParsedCommand:
    """``/name args`` split; ``args`` is None when there were none."""

    name: str
    args: str | None
    body: str


def trim(text: str) -> str:
    """``text`` without blanks or invisible characters at either end."""
    return text.strip(_BLANKS)


def clean_args(raw: str) -> str | None:
    """Drop control characters except tab and newline, trim, cap at 4096 characters."""
    cleaned = trim(trim(_CONTROL.sub("", raw))[:MAX_ARGS_CHARS])
    return cleaned or None


def parse_command(text: str) -> ParsedCommand | None:
    """The command in ``text`` if the whole message is one, else None."""
    match = _MESSAGE.fullmatch(trim(text))
    if not match:
        return None
    args = clean_args(match.group(2)) if match.group(2) else None
    body = f"/{match.group(1)}" + (f" {args}" if args else "")
    return ParsedCommand(name=match.group(1), args=args, body=body)


def command_context(name: str, args: str | None, *, policy: CommandsConfig, channel: str,
                    sender_id: str, authorized: bool, relayed: bool, session_id: str,
                    owner: bool = False) -> CommandContext:
    """The context for running ``/name args`` for this sender: the one place that decides
    whether the sender is authorised and may have local files read.

    ``authorized`` is what the door knows (the host's flag; True for the local user);
    ``relayed`` says the message came through a chat channel from another device.
    """
    allowed = authorized and (not relayed or policy.allow_relayed)
    return CommandContext(
        args=args, command_body=f"/{name}" + (f" {args}" if args else ""), channel=channel,
        sender_id=sender_id, is_authorized_sender=allowed, session_id=session_id,
        sender_is_owner=owner and allowed, relayed=relayed,
        local_files=allowed and (not relayed or policy.relayed_local_files))


def short_reason(exc: BaseException) -> str:
    """A one-line, secret-free reason: our own errors' messages, else the exception class."""
    if isinstance(exc, ClawRouterError):
        reason = exc.message.strip().splitlines()[0] if exc.message.strip() else exc.type
    elif isinstance(exc, TimeoutError):
        reason = "timed out"
    else:
        reason = f"internal error ({type(exc).__name__})"
    return reason[:MAX_REASON_CHARS]


def log_failure(what: str, exc: Exception, logger: logging.Logger = log) -> None:
    """Log a contained failure: our own errors as one line, anything else with its traceback."""
    if isinstance(exc, ClawRouterError):
        logger.info("%s failed: %s", what, exc.message)
    else:
        logger.error("%s failed", what, exc_info=exc)


def as_result(value: Any, name: str, logger: logging.Logger) -> CommandResult:
    """A handler's return value as a :class:`CommandResult` (anything else is an empty reply)."""
    if isinstance(value, CommandResult):
        return value
    if isinstance(value, str):
        return CommandResult(text=value)
    logger.warning("command /%s returned %s, not a CommandResult", name, type(value).__name__)
    return CommandResult()


async def run_command(spec: CommandSpec, ctx: CommandContext,
                      logger: logging.Logger) -> CommandResult:
    """Run one command with the auth check and error containment."""
    if spec.require_auth and not ctx.is_authorized_sender:
        return CommandResult(text=AUTH_REQUIRED, is_error=True)
    try:
        value = spec.handler(ctx)
        if inspect.isawaitable(value):
            value = await value
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # contained: a broken command must not take the chat down
        log_failure(f"command /{spec.name}", exc, logger)
        return CommandResult(text=f"⚠️ Command failed: {short_reason(exc)}", is_error=True)
    return as_result(value, spec.name, logger)


def help_text(commands: Iterable[CommandSpec], topic: str | None = None) -> str:
    """The /help reply: one line per command, or one command's usage (``/help <name>``)."""
    specs = sorted(commands, key=lambda c: c.name)
    if topic:
        key = topic.strip().lstrip("/").lower().replace("-", "_")
        for spec in specs:
            if spec.name.lower().replace("-", "_") == key:
                return f"/{spec.name} — {spec.description}" + (f"\n\n{spec.usage}" if spec.usage else "")
        return f"No command /{topic.strip().lstrip('/')}. /help lists them."
    lines = ["Commands:", "  /help [command] — this list, or how to use one command"]
    lines += [f"  /{spec.name} — {spec.description}" for spec in specs]
    lines.append("Anything else is sent to the model.")
    return "\n".join(lines)
