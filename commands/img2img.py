"""``/img2img --image <path> [--mask <path>] [--model M] [--size WxH] <prompt>``: edit an image.

Paths may be absolute, ``~/...`` or relative to the working directory (inside
``images.localFolders``, the home directory by default); quote paths with
spaces. http(s) URLs and data: URIs work too.
"""

from __future__ import annotations

from typing import Any

from clawrouter_plugin.catalog import load_catalog
from clawrouter_plugin.host.api import CommandContext, CommandResult, CommandSpec
from clawrouter_plugin.images.chat import run_image_command
from clawrouter_plugin.images.models import model_table

FLAGS = ("image", "mask", "model", "size")
USAGE = "\n".join([
    "Usage: /img2img --image <path> <prompt>",
    "",
    "Options:",
    "  --image <path>   Source image path (required)",
    "  --mask <path>    Mask image path (optional, white = edit area)",
    "  --model <model>  Model (default: gpt-image)",
    "  --size <WxH>     Output size (default: 1024x1024)",
    "",
    "Models:",
    *model_table(load_catalog(), edit=True),
    "",
    "Examples:",
    "  /img2img --image ~/photo.png 把背景换成星空",
    "  /img2img --image ./cat.jpg --mask ./mask.png remove the background",
    '  /img2img --image "~/My Photos/portrait.png" --size 1536x1024 add a hat',
])


async def run(services: Any, args_text: str, session_id: str,
              local_files: bool = True) -> CommandResult:
    """Edit the ``--image`` given in ``args_text``; ``local_files`` False refuses paths (the
    sender may not have files on this machine read)."""
    return await run_image_command(
        name="img2img", action="Image editing", usage=USAGE, args_text=args_text,
        flags=FLAGS, required=("image",),
        call=lambda parsed: services.images.edit(
            prompt=parsed.prompt, image=parsed.options["image"], mask=parsed.options.get("mask"),
            model=parsed.options.get("model"), size=parsed.options.get("size"), n=1,
            allow_relative=True, local_files=local_files, session_id=session_id))


def command(services: Any) -> CommandSpec:
    """The ``/img2img`` chat command bound to ``services`` (read when it runs)."""

    async def handler(ctx: CommandContext) -> CommandResult:
        return await run(services, ctx.args or "", ctx.session_id, ctx.local_files)

    return CommandSpec(name="img2img", description="Edit an image with a prompt (paid per image)",
                       handler=handler, accepts_args=True, usage=USAGE)
