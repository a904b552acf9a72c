"""``clawrouter chat``: a terminal chat on the plugin host.

The host loads ClawRouter (and any installed third-party plugin), starts its proxy in process
(on a free port unless ``--port`` is given; an already running clawrouter on that port is
reused over HTTP), and keeps one conversation per run: a session id, the history, streamed
replies, every slash command and ``/help``. On a terminal, Ctrl-C cancels the reply being
written without leaving the chat; Ctrl-D or ``/exit`` quits. When stdin is not a terminal it
reads one message per line and prints each reply, so it can be scripted; the exit code is 1
if any reply was an error.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import signal
import sys
from typing import TextIO

from ..config import PLUGIN_ID, load_config, with_overrides
from ..errors import ClawRouterError
from .host import DEFAULT_MODEL, Conversation, Host, HostReply
from .openclaw_setup import PROVIDER_ID

EXIT_WORDS = ("/exit", "/quit")
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
BANNER = ("ClawRouter chat — {model}. /help lists commands; Ctrl-C cancels a reply; "
          "Ctrl-D or /exit quits.")


class _BriefFormatter(logging.Formatter):
    """Log lines without tracebacks (they would end up in the chat); --verbose shows them."""

    def formatException(self, ei) -> str:
        return ""

    def formatStack(self, stack_info: str) -> str:
        return ""


def _quiet_logging(verbose: bool) -> None:
    if verbose:
        return
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_BriefFormatter("%(levelname)s %(name)s: %(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


class Spinner:
    """A waiting indicator on the terminal until the first output (or the reply) arrives."""

    def __init__(self, out: TextIO, label: str) -> None:
        self.out, self.label = out, label
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._spin())

    async def _spin(self) -> None:
        for frame in itertools.cycle(SPINNER):
            self.out.write(f"\r{frame} {self.label}…")
            self.out.flush()
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
            self.out.write("\r\033[K")
            self.out.flush()


class TtyLines:
    """Lines typed on the terminal, read without blocking the event loop (the proxy runs there)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._buffer = b""
        asyncio.get_running_loop().add_reader(fd, self._ready)

    def _ready(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # the terminal went away: treat as end of input
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.fd)
            self.queue.put_nowait(None)
            return
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            self.queue.put_nowait(line.decode("utf-8", "replace"))

    async def readline(self) -> str | None:
        return await self.queue.get()

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.fd)


class Chat:
    """One conversation on a started host, printing to ``out``."""

    def __init__(self, host: Host, conv: Conversation, out: TextIO, interactive: bool) -> None:
        self.host, self.conv, self.out, self.interactive = host, conv, out, interactive
        self.current: asyncio.Task | None = None
        self.errors = 0

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    async def turn(self, text: str) -> HostReply | None:
        """Answer one message, streaming the reply; None when cancelled."""
        spinner = Spinner(self.out, "waiting") if self.interactive else None
        streamed = False

        def on_delta(delta: str) -> None:
            nonlocal streamed
            if spinner is not None and not streamed:
                spinner.stop()
            streamed = True
            self.write(delta)

        if spinner is not None:
            spinner.start()
        self.current = asyncio.ensure_future(self.host.dispatch(text, self.conv, on_delta))
        try:
            reply = await self.current
        except asyncio.CancelledError:
            if self.current.cancelled() and not _task_cancelling():
                self.write("\n[reply cancelled]\n" if streamed else "[cancelled]\n")
                return None
            raise
        finally:
            self.current = None
            if spinner is not None:
                spinner.stop()
        if streamed:
            self.write("\n")
        else:
            self.write((reply.text or "") + "\n")
        for url in reply.media_urls:
            if url not in reply.text:
                self.write(f"{url}\n")
        self.errors += reply.is_error
        return reply

    def interrupt(self) -> None:
        """Ctrl-C: cancel the reply in progress, or remind how to quit at the prompt."""
        if self.current is not None and not self.current.done():
            self.current.cancel()
        else:
            self.write("\n(Ctrl-D or /exit to quit)\nyou › ")


def _task_cancelling() -> bool:
    task = asyncio.current_task()
    return bool(task is not None and task.cancelling())


async def _loop_tty(chat: Chat) -> None:
    loop = asyncio.get_running_loop()
    lines = TtyLines(sys.stdin.fileno())
    loop.add_signal_handler(signal.SIGINT, chat.interrupt)
    try:
        while True:
            chat.write("you › ")
            line = await lines.readline()
            if line is None:
                chat.write("\n")
                return
            if not await _take(chat, line):
                return
            chat.write("\n")
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        lines.close()


async def _loop_lines(chat: Chat) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or not await _take(chat, line):
            return


async def _take(chat: Chat, line: str) -> bool:
    """Answer one typed line; False when it asks to leave the chat."""
    text = line.strip()
    if text.lower() in EXIT_WORDS:
        return False
    if text:
        await chat.turn(text)
    return True


async def choose_model(host: Host, conv: Conversation, wanted: str) -> None:
    """Start the conversation on ``wanted``: another plugin's ``provider/model`` ref, or a
    ClawRouter profile, alias or model id (with or without ``blockrun/``) set through /model."""
    provider_id, _, rest = wanted.partition("/")
    provider = host.providers.get(provider_id.lower()) if rest else None
    if (provider is not None and provider.id != PROVIDER_ID) or "model" not in host.commands:
        conv.model = wanted
        return
    name = rest if provider is not None else wanted
    if name.strip().lower() != "auto":
        chosen = await host.dispatch(f"/model {name}", conv)
        if chosen.is_error:
            raise ClawRouterError(f"--model: {chosen.text}")


async def run_chat(args: argparse.Namespace) -> int:
    """Start the host, talk until EOF or /exit, stop the host."""
    loaded = load_config(args.config)
    plugin = with_overrides(loaded.plugin, port=args.port if args.port is not None else 0,
                            api_base=args.api_base, data_dir=args.data_dir)
    host = Host(loaded.whole, state_dir=plugin.data_path,
                plugin_configs={PLUGIN_ID: plugin.model_dump(by_alias=True, mode="json")})
    host.load_builtin()
    host.load_entry_points()
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    conv = Conversation()
    chat = Chat(host, conv, sys.stdout, interactive)
    async with host:
        await choose_model(host, conv, args.model or DEFAULT_MODEL)
        if interactive:
            chat.write(BANNER.format(model=args.model or DEFAULT_MODEL) + "\n\n")
            await _loop_tty(chat)
        else:
            await _loop_lines(chat)
    return 1 if chat.errors and not interactive else 0


def chat_command(args: argparse.Namespace) -> int:
    """``clawrouter chat``."""
    _quiet_logging(getattr(args, "verbose", False))
    return asyncio.run(run_chat(args))
