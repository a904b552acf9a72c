"""Spend budgets with reservations: the same behaviour from the local tracker and from the
Redis one (a real redis-server), plus what only the local one does (its clock and memory)."""

import asyncio

import pytest

from clawrouter_plugin.config import StateConfig
from clawrouter_plugin.errors import BudgetExceeded
from clawrouter_plugin.keys.model import ApiKey
from clawrouter_plugin.state.redis_conn import open_link
from clawrouter_plugin.state.redis_spend import RedisSpend
from clawrouter_plugin.state.spend import SpendTracker


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture(params=["local", "redis"])
async def make(request):
    """``make(limit)``: a spend backend of the parametrized kind (Redis: the shared server)."""
    links = []

    def _make(limit, **kw):
        if request.param == "local":
            return SpendTracker(limit, **kw)
        url = request.getfixturevalue("redis_url")
        link = open_link(StateConfig(backend="redis", redis_url=url))
        links.append(link)
        return RedisSpend(link, limit, **kw)

    yield _make
    for link in links:
        await link.aclose()


async def test_no_limit_tracks_but_never_blocks(make):
    tracker = make(None)
    await tracker.record("s", 5.0)
    await (await tracker.reserve("s", 100.0)).commit(50.0)
    assert await tracker.spent("s") == 55.0
    assert await tracker.remaining("s") is None


async def test_limit_and_remaining(make):
    tracker = make(1.0)
    assert await tracker.remaining("s") == 1.0
    await tracker.record("s", 0.25)
    assert await tracker.spent("s") == 0.25 and await tracker.remaining("s") == 0.75
    assert await tracker.spent("other") == 0.0 and await tracker.remaining("other") == 1.0


async def test_reservation_holds_budget_until_settled(make):
    tracker = make(1.0)
    held = await tracker.reserve("s", 0.6)
    assert await tracker.remaining("s") == pytest.approx(0.4)
    assert await tracker.spent("s") == 0.0
    with pytest.raises(BudgetExceeded) as err:
        await tracker.reserve("s", 0.5)
    assert err.value.status == 429
    assert "would exceed limit $1.00" in err.value.message
    assert "in flight $0.6000" in err.value.message
    await held.commit(0.3)  # the real cost was lower than the estimate
    assert await tracker.spent("s") == pytest.approx(0.3)
    assert await tracker.remaining("s") == pytest.approx(0.7)
    await (await tracker.reserve("s", 0.5)).release()
    assert await tracker.remaining("s") == pytest.approx(0.7)


async def test_a_claim_raises_the_hold_only_if_it_fits(make):
    tracker = make(1.0)
    first = await tracker.reserve("s", 0.1)
    assert first.available == pytest.approx(1.0)
    other = await tracker.reserve("s", 0.5)
    assert other.available == pytest.approx(0.9)
    await first.claim(0.4)  # the payment costs more than the estimate: fits with the rest
    assert await tracker.remaining("s") == pytest.approx(0.1)
    with pytest.raises(BudgetExceeded) as err:
        await first.claim(0.6)
    assert "payment $0.2000" in err.value.message
    assert await tracker.remaining("s") == pytest.approx(0.1)  # nothing changed
    await first.commit(0.4)
    await other.release()
    assert await tracker.spent("s") == pytest.approx(0.4)


async def test_settling_twice_counts_once(make):
    tracker = make(1.0)
    reservation = await tracker.reserve("s", 0.2)
    await reservation.commit(0.2)
    await reservation.commit(0.2)
    await reservation.release()
    assert await tracker.spent("s") == pytest.approx(0.2)
    assert await tracker.remaining("s") == pytest.approx(0.8)


async def test_context_manager_releases_unless_committed(make):
    tracker = make(1.0)
    with pytest.raises(RuntimeError):
        async with await tracker.reserve("s", 0.9):
            assert await tracker.remaining("s") == pytest.approx(0.1)
            raise RuntimeError("upstream failed")
    assert await tracker.remaining("s") == 1.0
    async with await tracker.reserve("s", 0.9) as reservation:
        await reservation.commit(0.5)
    assert await tracker.spent("s") == 0.5


async def test_exact_fit_is_allowed_and_free_always_fits(make):
    tracker = make(0.3)
    await (await tracker.reserve("s", 0.1)).commit(0.1)
    await (await tracker.reserve("s", 0.2)).commit(0.2)  # 0.1 + 0.2 is not exactly 0.3 in floats
    with pytest.raises(BudgetExceeded):
        await tracker.reserve("s", 0.001)
    await (await tracker.reserve("s", 0.0)).commit(0.0)  # the free model is exempt


async def test_concurrent_requests_cannot_overspend(make):
    tracker = make(1.0)
    admitted = []

    async def request(i):
        try:
            reservation = await tracker.reserve("s", 0.3)
        except BudgetExceeded:
            return
        admitted.append(i)
        await asyncio.sleep(0.01)  # the upstream call
        await reservation.commit(0.3)

    await asyncio.wait_for(asyncio.gather(*(request(i) for i in range(10))), 5)
    assert len(admitted) == 3
    assert await tracker.spent("s") == pytest.approx(0.9)
    assert await tracker.spent("s") <= tracker.limit


async def test_an_api_key_budget_is_checked_with_the_session_budget(make):
    """A key's budgets per session and per day bind with the session's: a hold must fit all
    of them, or none is touched."""
    key = ApiKey(id="k", name="agents", run_usd=0.5, daily_usd=0.8)
    tracker = make(1.0)
    first = await tracker.reserve("s", 0.4, api_key=key)
    assert first.available == pytest.approx(0.5)
    with pytest.raises(BudgetExceeded) as err:
        await tracker.reserve("s", 0.2, api_key=key)  # the session could, the key cannot
    assert err.value.code == "key_budget_exceeded" and "'agents'" in err.value.message
    assert await tracker.remaining("s") == pytest.approx(0.6)  # nothing more was held
    assert await tracker.remaining("s", api_key=key) == pytest.approx(0.1)
    await first.commit(0.4)
    other = await tracker.reserve("t", 0.3, api_key=key)  # a new session, the same day
    with pytest.raises(BudgetExceeded) as err:
        await other.claim(0.5)
    assert "daily" in err.value.message
    await other.commit(0.3)
    budget = await tracker.budget("u", api_key=key)
    assert budget.remaining == pytest.approx(0.1) and "daily" in budget.label
    assert await tracker.remaining("u") == pytest.approx(1.0)  # without the key: unlimited by it


@pytest.mark.parametrize("bad", [-0.01, float("nan"), float("inf"), "0.1", True, None])
async def test_bad_amounts_are_rejected(make, bad):
    tracker = make(1.0)
    with pytest.raises(ValueError):
        await tracker.record("s", bad)
    with pytest.raises(ValueError):
        await tracker.reserve("s", bad)
    assert await tracker.spent("s") == 0.0 and await tracker.remaining("s") == 1.0


def test_bad_limit_is_rejected():
    with pytest.raises(ValueError):
        SpendTracker(-1)


# --- local only: its own clock and memory bound ----------------------------------------------

async def test_sessions_reset_after_idle_ttl_but_not_while_holding():
    clock = Clock()
    tracker = SpendTracker(1.0, ttl_seconds=60, clock=clock)
    await tracker.record("s", 0.9)
    held = await tracker.reserve("t", 0.5)
    clock.now += 61
    assert await tracker.spent("s") == 0.0 and await tracker.remaining("s") == 1.0
    assert await tracker.remaining("t") == pytest.approx(0.5)  # still in flight
    await held.commit(0.5)
    assert await tracker.spent("t") == 0.5


async def test_activity_keeps_a_session_alive():
    clock = Clock()
    tracker = SpendTracker(1.0, ttl_seconds=60, clock=clock)
    for _ in range(5):
        await tracker.record("s", 0.1)
        clock.now += 50
    assert await tracker.spent("s") == pytest.approx(0.5)


async def test_memory_is_bounded_but_holds_survive():
    tracker = SpendTracker(1.0, max_sessions=10)
    held = await tracker.reserve("busy", 0.5)
    for i in range(100):
        await tracker.record(f"s{i}", 0.1)
    assert await tracker.remaining("busy") == pytest.approx(0.5)
    await held.commit(0.4)
    assert await tracker.spent("busy") == pytest.approx(0.4)
    assert await tracker.spent("s0") == 0.0 and await tracker.spent("s99") == pytest.approx(0.1)
