"""``/model [name]``: show or set the model (or routing profile) of this conversation.

The choice is a session preference the provider hook applies to every later request of the
conversation; switching also drops the session's pin so the new choice routes afresh. Both are
kept under the session id the proxy pipeline uses (long ids become a hash).
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from typing import Any

from clawrouter_plugin.catalog import BLOCKRUN_PREFIX, Catalog
from clawrouter_plugin.errors import ClawRouterError
from clawrouter_plugin.host.api import CommandContext, CommandResult, CommandSpec
from clawrouter_plugin.host.dispatch import trim
from clawrouter_plugin.state.sessions import header_session_id

DEFAULT = "auto"
USAGE = "/model                      show the current model, profiles and aliases\n" \
        "/model <profile|alias|id>   use it for this conversation"


def describe(catalog: Catalog, name: str) -> str:
    """One line for a profile or model id."""
    if catalog.is_profile(name):
        return f"{BLOCKRUN_PREFIX}{name} — {catalog.profiles[name]}"
    model = catalog.chat[name]
    price = "free" if model.is_free else f"${model.input_price:g}/${model.output_price:g} per M tokens"
    return f"{BLOCKRUN_PREFIX}{name} — {price}, {model.context_window:,} context"


def suggest(catalog: Catalog, name: str) -> list[str]:
    """Known names that look like ``name``."""
    key = name.strip().lower().removeprefix(BLOCKRUN_PREFIX)
    names = sorted(set(catalog.profiles) | set(catalog.aliases) | set(catalog.chat))
    containing = [n for n in names if key and key in n and n != key]
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
    return list(dict.fromkeys(close + containing))[:3]


def overview(catalog: Catalog, current: str | None) -> str:
    """The reply to a bare /model."""
    lines = [f"Current: {describe(catalog, current or DEFAULT)}", "", "Routing profiles:"]
    lines += [f"  {name:<8} {text}" for name, text in catalog.profiles.items()]
    by_target: dict[str, list[str]] = defaultdict(list)
    for alias, target in catalog.aliases.items():
        if "/" not in alias:
            by_target[target].append(alias)
    lines += ["", "Aliases:"]
    lines += [f"  {target}: {', '.join(aliases)}" for target, aliases in sorted(by_target.items())]
    lines += ["", "Use /model <profile|alias|model id> to switch this conversation."]
    return "\n".join(lines)


def command(services: Any) -> CommandSpec:
    """The /model command; ``services`` is read when the command runs."""

    async def handler(ctx: CommandContext) -> CommandResult:
        catalog, sessions = services.catalog, services.sessions
        sid, wanted = header_session_id(ctx.session_id), trim(ctx.args or "")
        if not wanted:
            return CommandResult(overview(catalog, await sessions.preference(sid)))
        if len(wanted.split()) > 1:
            return CommandResult(f"Usage:\n{USAGE}", is_error=True)
        name = catalog.resolve(wanted)
        if not (catalog.is_profile(name) or name in catalog.chat):
            hints = suggest(catalog, wanted)
            hint = f" Did you mean: {', '.join(hints)}?" if hints else " Try /model for the list."
            return CommandResult(f"Unknown model \"{wanted}\".{hint}", is_error=True)
        try:
            await sessions.clear(sid)
            await sessions.set_preference(sid, name)
        except ClawRouterError as exc:  # the shared state server cannot be reached
            return CommandResult(f"⚠️ {exc.message}", is_error=True)
        return CommandResult(f"This conversation now uses {describe(catalog, name)}")

    return CommandSpec(name="model", description="Show or set this conversation's model or profile",
                       handler=handler, accepts_args=True, usage=USAGE)
