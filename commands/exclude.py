"""``/exclude``: models the router must never pick (persisted; aliases resolved).

``/exclude`` lists them, ``/exclude add <model>`` and ``/exclude remove <model>`` edit the
list, ``/exclude clear`` empties it. Explicitly requested models are never filtered.
"""

from __future__ import annotations

from typing import Any

from clawrouter_plugin.errors import ClawRouterError
from clawrouter_plugin.host.api import CommandContext, CommandResult, CommandSpec

USAGE = ("/exclude                  list excluded models\n"
         "/exclude add <model>      never route to it (alias or id, e.g. /exclude add grok)\n"
         "/exclude remove <model>   route to it again\n"
         "/exclude clear            remove every exclusion")


def listing(models: frozenset[str]) -> str:
    """The current list, one bullet per model."""
    if not models:
        return "Excluded models: (none)"
    return f"Excluded models ({len(models)}):\n" + "\n".join(f"  • {m}" for m in sorted(models))


def command(services: Any) -> CommandSpec:
    """The /exclude command; ``services`` is read when the command runs."""

    async def handler(ctx: CommandContext) -> CommandResult:
        store = services.exclusions
        words = (ctx.args or "").split()
        action = words[0].lower() if words else "list"
        target = " ".join(words[1:])
        try:
            if action == "list" and not target:
                models = await store.all()
                if not models:
                    return CommandResult(f"No models excluded.\n\nUsage:\n{USAGE}")
                return CommandResult(listing(models) + "\nUse /exclude remove <model> to unblock.")
            if action in ("add", "remove") and not target:
                return CommandResult(f"Which model? e.g. /exclude {action} deepseek", is_error=True)
            if action == "add":
                model = await store.add(target)
                return CommandResult(f"Excluded: {model}\n{listing(await store.all())}")
            if action == "remove":
                model = await store.remove(target)
                return CommandResult(f"Unblocked: {model}\n{listing(await store.all())}")
            if action == "clear" and not target:
                await store.clear()
                left = await store.all()
                note = f"\nStill excluded by the configuration (excludeModels): {', '.join(sorted(left))}" \
                    if left else ""
                return CommandResult("All model exclusions cleared." + note)
        except ClawRouterError as exc:
            return CommandResult(f"⚠️ {exc.message}", is_error=True)
        problem = f"/exclude {action} takes no arguments." if action in ("list", "clear") \
            else f"Unknown subcommand: {words[0]}"
        return CommandResult(f"{problem}\n\nUsage:\n{USAGE}", is_error=True)

    return CommandSpec(name="exclude", description="Keep models out of routing (list/add/remove/clear)",
                       handler=handler, accepts_args=True, usage=USAGE)
