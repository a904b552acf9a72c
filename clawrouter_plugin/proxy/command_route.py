"""``POST /v1/clawrouter/commands/{name}``: ClawRouter's chat commands for other hosts.

The OpenClaw plugin (``openclaw/index.js``) and any other host call this route to run
``/stats``, ``/wallet``, ``/exclude``, ``/imagegen`` and ``/img2img``. The body is
``{"args": str, "sender": str|null, "channel": str|null, "authorized": bool}``; the answer is
``{"text": str, "media": [absolute paths of stored images], "isError": bool}``. The commands
run through the entry point's :class:`~clawrouter_plugin.host.command_runner.CommandRunner`
(the same handlers and dispatcher rules as our host), given to the services at start-up.

Only programs on this machine may call it: the peer must be a loopback address (on top of
the Host/Origin checks every route gets). ``/wallet export`` and ``/wallet recover`` are
refused: a chat surface must never show a secret or replace the wallet.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace
from typing import Any, Protocol

from aiohttp import web

from ..errors import BadRequest, ClawRouterError
from ..host.api import CommandContext, CommandResult
from ..host.dispatch import command_context

PATH = "/v1/clawrouter/commands/{name}"
NAMESPACE = "/v1/clawrouter/{tail:.*}"  # answered here, never forwarded upstream
MAX_FIELD_CHARS = 200
SECRET_ACTIONS = {"wallet": ("export", "recover")}
REFUSED = ("⚠️ /{0} {1} is not available in chat: it would show or replace the wallet's "
           "secret. Run `clawrouter wallet {1}` in a terminal on this machine.")


class Commands(Protocol):
    """What the route needs from the entry point's command runner."""

    def knows(self, name: str) -> bool: ...
    async def run(self, name: str, ctx: CommandContext) -> CommandResult: ...


def is_loopback(remote: str | None) -> bool:
    """Whether the peer address ``remote`` is this machine (127.0.0.0/8, ::1, mapped v4)."""
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _text_field(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"'{key}' must be a string or null")
    return value[:MAX_FIELD_CHARS] if key != "args" else value


def _refused_action(name: str, args: str | None) -> str | None:
    """The secret action ``args`` asks for, if any (letters only: invisible characters or
    punctuation around the word do not hide it)."""
    words = re.findall(r"[a-z]+", (args or "").lower())
    action = words[0] if words else ""
    return action if action in SECRET_ACTIONS.get(name.lower(), ()) else None


def media_paths(result: CommandResult) -> tuple[list[str], str]:
    """The absolute paths of the stored images a result links to, and its text without
    those local links (a chat surface attaches the files; a localhost link is useless there)."""
    stored = {url: path for url, path in zip(result.media_urls, result.media_paths) if path}
    text = result.text or ""
    if stored:
        text = "\n".join(line for line in text.splitlines() if line.strip() not in stored)
    return list(stored.values()), text


async def run_command_route(request: web.Request) -> web.Response:
    """Run one chat command for a local host; see the module docstring."""
    from .app import SERVICES, read_json

    if not is_loopback(request.remote):
        raise ClawRouterError("chat commands are only served to programs on this machine",
                              status=403, code="forbidden_peer")
    if request.method != "POST":
        raise web.HTTPMethodNotAllowed(request.method, ["POST"])
    services = request.app[SERVICES]
    name = request.match_info["name"]
    commands: Commands | None = services.commands
    if commands is None or not commands.knows(name):
        raise ClawRouterError(f"no chat command /{name[:MAX_FIELD_CHARS]}", status=404,
                              code="unknown_command")
    body = await read_json(request)
    args = _text_field(body, "args")
    sender, channel = _text_field(body, "sender"), _text_field(body, "channel")
    authorized = body.get("authorized", False)
    if not isinstance(authorized, bool):
        raise BadRequest("'authorized' must be true or false")
    refused = _refused_action(name, args)
    if refused:
        return web.json_response({"text": REFUSED.format(name.lower(), refused), "media": [],
                                  "isError": True})
    # "terminal" means the owner at our own host's prompt; a caller over HTTP is never that
    channel = channel if channel and channel != "terminal" else "http"
    # the host (OpenClaw's owner model) decided who is authorised; a command from one of its
    # channels comes from another device, so it reads local files only if config says so
    ctx = command_context(name, args, policy=services.config.commands, channel=channel,
                          sender_id=sender or "unknown", authorized=authorized, relayed=False,
                          session_id=f"command:{channel}:{sender or 'unknown'}")
    ctx = replace(ctx, local_files=ctx.local_files and services.config.commands.relayed_local_files)
    result = await commands.run(name, ctx)
    paths, text = media_paths(result)
    return web.json_response({"text": text, "media": paths, "isError": result.is_error})


def add_command_routes(app: web.Application) -> None:
    """Mount the command route, and keep everything under ``/v1/clawrouter/`` local."""
    from .app import not_found

    app.router.add_route("*", PATH, run_command_route)
    app.router.add_route("*", NAMESPACE, not_found)
