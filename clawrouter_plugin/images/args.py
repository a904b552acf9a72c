"""Parsing ``/imagegen`` and ``/img2img`` arguments typed in a chat.

Flags (``--model M``, ``--size=WxH``, ...) may appear anywhere; their values may be quoted
(``--image "~/My Photos/cat.png"``, also with typographic quotes) or use backslash escapes.
Everything else is the prompt, taken verbatim from the original text, so apostrophes
("don't"), quotes and any language pass through untouched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import BadRequest

_FLAG = re.compile(r"--[A-Za-z][\w-]*")
_QUOTES = {"'": "'", '"': '"', "“": "”", "‘": "’", "«": "»"}
_DASHES = ("—", "–")  # em and en dash
HELP_FLAGS = ("--help", "-h")


@dataclass(frozen=True)
class CommandArgs:
    """The prompt, the flag values by name (without dashes), and whether help was asked."""

    prompt: str
    options: dict[str, str] = field(default_factory=dict)
    help: bool = False


def parse_command_args(text: str | None, flags: tuple[str, ...]) -> CommandArgs:
    """Split ``text`` into flags named in ``flags`` (e.g. ``("model", "size")``) and a prompt.

    Unknown ``--options``, a flag given twice, a flag without a value and an unclosed quote
    are :class:`BadRequest` errors, so a typo never becomes part of a paid prompt.
    """
    text = text or ""
    options: dict[str, str] = {}
    kept: list[str] = []
    wants_help = False
    start = i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        end = _word_end(text, i)
        raw, eq, _ = text[i:end].partition("=")
        name = raw
        if raw[:1] in _DASHES and raw[1:].lower() in (*flags, "help"):
            name = "--" + raw[1:]  # phones turn "--" into "—"
        if name in HELP_FLAGS and not eq:
            wants_help = True
        elif _FLAG.fullmatch(name):
            flag = name[2:].lower()
            if flag not in flags:
                known = ", ".join(f"--{f}" for f in flags)
                raise BadRequest(f"unknown option {name} (options: {known}, --help)",
                                 code="invalid_arguments")
            if flag in options:
                raise BadRequest(f"{name} was given twice", code="invalid_arguments")
            value_at = i + len(raw) + 1 if eq else _skip_space(text, end)
            options[flag], end = _value(text, value_at, name, inline=bool(eq))
        else:
            i = end
            continue
        kept.append(text[start:i])
        start = i = end
    kept.append(text[start:])
    prompt = " ".join(part.strip() for part in kept if part.strip())
    return CommandArgs(prompt=prompt, options=options, help=wants_help)


def _word_end(text: str, i: int) -> int:
    while i < len(text) and not text[i].isspace():
        i += 1
    return i


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _value(text: str, i: int, flag: str, *, inline: bool) -> tuple[str, int]:
    """The shell-like word starting at ``i`` (quotes and backslashes) and where it ends."""
    if i >= len(text) or (not inline and text.startswith(("--", *_DASHES), i)):
        raise BadRequest(f"{flag} needs a value", code="invalid_arguments")
    out: list[str] = []
    closer: str | None = None
    while i < len(text):
        char = text[i]
        if closer is not None:
            if char == closer:
                closer = None
            elif char == "\\" and closer == '"' and text[i + 1:i + 2] in ('"', "\\"):
                i += 1
                out.append(text[i])
            else:
                out.append(char)
        elif char in _QUOTES:
            closer = _QUOTES[char]
        elif char == "\\" and i + 1 < len(text):
            i += 1
            out.append(text[i])
        elif char.isspace():
            break
        else:
            out.append(char)
        i += 1
    if closer is not None:
        raise BadRequest(f"unclosed quote in the value of {flag}", code="invalid_arguments")
    if not out:
        raise BadRequest(f"{flag} needs a value", code="invalid_arguments")
    return "".join(out), i
