"""Server limits against raw sockets: idle connections, slow-loris headers, slow bodies and
the connection cap. Every wait is bounded; the proxy runs in this process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import resource
import time

import pytest

from tests.support.x402_upstream import CHAT_PATH

from .test_limits import post

SHORT = {"idleTimeoutSeconds": 1, "headerTimeoutSeconds": 1, "bodyTimeoutSeconds": 1}
IDLE_SOCKETS = 2_000


def address(handle) -> tuple[str, int]:
    host, port = handle.base_url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the server closes the connection within ``seconds`` (what it sent before
    closing, if anything, is skipped)."""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            data = await asyncio.wait_for(reader.read(65536), deadline - time.monotonic())
            if not data:
                return True
    except (ConnectionError, asyncio.IncompleteReadError):
        return True
    except TimeoutError:
        return False
    return False


async def health_works(handle) -> bool:
    code, _, _ = await asyncio.wait_for(post(handle, "/health", method="GET"), 5)
    return code == 200


def _enough_descriptors(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed and (hard == resource.RLIM_INFINITY or hard >= needed):
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        soft = needed
    return soft


async def test_idle_connections_are_closed_after_the_idle_timeout(start):
    """2,000 sockets that never send a byte are all closed by the server (both ends live in
    this process: 4,000 descriptors and some spare)."""
    available = _enough_descriptors(2 * IDLE_SOCKETS + 500)
    count = IDLE_SOCKETS if available >= 2 * IDLE_SOCKETS + 500 else (available - 500) // 2
    assert count >= 200, f"only {available} file descriptors"
    proxy = await start(server={**SHORT, "maxConnections": count + 50})
    host, port = address(proxy)
    streams = []
    try:
        for _ in range(count):
            streams.append(await asyncio.wait_for(asyncio.open_connection(host, port), 5))
        assert await health_works(proxy)  # the proxy still answers while they wait
        opened = time.monotonic()
        closed = await asyncio.gather(*(closed_within(r, 15) for r, _ in streams))
        assert sum(closed) == count
        assert time.monotonic() - opened < 15
    finally:
        for _, writer in streams:
            writer.close()


async def test_slow_loris_headers_are_closed(start):
    proxy = await start(server={**SHORT, "idleTimeoutSeconds": 30})
    reader, writer = await asyncio.open_connection(*address(proxy))
    try:
        started = time.monotonic()
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for _ in range(3):  # a header line now and then, never the blank line that ends them
            await asyncio.sleep(0.4)
            if writer.is_closing():
                break
            writer.write(b"X-Slow: 1\r\n")
        assert await closed_within(reader, 5)
        assert time.monotonic() - started < 6  # the header timeout, not the 30 s idle one
        assert await health_works(proxy)
    finally:
        writer.close()


async def test_a_slow_body_is_closed_and_nothing_is_forwarded(start, x402_upstream):
    proxy = await start(server={**SHORT, "idleTimeoutSeconds": 30, "headerTimeoutSeconds": 30})
    body = json.dumps({"model": "blockrun/deepseek",
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    reader, writer = await asyncio.open_connection(*address(proxy))
    try:
        started = time.monotonic()
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:5])
        for index in range(5, 10):  # a byte now and then, never the whole body
            await asyncio.sleep(0.4)
            if writer.is_closing():
                break
            writer.write(body[index:index + 1])
        assert await closed_within(reader, 5)
        assert time.monotonic() - started < 6
        assert x402_upstream.count(path=CHAT_PATH) == 0
        assert await health_works(proxy)
    finally:
        writer.close()


async def test_a_stream_in_progress_outlives_the_idle_timeout(start, x402_upstream):
    """A response that takes longer than every timeout is not cut: the timeouts apply only
    while the proxy waits for the client."""
    from tests.support import handlers as h
    proxy = await start(server=SHORT)
    x402_upstream.set_handler(CHAT_PATH, h.delayed(2.5))
    body = {"model": "blockrun/deepseek", "stream": True,
            "messages": [{"role": "user", "content": "take your time"}]}
    code, _, raw = await asyncio.wait_for(post(proxy, CHAT_PATH, json_body=body), 20)
    assert code == 200 and raw.rstrip().endswith(b"data: [DONE]")


async def test_keep_alive_requests_are_unaffected(start):
    proxy = await start(server=SHORT)
    reader, writer = await asyncio.open_connection(*address(proxy))
    try:
        for _ in range(3):
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await asyncio.wait_for(reader.readexactly(length), 5)
            await asyncio.sleep(0.5)  # within the idle timeout each time
        assert await closed_within(reader, 5)  # then idle: closed
    finally:
        writer.close()


async def test_connections_past_the_cap_are_refused_quickly(start):
    proxy = await start(server={"maxConnections": 3})
    host, port = address(proxy)
    held = [await asyncio.open_connection(host, port) for _ in range(3)]
    try:
        await asyncio.sleep(0.1)
        extra_reader, extra_writer = await asyncio.open_connection(host, port)
        started = time.monotonic()
        assert await closed_within(extra_reader, 3)
        assert time.monotonic() - started < 3
        extra_writer.close()
        # a connection under the cap is still answered
        reader, writer = held[0]
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        # once one closes, a new connection fits again
        held.pop()[1].close()
        await asyncio.sleep(0.2)
        assert await health_works(proxy)
    finally:
        for _, writer in held:
            writer.close()


@pytest.mark.parametrize("key, value", [("maxConnections", 0), ("idleTimeoutSeconds", 0),
                                        ("headerTimeoutSeconds", -1), ("bodyTimeoutSeconds", True)])
def test_limits_are_validated(key, value):
    from clawrouter_plugin.config import PluginConfig
    with pytest.raises(ValueError):
        PluginConfig.model_validate({"server": {key: value}})


async def test_limits_hold_in_the_serve_process(tmp_path):
    """``clawrouter serve`` runs on uvloop, whose transports differ from asyncio's: idle and
    slow-loris connections are closed and the cap refuses there too."""
    import os
    import secrets
    import signal
    import sys

    from .test_serve_cli import _free_port, _health

    port = _free_port()
    config = tmp_path / "openclaw.yaml"
    config.write_text(json.dumps({"plugins": [{"id": "clawrouter", "config": {"server": {
        **SHORT, "maxConnections": 60}}}]}))
    env = {**os.environ, "BLOCKRUN_WALLET_KEY": "0x" + secrets.token_hex(32), "HOME": str(tmp_path)}
    env.pop("BLOCKRUN_PROXY_PORT", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "clawrouter_plugin", "serve", "--config", str(config),
        "--port", str(port), "--api-base", "http://127.0.0.1:9/api",
        "--data-dir", str(tmp_path / "data"), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    streams = []
    try:
        deadline = time.monotonic() + 20
        while await asyncio.to_thread(_health, port) is None:
            assert time.monotonic() < deadline and proc.returncode is None
            await asyncio.sleep(0.1)
        for _ in range(50):
            streams.append(await asyncio.open_connection("127.0.0.1", port))
        loris_reader, loris_writer = await asyncio.open_connection("127.0.0.1", port)
        loris_writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        streams.append((loris_reader, loris_writer))
        past = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
        streams += past
        answers = await asyncio.gather(*(asyncio.wait_for(r.read(), 5) for r, _ in past))
        assert sum(a.startswith(b"HTTP/1.1 503") for a in answers) >= 10  # past the cap of 60
        assert all(await asyncio.gather(*(closed_within(r, 10) for r, _ in streams)))
        assert await asyncio.to_thread(_health, port) is not None  # and it still answers
    finally:
        for _, writer in streams:
            writer.close()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0 and b"Traceback" not in err, err.decode()[-2000:]
