"""InFlight: concurrent identical requests share one call; nothing waits forever."""

import asyncio

import pytest

from clawrouter_plugin.errors import UpstreamError
from clawrouter_plugin.state.dedup import InFlight


async def test_concurrent_identical_calls_run_the_factory_once():
    inflight = InFlight()
    calls = 0
    gate = asyncio.Event()

    async def factory():
        nonlocal calls
        calls += 1
        await gate.wait()
        return {"answer": 4}

    tasks = [asyncio.create_task(inflight.run("k", factory)) for _ in range(10)]
    await asyncio.sleep(0)
    assert inflight.in_flight() == 1
    gate.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert calls == 1
    assert all(result == {"answer": 4} for result, _ in results)
    assert sorted(shared for _, shared in results) == [False] + [True] * 9
    assert inflight.in_flight() == 0


async def test_different_keys_do_not_share():
    inflight = InFlight()

    async def make(value):
        await asyncio.sleep(0.01)
        return value

    results = await asyncio.gather(
        inflight.run("a", lambda: make("a")), inflight.run("b", lambda: make("b"))
    )
    assert results == [("a", False), ("b", False)]


async def test_an_error_reaches_every_caller_and_the_entry_is_removed():
    inflight = InFlight()
    gate = asyncio.Event()

    async def failing():
        await gate.wait()
        raise UpstreamError("all models failed")

    tasks = [asyncio.create_task(inflight.run("k", failing)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
    assert all(isinstance(r, UpstreamError) and r.message == "all models failed" for r in results)
    assert inflight.in_flight() == 0
    # The next identical request starts afresh.
    assert await inflight.run("k", lambda: asyncio.sleep(0, result="ok")) == ("ok", False)


async def test_cancelled_leader_does_not_strand_waiters():
    inflight = InFlight()
    gate = asyncio.Event()
    calls = 0

    async def factory():
        nonlocal calls
        calls += 1
        await gate.wait()
        return f"done by call {calls}"

    leader = asyncio.create_task(inflight.run("k", factory))
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(inflight.run("k", factory)) for _ in range(3)]
    await asyncio.sleep(0)
    leader.cancel()  # the first caller went away: its work is abandoned
    with pytest.raises(asyncio.CancelledError):
        await leader
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.wait_for(asyncio.gather(*waiters), 5)
    # one waiter took over (its own request, its own payment); the others shared its answer
    assert sorted(results) == [("done by call 2", False)] + [("done by call 2", True)] * 2
    assert calls == 2
    assert inflight.in_flight() == 0


async def test_work_is_cancelled_when_every_caller_left():
    inflight = InFlight()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def factory():
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    callers = [asyncio.create_task(inflight.run("k", factory)) for _ in range(2)]
    await asyncio.wait_for(started.wait(), 5)
    for caller in callers:
        caller.cancel()
    await asyncio.gather(*callers, return_exceptions=True)
    await asyncio.wait_for(cancelled.wait(), 5)
    assert inflight.in_flight() == 0


async def test_a_newcomer_after_everyone_left_starts_fresh_work():
    inflight = InFlight()
    calls = 0

    async def factory():
        nonlocal calls
        calls += 1
        await asyncio.sleep(30 if calls == 1 else 0)
        return calls

    first = asyncio.create_task(inflight.run("k", factory))
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    assert await asyncio.wait_for(inflight.run("k", factory), 5) == (2, False)


async def test_work_cancelled_from_elsewhere_is_taken_over_by_a_waiter():
    inflight = InFlight()
    leaders = []

    async def factory():
        leaders.append(asyncio.current_task())
        await asyncio.sleep(30 if len(leaders) == 1 else 0)
        return len(leaders)

    callers = [asyncio.create_task(inflight.run("k", factory)) for _ in range(3)]
    await asyncio.sleep(0.01)
    leaders[0].cancel()  # e.g. the server shutting that request down
    results = await asyncio.wait_for(asyncio.gather(*callers, return_exceptions=True), 5)
    assert isinstance(results[0], asyncio.CancelledError)
    assert sorted(results[1:]) == [(2, False), (2, True)]
    assert inflight.in_flight() == 0


async def test_the_leader_runs_the_work_in_its_own_task():
    inflight = InFlight()

    async def factory():
        return asyncio.current_task()

    task, shared = await inflight.run("k", factory)
    assert task is asyncio.current_task() and not shared


async def test_synchronous_factory_error_leaves_no_entry():
    inflight = InFlight()

    def broken():
        raise ValueError("bad request body")

    with pytest.raises(ValueError):
        await inflight.run("k", broken)
    assert inflight.in_flight() == 0
