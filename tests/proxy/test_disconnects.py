"""Clients that go away, upstreams that fail afterwards, and shutdown with requests in flight.

The rules checked: a paid answer is cached and recorded once even when nobody is left to read
it; nothing is paid twice; every stream ends and every waiter is released; the event loop
reports nothing (no never-retrieved task exception, no task destroyed while pending, no
unclosed session); ``close()`` and SIGTERM end what is in flight within the grace period.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import random
import signal
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from clawrouter_plugin.proxy import server
from tests.support import handlers as h
from tests.support.x402_upstream import CHAT_PATH

from .conftest import CLOSED_RPC

MESSAGES = [{"role": "user", "content": "tell me a slow story"}]
STREAM = {"model": "auto", "stream": True, "messages": MESSAGES}
PLAIN = {"model": "auto", "messages": MESSAGES}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool  # the body ended properly (chunked terminator, or all of Content-Length)

    def events(self) -> list[str]:
        """The ``data:`` payloads of an SSE body."""
        return [line[6:] for line in self.body.decode().splitlines() if line.startswith("data: ")]


def parse(raw: bytes) -> Answer:
    """An HTTP/1.1 response as received on the wire."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    fields = (line.partition(":") for line in lines[1:])
    headers = {name.strip().lower(): value.strip() for name, _, value in fields}
    status = int(lines[0].split()[1]) if lines[0] else 0
    if headers.get("transfer-encoding") != "chunked":
        return Answer(status, headers, body, len(body) == int(headers.get("content-length", -1)))
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return Answer(status, headers, out, True)
        out, body = out + rest[:size], rest[size + 2:]
    return Answer(status, headers, out, False)


class RawClient:
    """One request on a raw loopback connection, so that the test decides exactly when the
    client goes away. ``Connection: close``: the server ends the connection after answering."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.received = b""

    @classmethod
    async def post(cls, base_url: str, body: dict) -> RawClient:
        port = int(base_url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        data = json.dumps(body).encode()
        writer.write(f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                     "Connection: close\r\n\r\n".encode() + data)
        await writer.drain()
        return cls(reader, writer)

    async def read_until(self, needle: bytes, count: int = 1, timeout: float = 10) -> None:
        """Read until ``needle`` arrived ``count`` times (or the server closed)."""
        async def read() -> None:
            while self.received.count(needle) < count:
                data = await self.reader.read(65536)
                if not data:
                    return
                self.received += data
        await asyncio.wait_for(read(), timeout)

    async def answer(self, timeout: float = 15) -> Answer:
        """Everything until the server closes the connection."""
        await self.read_until(b"\x00never\x00", timeout=timeout)
        self.writer.close()
        return parse(self.received)

    def leave(self) -> None:
        """Go away at once (the connection is reset)."""
        self.writer.transport.abort()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def usage_records(handle) -> list[dict]:
    handle.services.usage.flush()
    return [json.loads(line)
            for path in sorted((handle.services.data_dir / "logs").glob("usage-*.jsonl"))
            for line in path.read_text().splitlines()]


def paid_prompts(upstream) -> Counter:
    """How many times each distinct chat request body was paid for."""
    return Counter(json.dumps(r.json()["messages"]) for r in upstream.requests
                   if r.path == CHAT_PATH and r.paid)


def slow_stream(words: int = 6, pause: float = 0.2, first_delay: float = 0.0,
                break_after: int | None = None) -> h.Handler:
    """An upstream answer of ``words`` chunks ``pause`` seconds apart after ``first_delay``
    (cut off after ``break_after`` chunks when given); JSON requests wait as long in total."""
    async def handler(call) -> web.StreamResponse:
        body = call.json()
        if not body.get("stream"):
            await asyncio.sleep(first_delay + words * pause)
            return await h.chat_handler(call)
        await asyncio.sleep(first_delay)
        resp = await call.stream()
        for i in range(words):
            if i == break_after:
                call.request.transport.close()
                return resp
            await resp.write(h.chunk(body["model"], {"content": f"w{i} "}))
            await asyncio.sleep(pause)
        await resp.write(h.chunk(body["model"], {}, "stop"))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
    return handler


@pytest.fixture(autouse=True)
async def loop_reports(caplog):
    """What the event loop reports during the test (never-retrieved task exceptions, tasks
    destroyed while pending, unclosed sessions and connections): there must be none, and
    no error in clawrouter's log either."""
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    yield reported
    gc.collect()
    await asyncio.sleep(0.05)
    loop.set_exception_handler(previous)
    assert [(c.get("message"), repr(c.get("exception"))) for c in reported] == []
    assert [r.getMessage() for r in caplog.records
            if r.name.startswith("clawrouter") and r.levelno >= logging.ERROR] == []


async def until(condition, timeout: float = 10) -> None:
    """Poll ``condition()`` until it is true (bounded)."""
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)


def our_tasks() -> set[asyncio.Task]:
    """Live tasks running clawrouter code."""
    return {task for task in asyncio.all_tasks()
            if "clawrouter_plugin" in getattr(getattr(task.get_coro(), "cr_code", None),
                                              "co_filename", "")}


async def all_settled(handle, baseline: set[asyncio.Task]) -> None:
    """Nothing in flight, the dedup table empty and no clawrouter task left over."""
    await until(lambda: not handle.services.requests.in_flight()
                and not (our_tasks() - baseline - {asyncio.current_task()}))
    assert handle.services.requests.in_flight() == 0 and handle.services.pipeline._work == set()


# --- a client goes away -------------------------------------------------------------------


@pytest.mark.parametrize(("needle", "count"), [
    (b"w1 ", 1),            # mid-stream
    (b"\r\n\r\n", 1),       # headers sent, no chunk yet
    (b": heartbeat", 2),    # while heartbeats are being sent
])
async def test_a_stream_whose_client_left_is_still_cached_and_recorded_once(
        proxy, x402_upstream, payer, needle, count):
    x402_upstream.set_handler(CHAT_PATH, slow_stream(first_delay=2.5 if count > 1 else 0.5))
    baseline = our_tasks()
    client = await RawClient.post(proxy.base_url, STREAM)
    await client.read_until(needle, count)
    assert b"[DONE]" not in client.received
    client.leave()
    await all_settled(proxy, baseline)
    [record] = usage_records(proxy)
    assert record["cost"] == pytest.approx(0.001) and not record["cacheHit"]
    assert x402_upstream.ledger.total_paid(payer) == 1000
    again = await RawClient.post(proxy.base_url, PLAIN)
    answer = await again.answer()
    assert answer.status == 200 and answer.headers["x-clawrouter-cache"] == "HIT"
    assert json.loads(answer.body)["choices"][0]["message"]["content"].startswith("w0 w1 w2")
    assert x402_upstream.ledger.total_paid(payer) == 1000


async def test_a_json_client_that_left_while_the_upstream_was_slow_is_still_recorded(
        proxy, x402_upstream, payer):
    x402_upstream.set_handler(CHAT_PATH, slow_stream(words=4))
    baseline = our_tasks()
    client = await RawClient.post(proxy.base_url, PLAIN)
    await until(lambda: x402_upstream.count(path=CHAT_PATH, paid=True) == 1)
    client.leave()
    await all_settled(proxy, baseline)
    [record] = usage_records(proxy)
    assert record["cost"] == pytest.approx(0.001)
    assert x402_upstream.ledger.total_paid(payer) == 1000
    assert (await proxy.services.cache.stats())["size"] == 1


async def test_clients_leaving_before_the_answer_starts_are_no_internal_error(
        proxy, x402_upstream, payer, caplog):
    """Gone while the body was being read, or before the stream's headers went out: logged
    as a client that went away, not as an unexpected error with a traceback."""
    caplog.set_level(logging.INFO, logger="clawrouter")
    x402_upstream.set_handler(CHAT_PATH, slow_stream(first_delay=0.5))
    port = int(proxy.base_url.rsplit(":", 1)[1])
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\"")
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.transport.abort()
    client = await RawClient.post(proxy.base_url, STREAM)
    await until(lambda: x402_upstream.count(path=CHAT_PATH) >= 1)
    client.leave()
    await until(lambda: usage_records(proxy))
    assert [r["cost"] for r in usage_records(proxy)] == [pytest.approx(0.001)]
    gone = [r for r in caplog.records if "went away" in r.getMessage()]
    assert len(gone) == 2 and all(r.exc_info is None for r in gone)


@pytest.mark.parametrize("stream", [True, False])
async def test_an_upstream_failing_after_the_client_left_leaves_nothing_behind(
        proxy, x402_upstream, loop_reports, stream):
    """The failure has nobody to go to: no 'Task exception was never retrieved'."""
    failing = slow_stream(break_after=3) if stream else h.delayed(0.5, h.status(500))
    x402_upstream.set_handler(CHAT_PATH, failing)
    baseline = our_tasks()
    client = await RawClient.post(proxy.base_url, STREAM if stream else PLAIN)
    if stream:
        await client.read_until(b"w1 ")
    else:
        await until(lambda: x402_upstream.count(path=CHAT_PATH) >= 1)
    client.leave()
    await all_settled(proxy, baseline)
    gc.collect()
    await asyncio.sleep(0)
    assert loop_reports == []
    # no answer: only the payments signed are recorded, and the ledger agrees with them
    records = usage_records(proxy)
    assert records and all(r["payment"] in ("settled", "unconfirmed", "refused") for r in records)
    spent = [r for r in records if r["payment"] != "refused"]
    assert sorted(r["nonce"] for r in spent) == sorted(
        s.nonce for s in x402_upstream.ledger.settlements)
    assert sum(r["cost"] for r in records) == pytest.approx(
        x402_upstream.ledger.total_paid_usd())


# --- identical concurrent requests (dedup) ------------------------------------------------


@pytest.mark.parametrize("leader_streams", [True, False])
@pytest.mark.parametrize("follower_streams", [True, False])
async def test_a_leader_leaving_does_not_cost_its_follower_a_second_payment(
        proxy, x402_upstream, payer, leader_streams, follower_streams):
    x402_upstream.set_handler(CHAT_PATH, slow_stream(first_delay=0.3))
    baseline = our_tasks()
    leader = await RawClient.post(proxy.base_url, STREAM if leader_streams else PLAIN)
    await until(lambda: proxy.services.requests.in_flight() == 1)
    follower = await RawClient.post(proxy.base_url, STREAM if follower_streams else PLAIN)
    await asyncio.sleep(0.1)
    leader.leave()
    answer = await follower.answer()
    assert answer.status == 200 and answer.complete
    if follower_streams:
        events = answer.events()
        assert events[-1] == "[DONE]" and not any("error" in json.loads(e) for e in events[:-1])
        text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                       for e in events[:-1] if json.loads(e).get("choices"))
    else:
        text = json.loads(answer.body)["choices"][0]["message"]["content"]
    assert text.startswith("w0 w1 w2 w3 w4 w5" if leader_streams else "Echo from")
    await all_settled(proxy, baseline)
    assert x402_upstream.ledger.total_paid(payer) == 1000
    assert [r["cost"] for r in usage_records(proxy)] == [pytest.approx(0.001)]


async def test_the_follower_or_everyone_leaving_does_not_disturb_the_leader(
        proxy, x402_upstream, payer):
    x402_upstream.set_handler(CHAT_PATH, slow_stream(first_delay=0.3))
    baseline = our_tasks()
    leader = await RawClient.post(proxy.base_url, STREAM)
    await until(lambda: proxy.services.requests.in_flight() == 1)
    follower = await RawClient.post(proxy.base_url, PLAIN)
    await asyncio.sleep(0.1)
    follower.leave()
    answer = await leader.answer()
    assert answer.complete and answer.events()[-1] == "[DONE]"
    assert answer.headers["x-clawrouter-cache"] == "MISS"
    # everyone leaves an identical pair on another prompt: still one payment, one record
    body = {"model": "auto", "messages": [{"role": "user", "content": "another slow one"}]}
    pair = [await RawClient.post(proxy.base_url, {**body, "stream": True}),
            await RawClient.post(proxy.base_url, body)]
    await until(lambda: x402_upstream.count(path=CHAT_PATH, paid=True) == 2)
    for client in pair:
        client.leave()
    await all_settled(proxy, baseline)
    assert sorted(paid_prompts(x402_upstream).values()) == [1, 1]
    assert x402_upstream.ledger.total_paid(payer) == 2000
    assert [r["cost"] for r in usage_records(proxy)] == [pytest.approx(0.001)] * 2


async def test_fifty_clients_leaving_at_random_points(proxy, x402_upstream):
    rng = random.Random(7)
    x402_upstream.set_handler(CHAT_PATH, slow_stream(words=4, pause=0.05, first_delay=0.1))
    prompts = [[{"role": "user", "content": f"random story {n}"}] for n in range(5)]
    baseline = our_tasks()

    async def one() -> Answer | None:
        body = {"model": "auto", "messages": rng.choice(prompts), "stream": rng.random() < 0.6}
        await asyncio.sleep(rng.uniform(0, 0.3))
        client = await RawClient.post(proxy.base_url, body)
        if rng.random() < 0.5:
            return await client.answer()
        await asyncio.sleep(rng.uniform(0, 0.5))
        client.leave()
        return None

    answers = await asyncio.wait_for(asyncio.gather(*[one() for _ in range(50)]), 30)
    for answer in filter(None, answers):
        assert answer.status == 200 and answer.complete
        if answer.headers["content-type"].startswith("text/event-stream"):
            assert answer.events()[-1] == "[DONE]"
            assert not any("error" in e for e in answer.events())
    await all_settled(proxy, baseline)
    paid = paid_prompts(x402_upstream)
    assert set(paid.values()) == {1}  # each prompt paid for once at most
    records = usage_records(proxy)
    assert sum(r["cost"] > 0 for r in records) == len(paid)  # each payment recorded once


# --- shutdown ------------------------------------------------------------------------------


async def test_close_ends_streams_and_json_requests_in_flight_with_an_error(
        start, x402_upstream, payer, monkeypatch):
    monkeypatch.setattr(server, "SHUTDOWN_GRACE_SECONDS", 0.5)
    proxy = await start()
    x402_upstream.set_handler(CHAT_PATH, slow_stream(words=50, pause=0.2))
    stream = await RawClient.post(proxy.base_url, STREAM)
    await stream.read_until(b"w1 ")
    other = {"model": "auto", "messages": [{"role": "user", "content": "a slow question"}]}
    plain = [await RawClient.post(proxy.base_url, other) for _ in range(2)]  # leader, follower
    await until(lambda: x402_upstream.count(path=CHAT_PATH, paid=True) == 2)
    began = time.monotonic()
    await asyncio.wait_for(proxy.close(), 5)
    assert time.monotonic() - began < 2.5
    answer = await stream.answer(timeout=5)
    assert answer.status == 200 and answer.complete
    events = answer.events()
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == "shutting_down"
    for client in plain:
        answer = await client.answer(timeout=5)
        assert answer.status == 503 and answer.complete
        assert json.loads(answer.body)["error"]["code"] == "shutting_down"
    assert sorted(paid_prompts(x402_upstream).values()) == [1, 1]  # no follower took over


async def test_close_lets_a_paid_answer_whose_client_left_finish_and_be_kept(
        start, x402_upstream, payer, monkeypatch, tmp_path):
    monkeypatch.setattr(server, "SHUTDOWN_GRACE_SECONDS", 5.0)
    data = tmp_path / "kept"
    proxy = await start(data_dir=data)
    x402_upstream.set_handler(CHAT_PATH, slow_stream(words=6, pause=0.2))
    client = await RawClient.post(proxy.base_url, STREAM)
    await client.read_until(b"w0 ")
    client.leave()
    began = time.monotonic()
    await asyncio.wait_for(proxy.close(), 10)
    assert time.monotonic() - began < 4
    assert x402_upstream.ledger.total_paid(payer) == 1000
    [record] = usage_records(proxy)
    assert record["cost"] == pytest.approx(0.001)
    again = await start(data_dir=data)
    answer = await (await RawClient.post(again.base_url, PLAIN)).answer()
    assert answer.status == 200 and answer.headers["x-clawrouter-cache"] == "HIT"
    assert x402_upstream.ledger.total_paid(payer) == 1000


async def test_a_request_arriving_during_shutdown_gets_a_clear_error(
        start, x402_upstream, monkeypatch):
    monkeypatch.setattr(server, "SHUTDOWN_GRACE_SECONDS", 2.0)
    proxy = await start()
    x402_upstream.set_handler(CHAT_PATH, slow_stream(words=5, pause=0.2))
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy.base_url + "/health") as resp:  # a kept-alive connection
            assert resp.status == 200
        busy = await RawClient.post(proxy.base_url, PLAIN)
        await until(lambda: proxy.services.requests.in_flight() == 1)
        closing = asyncio.create_task(proxy.close())
        await asyncio.sleep(0.2)
        body = {"model": "auto", "messages": [{"role": "user", "content": "too late"}]}
        async with session.post(proxy.base_url + "/v1/chat/completions", json=body) as resp:
            assert resp.status == 503
            assert (await resp.json())["error"]["code"] == "shutting_down"
        with pytest.raises(ConnectionRefusedError):  # nothing listens any more
            await asyncio.wait_for(RawClient.post(proxy.base_url, body), 2)
        assert (await busy.answer()).status == 200  # the one in flight finished in the grace
        await asyncio.wait_for(closing, 5)


async def test_sigterm_ends_a_stream_in_flight_and_exits(x402_upstream, funded_wallet_key,
                                                         tmp_path):
    """``clawrouter serve`` as a process: SIGTERM ends the stream in flight with an error
    event and [DONE] after the grace period, and the process exits cleanly."""
    x402_upstream.set_handler(CHAT_PATH, slow_stream(words=100, pause=0.2))
    config = tmp_path / "openclaw.yaml"
    config.write_text(json.dumps(
        {"plugins": [{"id": "clawrouter", "config": {"payment": {"rpcUrl": CLOSED_RPC}}}]}))
    env = {**os.environ, "BLOCKRUN_WALLET_KEY": funded_wallet_key, "HOME": str(tmp_path)}
    env.pop("BLOCKRUN_PROXY_PORT", None)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "clawrouter_plugin", "serve", "--config", str(config),
        "--port", str(port), "--api-base", x402_upstream.url, "--data-dir", str(tmp_path / "d"),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        base_url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            async def healthy() -> None:
                while True:
                    try:
                        async with session.get(base_url + "/health") as resp:
                            if resp.status == 200:
                                return
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
            await asyncio.wait_for(healthy(), 20)
        client = await RawClient.post(base_url, STREAM)
        await client.read_until(b"w1 ")
        proc.send_signal(signal.SIGTERM)
        began = time.monotonic()
        answer = await client.answer(timeout=server.SHUTDOWN_GRACE_SECONDS + 5)
        _, err = await asyncio.wait_for(proc.communicate(), server.SHUTDOWN_GRACE_SECONDS + 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert time.monotonic() - began < server.SHUTDOWN_GRACE_SECONDS + 4
    assert answer.complete and answer.events()[-1] == "[DONE]"
    assert json.loads(answer.events()[-2])["error"]["code"] == "shutting_down"
    assert proc.returncode == 0, err
    assert b"Traceback" not in err
