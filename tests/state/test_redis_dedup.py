"""SharedInFlight: identical concurrent requests in different processes share one piece of
work (one payment), on a real redis-server; the leader-death rule. Each "process" is a
SharedInFlight on its own link; a real process is killed with SIGKILL where death matters."""

import asyncio
import signal
import sys
import textwrap
import time

import orjson
import pytest

from clawrouter_plugin.config import StateConfig
from clawrouter_plugin.errors import (
    ClawRouterError,
    IdenticalRequestPending,
    UpstreamError,
)
from clawrouter_plugin.state.dedup import before_signing
from clawrouter_plugin.state.redis_conn import open_link
from clawrouter_plugin.state.redis_dedup import SharedInFlight


class Json:
    """A Shareable for plain JSON values."""

    def encode(self, result):
        return orjson.dumps(result)

    def decode(self, data):
        return orjson.loads(data)


@pytest.fixture
async def processes(redis_url):
    links = []

    def _make(n, url=None, **kw):
        made = []
        for _ in range(n):
            link = open_link(StateConfig(backend="redis", redis_url=url or redis_url,
                                         timeout_seconds=1))
            links.append(link)
            made.append(SharedInFlight(link, **kw))
        return made

    yield _make
    for link in links:
        await link.aclose()


async def test_eight_identical_requests_in_three_processes_run_once(processes):
    flights = processes(3)
    calls = 0
    gate = asyncio.Event()

    async def factory():
        nonlocal calls
        calls += 1
        await gate.wait()
        return {"answer": 42}

    tasks = [asyncio.create_task(flights[i % 3].run("k", factory, Json())) for i in range(8)]
    await asyncio.sleep(0.1)
    gate.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert calls == 1
    assert all(result == {"answer": 42} for result, _ in results)
    assert sorted(shared for _, shared in results) == [False] + [True] * 7
    assert all(flight.in_flight() == 0 for flight in flights)


async def test_a_leader_error_reaches_the_waiters_of_every_process(processes):
    flights = processes(3)
    gate = asyncio.Event()
    calls = 0

    async def failing():
        nonlocal calls
        calls += 1
        await gate.wait()
        raise UpstreamError("all models failed", status=504)

    tasks = [asyncio.create_task(flights[i % 3].run("k", failing, Json())) for i in range(6)]
    await asyncio.sleep(0.1)
    gate.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    assert calls == 1
    for error in results:
        assert isinstance(error, ClawRouterError)
        assert (error.message, error.status, error.code, error.type) == \
            ("all models failed", 504, "upstream_error", "upstream_error")
    # the next identical request starts afresh
    assert await flights[1].run("k", lambda: asyncio.sleep(0, result=1), Json()) == (1, False)


async def test_a_leader_cancelled_before_signing_is_replaced_by_one_waiter(processes):
    leader_flight, *others = processes(3)
    started = asyncio.Event()
    calls = 0

    async def factory():
        nonlocal calls
        calls += 1
        if calls == 1:
            started.set()
            await asyncio.sleep(60)
        return calls

    leader = asyncio.create_task(leader_flight.run("k", factory, Json()))
    await asyncio.wait_for(started.wait(), 5)
    waiters = [asyncio.create_task(others[i % 2].run("k", factory, Json())) for i in range(4)]
    await asyncio.sleep(0.1)
    leader.cancel()
    results = await asyncio.wait_for(asyncio.gather(*waiters), 10)
    assert calls == 2  # the cancelled leader's work and one takeover, never more
    assert sorted(results) == [(2, False)] + [(2, True)] * 3


async def test_a_leader_cancelled_after_signing_is_not_paid_again(processes):
    """The leader announced a payment (valid for 300 s) and went away: its payment may still
    settle, so nobody does the work again; every waiter, and a newcomer, gets a 503 saying
    when to retry."""
    leader_flight, other = processes(2)
    signed = asyncio.Event()
    calls = 0

    async def factory():
        nonlocal calls
        calls += 1
        await before_signing.get()(int(time.time()) + 300)
        signed.set()
        await asyncio.sleep(60)

    leader = asyncio.create_task(leader_flight.run("k", factory, Json()))
    await asyncio.wait_for(signed.wait(), 5)
    waiters = [asyncio.create_task(other.run("k", factory, Json())) for _ in range(3)]
    await asyncio.sleep(0.1)
    leader.cancel()
    results = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), 10)
    assert calls == 1
    for error in results:
        assert isinstance(error, IdenticalRequestPending)
        assert error.status == 503 and 300 <= error.retry_after <= 362
        assert "may still settle" in error.message
    with pytest.raises(IdenticalRequestPending):
        await asyncio.wait_for(other.run("k", factory, Json()), 5)
    assert calls == 1


async def test_a_leader_that_lost_its_lock_does_not_sign(processes, redis_url):
    """The lock expired under a live leader (say its renewals could not reach Redis) and
    another may have taken over: its next signature is refused before it exists."""
    (flight,) = processes(1)
    refused = []

    async def factory():
        await flight.link.client.delete(flight.link.key("dedup", "k", "lock"))
        try:
            await before_signing.get()(int(time.time()) + 300)
        except ClawRouterError as exc:
            refused.append(exc)
            raise
        return "signed"

    with pytest.raises(ClawRouterError) as err:
        await asyncio.wait_for(flight.run("k", factory, Json()), 10)
    assert refused and err.value.status == 503 and "not paid" in err.value.message
    assert await flight.link.client.get(flight.link.key("dedup", "k", "paying")) is None


@pytest.mark.parametrize("share", [None, Json()], ids=["not shared", "shared"])
async def test_with_redis_down_two_identical_calls_still_run_once(processes, own_redis, share):
    """Without ``share`` nothing ever leaves the process; with it, a dead Redis leaves the
    sharing to this process alone. Either way the two calls run the work once."""
    (flight,) = processes(1, url=own_redis.url)
    own_redis.kill()
    calls = 0

    async def factory():
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return calls

    args = (share,) if share is not None else ()
    results = await asyncio.wait_for(asyncio.gather(
        flight.run("k", factory, *args), flight.run("k", factory, *args)), 10)
    assert sorted(results) == [(1, False), (1, True)]
    assert flight.link.healthy is (share is None)  # unshared: Redis was never asked


LEADER = textwrap.dedent("""
    import asyncio, sys, time
    import orjson
    from clawrouter_plugin.config import StateConfig
    from clawrouter_plugin.state.dedup import before_signing
    from clawrouter_plugin.state.redis_conn import open_link
    from clawrouter_plugin.state.redis_dedup import SharedInFlight

    class Json:
        encode = staticmethod(orjson.dumps)
        decode = staticmethod(orjson.loads)

    async def main():
        link = open_link(StateConfig(backend="redis", redis_url=sys.argv[1]))
        flight = SharedInFlight(link, lock_seconds=0.5)

        async def work():
            if sys.argv[2] == "sign":
                await before_signing.get()(int(time.time()) + 300)
            print("working", flush=True)
            await asyncio.sleep(60)

        await flight.run("k", work, Json())

    asyncio.run(main())
""")


@pytest.mark.parametrize("signed", [True, False])
async def test_a_leader_process_killed_with_sigkill(processes, redis_url, signed):
    """The leader's process dies (SIGKILL, no clean-up) while three waiters in two other
    processes wait. Its lock expires. Had it signed a payment: nobody pays again (503).
    Had it not: exactly one waiter does the work, the others share it."""
    leader = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LEADER, redis_url, "sign" if signed else "no",
        stdout=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(leader.stdout.readline(), 20)
        assert line.strip() == b"working"
        flights = processes(2, lock_seconds=0.5)
        calls = 0

        async def factory():
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.05)
            return "fresh"

        waiters = [asyncio.create_task(flights[i % 2].run("k", factory, Json()))
                   for i in range(3)]
        await asyncio.sleep(0.2)
        assert not any(task.done() for task in waiters)  # the live leader is waited for
        leader.send_signal(signal.SIGKILL)
        await leader.wait()
        results = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), 10)
    finally:
        if leader.returncode is None:
            leader.kill()
            await leader.wait()
    if signed:
        assert calls == 0
        assert all(isinstance(error, IdenticalRequestPending) for error in results)
    else:
        assert calls == 1
        assert sorted(results) == [("fresh", False), ("fresh", True), ("fresh", True)]


async def test_a_leader_working_longer_than_its_lock_keeps_it(processes):
    """The lock lives 0.3 s and is renewed every 0.1 s while the leader works for 1 s: the
    waiter in the other process never takes over, and shares the one answer."""
    leader_flight, other = processes(2, lock_seconds=0.3)
    calls = 0

    async def factory():
        nonlocal calls
        calls += 1
        await asyncio.sleep(1.0)
        return "slow"

    leader = asyncio.create_task(leader_flight.run("k", factory, Json()))
    await asyncio.sleep(0.05)
    waiter = asyncio.create_task(other.run("k", factory, Json()))
    results = await asyncio.wait_for(asyncio.gather(leader, waiter), 10)
    assert calls == 1
    assert results == [("slow", False), ("slow", True)]
