"""The ``serve --workers`` supervisor with real child processes that behave badly on purpose
(a few lines of Python speaking the ``--worker-fds`` protocol), so that start-up failures
and crash loops take milliseconds instead of a proxy start each."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap

import pytest

from clawrouter_plugin.proxy import workers
from clawrouter_plugin.proxy.workers import WorkerPool, listening_sockets

CHILD = textwrap.dedent("""
    import os, sys, time
    listen, parent, ready = (int(fd) for fd in sys.argv[-1].split(","))
    mode = sys.argv[1]
    if mode == "fail-at-start":
        sys.exit(3)
    os.write(ready, f"{os.getpid()}\\n".encode())
    if mode == "crash":
        time.sleep(0.05)
        sys.exit(4)
    os.read(parent, 1)  # "serve" until the parent goes away (or SIGTERM ends us)
""")


def pool(tmp_path, mode: str, count: int = 2, on_ready=None) -> WorkerPool:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    sockets = listening_sockets("127.0.0.1", 0, count)
    return WorkerPool([sys.executable, str(script), mode], sockets, count, on_ready=on_ready)


async def test_a_worker_that_fails_before_it_serves_stops_the_pool_with_its_status(tmp_path):
    code = await asyncio.wait_for(pool(tmp_path, "fail-at-start").run(), 30)
    assert code == 3


async def test_a_worker_that_keeps_crashing_is_restarted_then_given_up(tmp_path, monkeypatch,
                                                                       caplog):
    monkeypatch.setattr(workers, "FIRST_BACKOFF_SECONDS", 0.01)
    runner = pool(tmp_path, "crash", count=1)
    code = await asyncio.wait_for(runner.run(), 60)
    assert code == 4
    restarts = [r for r in caplog.records if "starting it again" in r.getMessage()]
    assert len(restarts) == workers.GIVE_UP_AFTER - 1
    assert "failed 5 times in a row" in caplog.text


async def test_sigterm_stops_every_worker_and_the_pool_exits_0(tmp_path):
    pids: list[int] = []
    ready = asyncio.Event()

    def announce(started: list[int]) -> None:
        pids.extend(started)
        ready.set()

    task = asyncio.ensure_future(pool(tmp_path, "serve", count=3, on_ready=announce).run())
    await asyncio.wait_for(ready.wait(), 30)
    assert len(set(pids)) == 3
    os.kill(os.getpid(), signal.SIGTERM)  # the pool's handler, not the test's death
    assert await asyncio.wait_for(task, 30) == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_one_reuseport_socket_per_worker_on_one_port():
    sockets = listening_sockets("127.0.0.1", 0, 3)
    try:
        ports = {sock.getsockname()[1] for sock in sockets}
        assert len(ports) == 1
        assert len(sockets) == (3 if workers.one_socket_per_worker() else 1)
    finally:
        for sock in sockets:
            sock.close()
