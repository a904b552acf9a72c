"""ClawRouter's chat commands. Each module has ``command(services) -> CommandSpec``; handlers
read ``services`` only when they run, so the commands can be registered before the proxy starts.
"""

from __future__ import annotations

from typing import Any

from clawrouter_plugin.host.api import CommandSpec

from . import exclude, imagegen, img2img, model, stats, wallet

MODULES = (model, stats, wallet, exclude, imagegen, img2img)
# also answered inside /v1/chat/completions, for hosts without our plugin (who may run what is
# decided by host.dispatch.command_context: not a message relayed from a channel, by default)
INTERCEPTED = ("stats", "wallet", "exclude", "imagegen", "img2img")


def all_commands(services: Any) -> list[CommandSpec]:
    """Every ClawRouter chat command, bound to ``services``."""
    return [module.command(services) for module in MODULES]
