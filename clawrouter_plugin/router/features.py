"""Reading a chat-completions body: the texts to score, token estimates and request flags.

Long texts are never scanned whole: the current instruction is the short head and tail of the
latest user message, the pasted material in between is read through bounded windows, and
token counts come from lengths. That keeps routing a 100k-character request under a few ms.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..ask import content_text, find_ask, is_host_internal
from ..errors import BadRequest

MESSAGE_OVERHEAD_TOKENS = 4  # role and separators per message
IMAGE_TOKENS = 1000  # rough cost of one image input
SPLIT_CHARS = 1200  # longer user messages are split into instruction and material
EDGE_CHARS = 600  # where the instruction's head / tail paragraph is looked for
MATERIAL_WINDOW = (2500, 1500)  # head and tail of the material that is scanned
CONTEXT_WINDOW = (2000, 1000)  # head and tail of system prompts and earlier turns

_SYSTEM_STRUCTURED = re.compile(r"\b(?:json|yaml|yml|schema|structured)\b")
_FORMAT = r"(?:json|yaml|yml)"
_USER_STRUCTURED = re.compile(
    r"\b(?:as|in|into|to|return|returns|output|respond|reply|format|formatted|produce|emit|valid"
    r"|strict|only)\s+(?:[\w-]+\s+){0,3}?" + _FORMAT + r"\b"
    r"|" + _FORMAT + r"[\s-]*(?:format|object|array|schema|output|only|document|response|形式|格式"
    r"|フォーマット|형식)"
    r"|structured output|json schema"
    r"|(?:формат\w*|formato|format|صيغة|بصيغة|بتنسيق|تنسيق)\W+(?:\w+\W+){0,2}?" + _FORMAT
)


SAMPLE_CHARS = 8000  # longer texts estimate their UTF-8 size from a sample
WIDE_TEXT_SHRINK = 3  # windows over CJK-like text (3 bytes a character) are this much smaller


def text_tokens(text: str) -> int:
    """Token estimate: UTF-8 bytes / 4 (so one CJK character is about 0.75 tokens)."""
    if text.isascii():
        return (len(text) + 3) // 4
    if len(text) <= SAMPLE_CHARS:
        return (len(text.encode("utf-8", "surrogatepass")) + 3) // 4
    half = SAMPLE_CHARS // 2
    sample = len((text[:half] + text[-half:]).encode("utf-8", "surrogatepass"))
    return (len(text) * sample // SAMPLE_CHARS + 3) // 4


def window(text: str, head: int, tail: int) -> str:
    """``text`` itself, or its first ``head`` and last ``tail`` characters (fewer for text
    in wide scripts such as Chinese, which says more per character)."""
    if len(text) <= head + tail:
        return text
    if not text.isascii() and len(text[:200].encode("utf-8", "surrogatepass")) > 500:
        head, tail = head // WIDE_TEXT_SHRINK, tail // WIDE_TEXT_SHRINK
    return text[:head] + "\n" + text[-tail:]


def split_instruction(text: str) -> tuple[str, str]:
    """(instruction, material) of a user message: a long message's first and last paragraphs
    are the instruction, the rest is pasted material (code, documents, logs)."""
    if len(text) <= SPLIT_CHARS:
        return text, ""
    head = _head_end(text[:EDGE_CHARS])
    tail = _tail_start(text[-EDGE_CHARS:])
    tail_start = len(text) - EDGE_CHARS + tail if tail is not None else None
    if head is None and tail_start is None:
        head, tail_start = 300, len(text) - 300
    elif head is None:
        head = 0
    elif tail_start is None:
        tail_start = len(text)
    instruction = (text[:head] + "\n" + text[tail_start:]).strip()
    return instruction, text[head:tail_start]


def _head_end(edge: str) -> int | None:
    found = [i for i in (edge.find("\n\n"), edge.find("```")) if i >= 0]
    if found:
        return min(found)
    newline = edge.find("\n")
    return newline if newline >= 0 else None


def _tail_start(edge: str) -> int | None:
    fence = edge.rfind("```")
    found = [i for i in (edge.rfind("\n\n") + 2, fence + 3 if fence >= 0 else -1) if i >= 2]
    if found:
        return max(found)
    newline = edge.rfind("\n")
    return newline + 1 if newline >= 0 else None


@dataclass(slots=True)
class RequestView:
    """What the router needs to know about one request."""

    instruction: str  # the user's ask (short head/tail of a long one); see clawrouter_plugin.ask
    material: str  # pasted material of the latest user message (windowed)
    material_tokens: int
    history: list[str]  # earlier user turns, newest first (windowed)
    system: str  # system / developer prompts (windowed)
    input_tokens: int  # the whole request, host boilerplate included
    own_tokens: int  # input_tokens without an agent host's system prompt and tool list
    output_tokens: int
    has_tools: bool
    images: int
    tool_loop: bool  # the conversation already contains tool calls / results
    structured: bool  # JSON / YAML / schema output asked for in words (prompt or system prompt)
    response_format: str  # "json_object" or "json_schema" when the body asks for it, else ""

    # written out (the dataclass's generated __init__ is interpreted Python even when this
    # module is compiled, and one is built per request)
    def __init__(self, instruction: str, material: str, material_tokens: int, history: list[str],
                 system: str, input_tokens: int, own_tokens: int, output_tokens: int,
                 has_tools: bool, images: int, tool_loop: bool, structured: bool,
                 response_format: str):
        self.instruction = instruction
        self.material = material
        self.material_tokens = material_tokens
        self.history = history
        self.system = system
        self.input_tokens = input_tokens
        self.own_tokens = own_tokens
        self.output_tokens = output_tokens
        self.has_tools = has_tools
        self.images = images
        self.tool_loop = tool_loop
        self.structured = structured
        self.response_format = response_format


JSON_FORMATS = ("json_object", "json_schema")


def _response_format(body: dict) -> str:
    """The JSON ``response_format`` type a body asks the model to honour, or ""."""
    value = body.get("response_format")
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if kind in JSON_FORMATS else ""


def _output_tokens(body: dict, default: int) -> int:
    value = body.get("max_completion_tokens") or body.get("max_tokens")
    if type(value) is int and value > 0:
        return value
    return default


def read_request(body: Any, default_output_tokens: int, history_turns: int) -> RequestView:
    """Parse a chat-completions body into a :class:`RequestView`; malformed → BadRequest."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise BadRequest("'tools' must be a list")
    tokens = len(json.dumps(tools)) // 4 if tools else 0
    ask = find_ask(body, history_turns)
    boilerplate = tokens if ask.host_system else 0  # the host's tool list and system prompt
    host_prompt = ask.host_system  # the first system prompt is the host's, not yet seen
    images = 0
    tool_loop = False
    systems: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            raise BadRequest("each message must be an object with a 'role'")
        role = message.get("role")
        text = message.get("content")
        if not isinstance(text, str):
            text, count = content_text(text)
            images += count
            tokens += count * IMAGE_TOKENS
        size = text_tokens(text) + MESSAGE_OVERHEAD_TOKENS
        tokens += size
        if role == "system" or role == "developer":
            if host_prompt:
                host_prompt = False
                boilerplate += size  # counted in the request's size, never scored
            else:
                systems.append(text)
        elif role == "user":
            if is_host_internal(text):
                boilerplate += size
        elif role == "tool" or (role == "assistant" and message.get("tool_calls")):
            tool_loop = True
            tokens += _call_tokens(message.get("tool_calls"))
    instruction = material = system = ""
    material_tokens = 0
    if ask.index >= 0:
        instruction, material = split_instruction(ask.text)
        if material:
            material_tokens = max(0, text_tokens(ask.text) - text_tokens(instruction))
            material = window(material, *MATERIAL_WINDOW)
    history = [window(t, *CONTEXT_WINDOW) for t in ask.history]
    if systems:
        system = window("\n".join(systems), *CONTEXT_WINDOW)
    return RequestView(instruction, material, material_tokens, history, system, tokens,
                       tokens - boilerplate, _output_tokens(body, default_output_tokens), bool(tools),
                       images, tool_loop, _structured(instruction, system), _response_format(body))


def _call_tokens(calls: Any) -> int:
    """Token estimate of an assistant message's tool calls."""
    tokens = 0
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            tokens += text_tokens(str(function.get("arguments") or "")) + 8
    return tokens


def _asks_format(text: str, pattern: re.Pattern[str]) -> bool:
    lowered = text.lower()
    return ("json" in lowered or "yaml" in lowered or "yml" in lowered or "schema" in lowered
            or "structured" in lowered) and pattern.search(lowered) is not None


@lru_cache(maxsize=64)
def _system_structured(system: str) -> bool:
    return _asks_format(system, _SYSTEM_STRUCTURED)


def _structured(instruction: str, system: str) -> bool:
    """Whether JSON / YAML / schema output is asked for (system prompt or user request)."""
    return _asks_format(instruction, _USER_STRUCTURED) or (
        bool(system) and _system_structured(system))
