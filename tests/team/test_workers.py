"""``clawrouter serve --workers N``: N real processes answering on one port."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from .conftest import PAID, team_config
from .harness import REPO, TeamProxy, eventually, free_port


def parent_of(pid: int) -> int:
    """The parent pid of a running process (from /proc)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def worker_pids(proxy: TeamProxy, want: int, seconds: float = 30.0,
                      besides: frozenset[int] = frozenset()) -> set[int]:
    """The pids answering ``/health`` on fresh connections, until ``want`` distinct ones
    that are not in ``besides``."""
    pids: set[int] = set()

    async def enough() -> bool:
        reply = await proxy.get("/health", timeout=10)
        assert reply.status == 200, reply.body
        pids.add(reply.body["pid"])
        return len(pids - besides) >= want

    await eventually(enough, seconds=seconds, every=0.01, what=f"{want} workers answering")
    return pids


async def test_more_than_one_worker_needs_the_redis_backend(tmp_path):
    """Refused before anything starts: exit status 2, a clear message, no port, no data."""
    config = tmp_path / "openclaw.yaml"
    config.write_text('{"plugins": [{"id": "blockrun", "config": {}}]}')
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "clawrouter_plugin", "serve", "--workers", "2", "--config",
        str(config), "--port", str(port), "--data-dir", str(tmp_path / "data"),
        cwd=str(REPO), env={**os.environ, "HOME": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"--workers 2 needs state.backend: redis" in err
    assert b"Traceback" not in err + out
    assert not (tmp_path / "data").exists()  # no wallet, no logs: nothing started
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        pass  # refused: nobody listens on the port
    else:
        writer.close()
        raise AssertionError(f"something listens on port {port}")


async def test_a_bad_number_of_workers_is_refused(tmp_path):
    for bad in ("0", "-1", "two", "65"):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "clawrouter_plugin", "serve", "--workers", bad,
            cwd=str(REPO), env={**os.environ, "HOME": str(tmp_path)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 2, bad
        assert b"not a number of workers (1-64)" in err, bad


async def test_two_workers_answer_on_one_port_and_a_dead_one_is_replaced(
        x402_upstream, funded_wallet_key, redis_url, tmp_path, payer):
    pool = TeamProxy("pool", tmp_path, upstream_url=x402_upstream.url,
                     wallet_key=funded_wallet_key, config=team_config(redis_url), workers=2)
    try:
        await pool.start()
        assert pool.proc is not None
        pids = await worker_pids(pool, 2)
        assert len(pids) == 2 and all(parent_of(pid) == pool.proc.pid for pid in pids)
        reply = await pool.chat("hello from the pool", model=PAID)
        assert reply.status == 200 and reply.text.startswith(f"Echo from {PAID}")
        assert x402_upstream.ledger.total_paid(payer) == 1000

        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        await eventually(lambda: _async(not running(victim)), seconds=10, what="worker gone")
        now = await worker_pids(pool, 1, besides=frozenset(pids))  # its replacement answers
        new = now - pids
        assert victim not in now
        assert len(new) == 1 and all(parent_of(pid) == pool.proc.pid for pid in new)
        assert f"(pid {victim}) was killed by signal 9; starting it again" in pool.stderr()

        children = (pids | new) - {victim}
        assert await pool.stop() == 0
        assert not any(running(pid) for pid in children)
        assert "Traceback" not in pool.stderr()
    finally:
        await pool.close()


async def _async(value: bool) -> bool:
    return value


async def test_workers_stop_when_their_parent_is_killed(x402_upstream, funded_wallet_key,
                                                        redis_url, tmp_path):
    pool = TeamProxy("pool", tmp_path, upstream_url=x402_upstream.url,
                     wallet_key=funded_wallet_key, config=team_config(redis_url), workers=2)
    try:
        await pool.start()
        pids = await worker_pids(pool, 2)
        await pool.kill()  # SIGKILL: the parent cannot tell anyone
        for pid in pids:
            await eventually(lambda pid=pid: _async(not running(pid)), seconds=15,
                             what=f"worker {pid} stops")
    finally:
        await pool.close()


async def test_a_second_serve_reuses_a_running_team_proxy_even_while_redis_is_down(
        team, own_redis, tmp_path):
    """``/health`` says "degraded" while Redis is down; that is still clawrouter, to be reused,
    not "something else on the port"."""
    (proxy,) = await team(1, redis=own_redis.url)
    own_redis.kill()
    health = await proxy.get("/health")
    assert health.body["status"] == "degraded"
    second = await asyncio.create_subprocess_exec(
        *proxy.args, "--workers", "2", cwd=str(REPO), env=proxy.env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(second.communicate(), 60)
    assert second.returncode == 0, err.decode()[-2000:]
    assert b"already running" in out and b"reusing it" in out
