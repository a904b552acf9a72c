"""Run registered chat commands by name, for hosts that reach ClawRouter over HTTP.

The proxy's command endpoint gets one of these from the entry point (``plugin.py``), so the
core package never imports ``commands/``; a command runs through the same dispatcher rules as
in our own host (``run_command``: the auth check, argument hygiene, contained failures).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace

from .api import CommandContext, CommandResult, CommandSpec
from .dispatch import clean_args, run_command
from .registry import command_key

log = logging.getLogger("clawrouter.commands")


class CommandRunner:
    """The registered commands, looked up like the host does (``-`` and ``_`` alike)."""

    def __init__(self, specs: Iterable[CommandSpec]) -> None:
        self._specs = {command_key(spec.name): spec for spec in specs}

    def knows(self, name: str) -> bool:
        """Whether ``name`` is a registered command."""
        return command_key(name) in self._specs

    def names(self) -> list[str]:
        """The registered command names, sorted."""
        return sorted(spec.name for spec in self._specs.values())

    async def run(self, name: str, ctx: CommandContext) -> CommandResult:
        """Run command ``name`` (which must be known) with ``ctx``; its arguments are cleaned
        (control characters dropped, capped) the way a chat message's are."""
        spec = self._specs[command_key(name)]
        args = clean_args(ctx.args) if ctx.args else None
        if args and not spec.accepts_args:
            return CommandResult(text=f"/{spec.name} takes no arguments.", is_error=True)
        body = f"/{spec.name}" + (f" {args}" if args else "")
        return await run_command(spec, replace(ctx, args=args, command_body=body), log)
