"""``/imagegen [--model M] [--size WxH] <prompt>``: generate an image, saved locally."""

from __future__ import annotations

from typing import Any

from clawrouter_plugin.catalog import load_catalog
from clawrouter_plugin.host.api import CommandContext, CommandResult, CommandSpec
from clawrouter_plugin.images.chat import run_image_command
from clawrouter_plugin.images.models import model_table

FLAGS = ("model", "size")
USAGE = "\n".join([
    "Usage: /imagegen <prompt>",
    "",
    "Options:",
    "  --model <model>  Model shorthand or ID (default: nano-banana)",
    "  --size <WxH>     Image size (default: 1024x1024)",
    "",
    "Models:",
    *model_table(load_catalog()),
    "",
    "Examples:",
    "  /imagegen a dog dancing on the beach",
    "  /imagegen --model dall-e-3 a futuristic city at sunset",
    "  /imagegen --model banana-pro --size 2048x2048 mountain landscape",
])


async def run(services: Any, args_text: str, session_id: str) -> CommandResult:
    """Generate one image from ``args_text``."""
    return await run_image_command(
        name="imagegen", action="Image generation", usage=USAGE, args_text=args_text,
        flags=FLAGS, required=(),
        call=lambda parsed: services.images.generate(
            prompt=parsed.prompt, model=parsed.options.get("model"),
            size=parsed.options.get("size"), n=1, session_id=session_id))


def command(services: Any) -> CommandSpec:
    """The ``/imagegen`` chat command bound to ``services`` (read when it runs)."""

    async def handler(ctx: CommandContext) -> CommandResult:
        return await run(services, ctx.args or "", ctx.session_id)

    return CommandSpec(name="imagegen", description="Generate an image (paid per image in USDC)",
                       handler=handler, accepts_args=True, usage=USAGE)
