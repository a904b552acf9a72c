"""RedisSpend: one budget for every process of a team, on a real redis-server. Each
"process" here is a RedisSpend with its own connection pool, as separate processes have."""

import asyncio
import random

import pytest

from clawrouter_plugin.config import StateConfig
from clawrouter_plugin.errors import BudgetExceeded, StateUnavailable
from clawrouter_plugin.keys.model import ApiKey
from clawrouter_plugin.state.redis_conn import open_link
from clawrouter_plugin.state.redis_spend import RedisSpend


@pytest.fixture
async def processes(redis_url):
    """``processes(n, limit, **kw)``: n RedisSpend on n separate links to one Redis."""
    links = []

    def _make(n, limit, url=None, **kw):
        made = []
        for _ in range(n):
            link = open_link(StateConfig(backend="redis", redis_url=url or redis_url,
                                         timeout_seconds=1))
            links.append(link)
            made.append(RedisSpend(link, limit, **kw))
        return made

    yield _make
    for link in links:
        await link.aclose()


async def test_concurrent_claims_from_three_processes_never_exceed_the_cap(processes):
    """64 requests spread over three processes, each holding a small estimate and then
    claiming its real price ($0.001 to $0.004) before "signing": what was claimed and
    committed stays within the $0.05 cap, and every process sees the same total."""
    spends = processes(3, 0.05)
    rng = random.Random(15)
    prices = [rng.choice([0.001, 0.002, 0.003, 0.004]) for _ in range(64)]
    signed: list[float] = []

    async def request(i):
        spend = spends[i % 3]
        try:
            reservation = await spend.reserve("team", 0.0005)
        except BudgetExceeded:
            return
        try:
            await asyncio.sleep(rng.random() / 100)  # the unpaid first send and its 402
            await reservation.claim(prices[i])
            signed.append(prices[i])
            await asyncio.sleep(rng.random() / 100)  # the paid call
            await reservation.commit(prices[i])
        except BudgetExceeded:
            await reservation.release()

    await asyncio.wait_for(asyncio.gather(*(request(i) for i in range(64))), 30)
    assert sum(signed) <= 0.05 + 1e-9
    assert 0.02 < sum(signed) and len(signed) < 64  # the budget was used, then refused
    for spend in spends:
        assert await spend.spent("team") == pytest.approx(sum(signed))
        assert await spend.remaining("team") == pytest.approx(0.05 - sum(signed))


async def test_a_dead_process_holds_block_the_budget_only_until_they_expire(processes):
    """A process that dies leaves its holds behind: an estimate stops counting when its hold
    expires; a claimed payment (maybe settled) is then counted as spent, not forgotten."""
    dead, alive = processes(2, 1.0, hold_seconds=0.3)
    await dead.reserve("s", 0.5)  # an estimate, never settled
    claimed = await dead.reserve("s", 0.1)
    await claimed.claim(0.2)  # about to be signed, then the process died
    assert await alive.remaining("s") == pytest.approx(0.3)
    with pytest.raises(BudgetExceeded):
        await alive.reserve("s", 0.4)
    await asyncio.sleep(0.45)
    assert await alive.remaining("s") == pytest.approx(0.8)
    assert await alive.spent("s") == pytest.approx(0.2)
    await (await alive.reserve("s", 0.8)).release()


async def test_a_commit_after_the_hold_expired_replaces_the_charge(processes):
    (spend,) = processes(1, 1.0, hold_seconds=0.2)
    reservation = await spend.reserve("s", 0.1)
    await reservation.claim(0.3)
    await asyncio.sleep(0.3)
    assert await spend.spent("s") == pytest.approx(0.3)  # counted while its fate is unknown
    await (await spend.reserve("s", 0.01)).release()  # a claim sweeps the expired hold
    await reservation.commit(0.25)  # the payment really cost this
    assert await spend.spent("s") == pytest.approx(0.25)
    assert await spend.remaining("s") == pytest.approx(0.75)


async def test_a_key_daily_budget_is_shared_by_every_process_and_session(processes):
    key = ApiKey(id="k1", name="ci", daily_usd=0.01)
    spends = processes(3, None)
    paid = 0
    for i in range(15):
        spend = spends[i % 3]
        reservation = await spend.reserve(f"session-{i}", 0.0, api_key=key)
        try:
            await reservation.claim(0.001)
        except BudgetExceeded as exc:
            assert exc.status == 429 and exc.code == "key_budget_exceeded"
            assert "'ci'" in exc.message and "daily" in exc.message
            await reservation.release()
            continue
        await reservation.commit(0.001)
        paid += 1
    assert paid == 10
    other = ApiKey(id="k2", name="other", daily_usd=0.01)
    await (await spends[0].reserve("session-0", 0.005, api_key=other)).release()  # not shared


async def test_a_claim_takes_every_budget_or_none(processes):
    """The session could pay, the key's per-session budget cannot: nothing is held anywhere."""
    key = ApiKey(id="k", name="agents", run_usd=0.002, daily_usd=1.0)
    (spend,) = processes(1, 0.01)
    first = await spend.reserve("s", 0.0015, api_key=key)
    with pytest.raises(BudgetExceeded) as err:
        await spend.reserve("s", 0.001, api_key=key)
    assert "per session" in err.value.message
    assert await spend.remaining("s") == pytest.approx(0.0085)  # only the first hold
    assert await spend.remaining("s", api_key=key) == pytest.approx(0.0005)
    budget = await spend.budget("s", api_key=key)
    assert budget.limit == 0.002 and "per session" in budget.label
    await first.commit(0.001)
    assert await spend.remaining("other-session", api_key=key) == pytest.approx(0.002)
    assert await spend.remaining("s") == pytest.approx(0.009)


async def test_redis_down_nothing_can_be_claimed_and_it_recovers(processes, own_redis):
    (spend,) = processes(1, None, url=own_redis.url)
    before = await spend.reserve("s", 0.0)
    await before.claim(0.001)
    own_redis.kill()
    reservation = await spend.reserve("s", 0.0)  # nothing to hold yet: no Redis needed
    with pytest.raises(StateUnavailable) as err:
        await reservation.claim(0.001)
    assert err.value.status == 503 and "nothing was signed" in err.value.message
    assert spend.link.healthy is False
    await before.commit(0.001)  # cannot be written: logged, never raised
    own_redis.start()
    await reservation.claim(0.001)
    await reservation.commit(0.001)
    assert spend.link.healthy is True
    assert await spend.spent("s") == pytest.approx(0.001)  # a restart without persistence


async def test_a_redis_that_refuses_writes_signs_nothing(processes, own_redis):
    """Out of memory (maxmemory reached, no eviction): Redis answers but refuses the claim.
    That is a 503 too, not a server error, and the link is not reported down."""
    (spend,) = processes(1, None, url=own_redis.url)
    await spend.link.client.config_set("maxmemory", 1)
    await spend.link.client.config_set("maxmemory-policy", "noeviction")
    reservation = await spend.reserve("s", 0.0)
    with pytest.raises(StateUnavailable):
        await reservation.claim(0.001)
    assert spend.link.healthy is True
    await spend.link.client.config_set("maxmemory", 0)
    await reservation.claim(0.001)
    await reservation.commit(0.001)
    assert await spend.spent("s") == pytest.approx(0.001)
