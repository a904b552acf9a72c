"""Real ``clawrouter serve`` processes for the team-mode tests.

Each :class:`TeamProxy` is one process, as on one machine of a team: its own
``openclaw.yaml`` and data directory, the team's wallet key through
``$BLOCKRUN_WALLET_KEY``, and the shared Redis in ``state.redisUrl``. The x402 test upstream
runs in the test process; the proxies reach it on 127.0.0.1. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[2]
CLOSED_RPC = "http://127.0.0.1:9/"  # nothing listens on the discard port: balance stays unknown
CHAT = "/v1/chat/completions"
START_SECONDS = 40.0
STOP_SECONDS = 25.0
REQUEST_SECONDS = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Reply:
    """An HTTP answer: status, headers (lower-case names) and the parsed JSON body."""

    status: int
    headers: dict[str, str]
    body: Any

    @property
    def text(self) -> str:
        """The assistant's message of a chat completion ('' for anything else)."""
        try:
            return self.body["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            return ""

    def is_openai_error(self) -> bool:
        """An OpenAI-style error: ``{"error": {"message", "type", "code"}}`` with a message."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return isinstance(error, dict) and bool(error.get("message")) and "type" in error \
            and "code" in error


class TeamProxy:
    """One ``clawrouter serve`` process (``workers`` > 1: a ``--workers`` pool)."""

    def __init__(self, name: str, root: Path, *, upstream_url: str, wallet_key: str,
                 config: dict[str, Any], workers: int = 1, data_dir: Path | None = None) -> None:
        self.name = name
        self.root = root / name
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir or self.root / "data"
        self.config_path = self.root / "openclaw.yaml"
        self.config_path.write_text(json.dumps(  # JSON is YAML
            {"plugins": [{"id": "blockrun", "config": config}]}))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "BLOCKRUN_WALLET_KEY": wallet_key, "HOME": str(self.root)}
        for name_ in ("BLOCKRUN_PROXY_PORT", "CLAWROUTER_HOME", "OPENCLAW_CONFIG"):
            self.env.pop(name_, None)
        self.args = [sys.executable, "-m", "clawrouter_plugin", "serve",
                     "--config", str(self.config_path), "--port", str(self.port),
                     "--api-base", upstream_url, "--data-dir", str(self.data_dir)]
        if workers > 1:
            self.args += ["--workers", str(workers)]
        self.stderr_path = self.root / "stderr.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.http: aiohttp.ClientSession | None = None

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> TeamProxy:
        """Start the process and wait (bounded) until ``/health`` answers."""
        with self.stderr_path.open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                *self.args, env=self.env, cwd=str(REPO), stdout=err, stderr=err)
        if self.http is None:
            self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_SECONDS))
        deadline = asyncio.get_running_loop().time() + START_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            if self.proc.returncode is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}: "
                                     f"{self.stderr()[-3000:]}")
            try:
                health = await self.get("/health", timeout=2)
                if health.status == 200:
                    return self
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} did not become healthy in {START_SECONDS} s: "
                             f"{self.stderr()[-3000:]}")

    def stderr(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        try:
            return self.stderr_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    async def stop(self) -> int | None:
        """SIGTERM, wait (bounded), SIGKILL if it is still there; its exit status."""
        proc = self.proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_SECONDS)
            except asyncio.TimeoutError:
                proc.kill()
                await asyncio.wait_for(proc.wait(), STOP_SECONDS)
        return proc.returncode if proc is not None else None

    async def kill(self) -> None:
        """SIGKILL the process (no clean shutdown) and wait for it."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), STOP_SECONDS)

    async def close(self) -> None:
        """Stop the process and the client session."""
        await self.stop()
        if self.http is not None:
            await self.http.close()
            self.http = None

    # --- requests -------------------------------------------------------------------------
    async def request(self, method: str, path: str, *, body: Any = None,
                      headers: dict[str, str] | None = None,
                      timeout: float = REQUEST_SECONDS) -> Reply:
        """One request on a fresh connection; the reply with its JSON body (None if not)."""
        assert self.http is not None
        async with self.http.request(method, self.base_url + path, json=body,
                                     headers={"connection": "close", **(headers or {})},
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            raw = await resp.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            return Reply(resp.status, {k.lower(): v for k, v in resp.headers.items()}, parsed)

    async def get(self, path: str, *, timeout: float = REQUEST_SECONDS) -> Reply:
        return await self.request("GET", path, timeout=timeout)

    async def chat(self, content: str | list[dict], *, model: str = "auto",
                   session: str | None = None, headers: dict[str, str] | None = None,
                   timeout: float = REQUEST_SECONDS) -> Reply:
        """A chat completion whose last user message is ``content`` (or these messages)."""
        messages = content if isinstance(content, list) else \
            [{"role": "user", "content": content}]
        extra = dict(headers or {})
        if session is not None:
            extra["x-session-id"] = session
        return await self.request("POST", CHAT, body={"model": model, "messages": messages},
                                  headers=extra, timeout=timeout)


def usage_lines(*proxies: TeamProxy) -> list[dict]:
    """Every usage record the proxies wrote (read after they stopped: all lines flushed)."""
    seen = set()
    lines = []
    for proxy in proxies:
        logs = proxy.data_dir / "logs"
        if logs in seen:
            continue
        seen.add(logs)
        for path in sorted(logs.glob("usage-*.jsonl")):
            for line in path.read_text().splitlines():
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    continue
    return lines


async def eventually(check, *, seconds: float, every: float = 0.1, what: str = "") -> Any:
    """Await ``check()`` until it returns something truthy, at most ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    last: Any = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"not within {seconds} s: {what} (last: {last!r})")
