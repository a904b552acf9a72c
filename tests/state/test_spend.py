"""SpendTracker: per-session budget with reservations."""

import asyncio

import pytest

from clawrouter_plugin.errors import BudgetExceeded
from clawrouter_plugin.state.spend import SpendTracker


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_no_limit_tracks_but_never_blocks():
    tracker = SpendTracker(None)
    tracker.record("s", 5.0)
    tracker.reserve("s", 100.0).commit(50.0)
    assert tracker.spent("s") == 55.0
    assert tracker.remaining("s") is None


def test_limit_and_remaining():
    tracker = SpendTracker(1.0)
    assert tracker.remaining("s") == 1.0
    tracker.record("s", 0.25)
    assert tracker.spent("s") == 0.25 and tracker.remaining("s") == 0.75
    assert tracker.spent("other") == 0.0 and tracker.remaining("other") == 1.0


def test_reservation_holds_budget_until_settled():
    tracker = SpendTracker(1.0)
    held = tracker.reserve("s", 0.6)
    assert tracker.remaining("s") == pytest.approx(0.4)
    assert tracker.spent("s") == 0.0
    with pytest.raises(BudgetExceeded) as err:
        tracker.reserve("s", 0.5)
    assert err.value.status == 429
    assert "would exceed limit $1.00" in err.value.message
    assert "in flight $0.6000" in err.value.message
    held.commit(0.3)  # the real cost was lower than the estimate
    assert tracker.spent("s") == pytest.approx(0.3)
    assert tracker.remaining("s") == pytest.approx(0.7)
    tracker.reserve("s", 0.5).release()
    assert tracker.remaining("s") == pytest.approx(0.7)


def test_settling_twice_counts_once():
    tracker = SpendTracker(1.0)
    reservation = tracker.reserve("s", 0.2)
    reservation.commit(0.2)
    reservation.commit(0.2)
    reservation.release()
    assert tracker.spent("s") == pytest.approx(0.2)
    assert tracker.remaining("s") == pytest.approx(0.8)


def test_context_manager_releases_unless_committed():
    tracker = SpendTracker(1.0)
    with pytest.raises(RuntimeError):
        with tracker.reserve("s", 0.9):
            assert tracker.remaining("s") == pytest.approx(0.1)
            raise RuntimeError("upstream failed")
    assert tracker.remaining("s") == 1.0
    with tracker.reserve("s", 0.9) as reservation:
        reservation.commit(0.5)
    assert tracker.spent("s") == 0.5


def test_exact_fit_is_allowed_and_free_always_fits():
    tracker = SpendTracker(0.3)
    tracker.reserve("s", 0.1).commit(0.1)
    tracker.reserve("s", 0.2).commit(0.2)  # 0.1 + 0.2 is not exactly 0.3 in floats
    with pytest.raises(BudgetExceeded):
        tracker.reserve("s", 0.001)
    tracker.reserve("s", 0.0).commit(0.0)  # the free model is exempt


async def test_concurrent_requests_cannot_overspend():
    tracker = SpendTracker(1.0)
    admitted = []

    async def request(i):
        try:
            reservation = tracker.reserve("s", 0.3)
        except BudgetExceeded:
            return
        admitted.append(i)
        await asyncio.sleep(0.01)  # the upstream call
        reservation.commit(0.3)

    await asyncio.wait_for(asyncio.gather(*(request(i) for i in range(10))), 5)
    assert len(admitted) == 3
    assert tracker.spent("s") == pytest.approx(0.9)
    assert tracker.spent("s") <= tracker.limit


def test_sessions_reset_after_idle_ttl_but_not_while_holding():
    clock = Clock()
    tracker = SpendTracker(1.0, ttl_seconds=60, clock=clock)
    tracker.record("s", 0.9)
    held = tracker.reserve("t", 0.5)
    clock.now += 61
    assert tracker.spent("s") == 0.0 and tracker.remaining("s") == 1.0
    assert tracker.remaining("t") == pytest.approx(0.5)  # still in flight
    held.commit(0.5)
    assert tracker.spent("t") == 0.5


def test_activity_keeps_a_session_alive():
    clock = Clock()
    tracker = SpendTracker(1.0, ttl_seconds=60, clock=clock)
    for _ in range(5):
        tracker.record("s", 0.1)
        clock.now += 50
    assert tracker.spent("s") == pytest.approx(0.5)


def test_memory_is_bounded_but_holds_survive():
    tracker = SpendTracker(1.0, max_sessions=10)
    held = tracker.reserve("busy", 0.5)
    for i in range(100):
        tracker.record(f"s{i}", 0.1)
    assert tracker.remaining("busy") == pytest.approx(0.5)
    held.commit(0.4)
    assert tracker.spent("busy") == pytest.approx(0.4)
    assert tracker.spent("s0") == 0.0 and tracker.spent("s99") == pytest.approx(0.1)


@pytest.mark.parametrize("bad", [-0.01, float("nan"), float("inf"), "0.1", True, None])
def test_bad_amounts_are_rejected(bad):
    tracker = SpendTracker(1.0)
    with pytest.raises(ValueError):
        tracker.record("s", bad)
    with pytest.raises(ValueError):
        tracker.reserve("s", bad)
    assert tracker.spent("s") == 0.0 and tracker.remaining("s") == 1.0


def test_bad_limit_is_rejected():
    with pytest.raises(ValueError):
        SpendTracker(-1)
