"""What ``/imagegen`` and ``/img2img`` share: parse, call the service, reply in plain text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..errors import BadRequest, ClawRouterError, PaymentFailed, PaymentRefused
from ..host.api import CommandResult
from .args import CommandArgs, parse_command_args
from .service import ImageResult


async def run_image_command(
    *,
    name: str,
    action: str,
    usage: str,
    args_text: str | None,
    flags: tuple[str, ...],
    required: tuple[str, ...],
    call: Callable[[CommandArgs], Awaitable[ImageResult]],
) -> CommandResult:
    """Run one image chat command and turn its outcome (or failure) into a chat reply.

    ``--help``, a missing prompt or a missing required flag answer with ``usage``; every
    ClawRouterError becomes a readable "<action> failed: ..." reply, never a traceback.
    """
    try:
        parsed = parse_command_args(args_text, flags)
    except BadRequest as exc:
        return CommandResult(text=f"{exc.message}\n\n{usage}", is_error=True)
    if parsed.help:
        return CommandResult(text=usage)
    missing = [f"--{flag}" for flag in required if not parsed.options.get(flag)]
    if missing or not parsed.prompt:
        return CommandResult(text=usage, is_error=bool(args_text and args_text.strip()))
    try:
        result = await call(parsed)
    except ClawRouterError as exc:
        return CommandResult(text=failure_text(f"/{name}", action, exc), is_error=True)
    return CommandResult(text=result_text(result, action),
                         media_urls=tuple(image.url for image in result.images),
                         media_paths=tuple(str(image.path.absolute()) if image.path else ""
                                           for image in result.images))


def failure_text(command: str, action: str, exc: ClawRouterError) -> str:
    """'Image generation failed: <why>' plus a hint on what to do about it."""
    text = f"{action} failed: {exc.message}"
    if isinstance(exc, PaymentRefused):
        text += "\nNothing was paid."
    elif isinstance(exc, PaymentFailed):
        text += "\nCheck your wallet's USDC balance with /wallet."
    elif isinstance(exc, BadRequest):
        text += f"\nSee {command} --help."
    return text


def result_text(result: ImageResult, action: str) -> str:
    """The reply: each image's local URL and file, then model, size and cost."""
    lines = [f"{action} done:" if len(result.images) == 1 else
             f"{action} done ({len(result.images)} images):"]
    for image in result.images:
        lines.append(image.url if not image.url.startswith("data:") else "(inline image)")
        if image.path is not None:
            lines.append(f"  saved to {image.path}")
        if image.note:
            lines.append(f"  note: {image.note}")
        if image.revised_prompt:
            lines.append(f"  revised prompt: {image.revised_prompt}")
    lines.append("")
    lines.append(f"Model: {result.model} | Size: {result.size} | Cost: {usd(result.cost_usd)}")
    return "\n".join(lines)


def usd(amount: float) -> str:
    """'$0.05', '$0.0125', '$0'."""
    if amount == 0:
        return "$0"
    text = f"{amount:.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"
