"""``clawrouter chat`` on a terminal (a pseudo-terminal): prompt, waiting indicator, streamed
reply, Ctrl-C cancelling a reply without leaving the chat, Ctrl-D quitting."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import pytest

from tests.support import handlers as h

from .test_chat_cli import environment, write_config

pytestmark = pytest.mark.skipif(not sys.platform.startswith(("linux", "darwin")),
                                reason="needs a POSIX pseudo-terminal")


async def slow_when_asked(call):
    """Streams "thinking" then stalls when the last message says "slow"; else the echo handler."""
    body = call.json() or {}
    last = str((body.get("messages") or [{}])[-1].get("content", ""))
    if "slow" not in last:
        return await h.chat_handler(call)
    await asyncio.sleep(0.5)
    resp = await call.stream()
    await resp.write(h.chunk("m", {"role": "assistant", "content": "thinking"}))
    await asyncio.sleep(30)
    return resp


class Terminal:
    """The master side of a pty, read without blocking the event loop."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buffer = fd, ""
        self.changed = asyncio.Event()
        asyncio.get_running_loop().add_reader(fd, self._ready)

    def _ready(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.fd)
        self.buffer += data.decode("utf-8", "replace")
        self.changed.set()

    async def expect(self, pattern: str, timeout: float = 30) -> re.Match:
        async def wait() -> re.Match:
            while True:
                match = re.search(pattern, self.buffer)
                if match:
                    self.buffer = self.buffer[match.end():]
                    return match
                self.changed.clear()
                await self.changed.wait()
        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"{pattern!r} not seen; screen: {self.buffer[-2000:]!r}") from None

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())


async def test_terminal_chat(x402_upstream, funded_wallet_key, tmp_path):
    x402_upstream.set_handler("/v1/chat/completions", slow_when_asked)
    master, slave = os.openpty()
    env = {**environment(tmp_path, funded_wallet_key), "TERM": "dumb"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "clawrouter_plugin", "chat", "--api-base", x402_upstream.url,
        "--data-dir", str(tmp_path / "d"), "--config", write_config(tmp_path),
        stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    term = Terminal(master)
    try:
        await term.expect(r"ClawRouter chat — blockrun/auto\. /help lists commands")
        await term.expect("you › ")
        term.type("please be slow\n")
        await term.expect("waiting…")  # the indicator runs until the reply starts
        await term.expect("thinking")
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        await term.expect(r"\[reply cancelled\]")
        await term.expect("you › ")
        term.type("hello again\n")
        await term.expect(r"Echo from \S+: hello again")
        await term.expect("you › ")
        proc.send_signal(signal.SIGINT)  # at the prompt: a reminder, the chat stays
        await term.expect(r"Ctrl-D or /exit to quit")
        term.type("\x04")  # Ctrl-D
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        asyncio.get_running_loop().remove_reader(master)
        os.close(master)
    assert "Traceback" not in term.buffer
