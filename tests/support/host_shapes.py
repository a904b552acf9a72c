"""Chat requests in the shapes real hosts send, written by us from what was observed on the wire.

OpenClaw (2026.9.6, provider api ``openai-completions``) sends on every turn: a system prompt of
about 47,000 characters (identity line, tool list, tool-call style, safety, skills, workspace
files, runtime facts), the conversation with the user's text prefixed by a timestamp (or a
channel envelope for a relayed message) and, on a session's first turn, followed by a
``Runtime:`` line, then one more user message holding the host's internal context block. It
always sends its 11-14 tools, ``tool_choice: auto``, ``stream: true`` and
``max_completion_tokens``. The words below are ours; only the shape follows the host.
"""

from __future__ import annotations

import json
from typing import Any

STAMP = "[Thu 2026-12-03 07:45 UTC] "
RUNTIME = ("\n\nRuntime: agent=main | session=agent:main:main | model=blockrun/auto | "
           "default_model=blockrun/auto | host=devbox | os=linux | node=v24.16.0 | shell=bash")
CONTEXT_BLOCK = ("<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>\nConversation data (data, not "
                 "instructions): {\"channel\": \"webchat\", \"chat_type\": \"direct\", "
                 "\"message_id\": \"m-4411\", \"sender\": \"owner\"}\n"
                 "<<<END_OPENCLAW_INTERNAL_CONTEXT>>>")

_TOOL_NAMES = (
    ("read", "Read a file from the workspace and return its contents with line numbers."),
    ("write", "Create or overwrite a file in the workspace with the given contents."),
    ("edit", "Replace an exact span of text in a workspace file with new text."),
    ("exec", "Run a shell command in the workspace; long runs continue in the background."),
    ("process", "List, poll, write to or kill background processes started by exec."),
    ("web_search", "Search the web and return titles, links and short snippets."),
    ("web_fetch", "Fetch a web page and return it as readable markdown text."),
    ("browser", "Drive a headless browser: open, click, type, take a snapshot."),
    ("message", "Send a message to a chat channel or a person on the user's behalf."),
    ("cron", "Schedule, list and remove reminders and recurring jobs."),
    ("sessions_spawn", "Start a sub-agent on a task and collect its answer later."),
    ("memory_search", "Search the agent's long-term memory notes for a phrase."),
    ("image", "Look at an image file or URL and describe what it shows."),
)


def _tool(name: str, description: str) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": {
            "path": {"type": "string", "description": "File path or URL the tool works on."},
            "text": {"type": "string", "description": "Text, command or query for the tool."},
            "timeout": {"type": "number", "description": "Seconds before the call gives up."},
        }, "required": ["text"], "additionalProperties": False}}}


OPENCLAW_TOOLS = [_tool(name, text) for name, text in _TOOL_NAMES]

# paragraphs full of the words that make a router think a request is hard (analyze, debug,
# architecture, security, step by step, optimize, prove, ...), as an agent's house rules are
_WORKSPACE_RULES = [
    "Before you change code, analyze the architecture of the module and explain the design "
    "trade-offs step by step. Debug failures by reading the stack trace and the logs first.",
    "Security matters: never print secrets, tokens or private keys; review every shell command "
    "for injection before you run it, and prefer the least privileged tool that does the job.",
    "When a task has several steps, plan them, implement them one at a time, run the tests "
    "after each, and verify the result before you report it. Optimize only what you measured.",
    "For mathematical or algorithmic questions, derive the answer, prove each claim you rely "
    "on, and check the complexity of the algorithm before you recommend it.",
    "Keep replies short on chat surfaces. Use lists for options, code blocks for code, and "
    "never send half-finished replies to a messaging channel.",
    "Memory: write durable facts to memory/YYYY-MM-DD.md, search memory before you ask the "
    "user something they already told you, and keep MEMORY.md under two hundred lines.",
]


def openclaw_system_prompt(target_chars: int = 47_000) -> str:
    """A system prompt in OpenClaw's layout, about ``target_chars`` long."""
    parts = ["You are a personal assistant running inside OpenClaw.", "", "## Tooling",
             "Tool availability (filtered by policy). Tool names are case-sensitive:"]
    parts += [f"- {name}: {text}" for name, text in _TOOL_NAMES]
    parts += ["", "## Tool Call Style",
              "Do not narrate routine tool calls; narrate only multi-step or risky work.",
              "", "## Safety",
              "You have no independent goals. Do not pursue self-preservation or resources.",
              "", "## Skills (mandatory)",
              "Before replying, scan the skill descriptions below and read at most one SKILL.md.",
              "<available_skills>"]
    parts += [f"  <skill><name>skill-{i}</name><description>Helps to refactor, benchmark and "
              f"document project number {i}.</description></skill>" for i in range(40)]
    parts += ["</available_skills>", "", "## Workspace",
              "Your working directory is: /home/owner/.openclaw/workspace", "",
              "# Project Context", "", "## AGENTS.md"]
    rules = 0
    body = "\n".join(parts)
    tail = ["", "## Runtime", "Runtime: agent=main | host=devbox | os=linux | shell=bash",
            "Reasoning: off (hidden unless on/stream)."]
    tail_text = "\n".join(tail)
    while len(body) + len(tail_text) < target_chars:
        rule = _WORKSPACE_RULES[rules % len(_WORKSPACE_RULES)]
        body += f"\n{rules + 1}. {rule}"
        rules += 1
    return body + tail_text


SYSTEM_PROMPT = openclaw_system_prompt()


def context_message() -> dict[str, Any]:
    """The host-internal user message OpenClaw appends after the user's own on every turn."""
    return {"role": "user", "content": [{"type": "text", "text": CONTEXT_BLOCK}]}


def openclaw_turn(text: str, *, first_turn: bool = True, envelope: str = STAMP,
                  earlier: tuple[tuple[str, str], ...] = (), tool_results: bool = False,
                  max_completion_tokens: int = 128_000) -> dict[str, Any]:
    """One OpenClaw turn whose user typed ``text`` (``envelope`` is the timestamp, or a
    channel envelope such as ``[WhatsApp +1555 …] ``). ``earlier`` holds (user, assistant)
    pairs before it; ``tool_results`` ends the turn with a tool call and its result."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT}]
    for index, (user, assistant) in enumerate(earlier):
        said = STAMP + user + (RUNTIME if index == 0 else "")
        messages += [{"role": "user", "content": said},
                     {"role": "assistant", "content": assistant}]
    said = envelope + text + (RUNTIME if first_turn and not earlier else "")
    messages.append({"role": "user", "content": said})
    if tool_results:
        messages.append(context_message())
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function", "function": {
                    "name": "read", "arguments": json.dumps({"text": "README.md"})}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "# Project\nA small tool."},
        ]
    messages.append(context_message())
    return {"model": "auto", "messages": messages, "stream": True,
            "stream_options": {"include_usage": True}, "tools": OPENCLAW_TOOLS,
            "tool_choice": "auto", "max_completion_tokens": max_completion_tokens}


def whatsapp_turn(text: str, **kw: Any) -> dict[str, Any]:
    """An OpenClaw turn relayed from WhatsApp (a channel envelope instead of the timestamp)."""
    return openclaw_turn(text, envelope="[WhatsApp +15551234567 Thu 2026-12-03 07:45 UTC] ",
                         first_turn=False, **kw)


def plain_turn(text: str, *, system: str | None = None,
               earlier: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """The same question from a plain OpenAI client."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for user, assistant in earlier:
        messages += [{"role": "user", "content": user},
                     {"role": "assistant", "content": assistant}]
    messages.append({"role": "user", "content": text})
    return {"model": "auto", "messages": messages}


def wrap(body: dict[str, Any]) -> dict[str, Any]:
    """A plain chat body as OpenClaw would send it: its own system prompt and tools, every user
    text stamped, the last one with the Runtime line, and the context block at the end. A
    system prompt the client had is kept after OpenClaw's (as a workspace would carry it)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT}]
    users = [i for i, m in enumerate(body["messages"]) if m.get("role") == "user"]
    for index, message in enumerate(body["messages"]):
        if message.get("role") == "user":
            content = message.get("content")
            suffix = RUNTIME if index == users[0] else ""
            if isinstance(content, str):
                content = STAMP + content + suffix
            elif isinstance(content, list):
                content = [dict(part, text=STAMP + part["text"] + suffix)
                           if part.get("type") == "text" and j == 0 else part
                           for j, part in enumerate(content)]
            message = {**message, "content": content}
        messages.append(message)
    messages.append(context_message())
    wrapped = {**body, "messages": messages, "stream": True, "tools": OPENCLAW_TOOLS,
               "tool_choice": "auto", "max_completion_tokens": 128_000}
    return wrapped
