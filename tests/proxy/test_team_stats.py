"""Team mode (`state.backend: redis`) for keys and /stats: two real proxies on 127.0.0.1 share
one real redis-server. A key revoked through the CLI is refused by both within a second;
/stats on either answers for the team, each record counted once (also when a batch's answer
is lost and it is sent again); with Redis down, /stats says so and shows the machine's own
numbers."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import yaml

from clawrouter_plugin.cli import main
from clawrouter_plugin.keys.cli import create_key
from clawrouter_plugin.usage import UsageRecord, utc_now_iso
from commands.stats import render_stats
from tests.support.x402_upstream import CHAT_PATH

from .conftest import make_config
from .test_costs import usage_lines
from .test_limits import post


def team(url: str, *, keys: bool = True) -> dict:
    overrides: dict = {"state": {"backend": "redis", "redisUrl": url}}
    if keys:
        overrides["server"] = {"requireKeys": True}
    return overrides


def chat(text: str) -> dict:
    return {"model": "blockrun/deepseek", "messages": [{"role": "user", "content": text}]}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def stats(handle, secret: str | None = None) -> dict:
    code, _, raw = await post(handle, "/stats?days=1", method="GET",
                              headers=bearer(secret) if secret else None)
    assert code == 200, raw[:300]
    return json.loads(raw)


async def team_stats_when(handle, secret, ready, seconds: float = 5.0) -> dict:
    """/stats of ``handle`` once ``ready(stats)`` holds (polled at most ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        answer = await stats(handle, secret)
        if ready(answer) or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.05)


async def two_proxies(start, tmp_path, url, **kw):
    return (await start(data_dir=tmp_path / "a", **team(url, **kw)),
            await start(data_dir=tmp_path / "b", **team(url, **kw)))


async def test_a_key_revoked_through_the_cli_is_refused_by_every_process_within_a_second(
        start, tmp_path, redis_url):
    plugin = make_config(dataDir=str(tmp_path / "cli"), **team(redis_url))
    key, secret = await create_key(plugin, "alice")
    first, second = await two_proxies(start, tmp_path, redis_url)
    for handle in (first, second):
        code, _, _ = await post(handle, "/v1/models", method="GET", headers=bearer(secret))
        assert code == 200
    config = tmp_path / "openclaw.yaml"
    config.write_text(yaml.safe_dump({"plugins": {"entries": {"blockrun": {"config": {
        "state": {"backend": "redis", "redisUrl": redis_url}}}}}}))
    assert await asyncio.to_thread(main, ["keys", "revoke", key.id, "--config", str(config),
                                          "--data-dir", str(tmp_path / "cli")]) == 0
    revoked_at = time.monotonic()
    refused = set()
    for _ in range(100):  # bounded: at most 100 rounds, 20 ms apart
        for name, handle in (("first", first), ("second", second)):
            code, _, _ = await post(handle, "/v1/models", method="GET", headers=bearer(secret))
            if code == 401:
                refused.add(name)
        if len(refused) == 2:
            break
        await asyncio.sleep(0.02)
    assert refused == {"first", "second"} and time.monotonic() - revoked_at < 1.0


async def test_stats_on_either_process_answers_for_the_team_once_per_record(
        start, tmp_path, redis_url, x402_upstream, payer):
    plugin = make_config(dataDir=str(tmp_path / "cli"), **team(redis_url))
    alice, alice_secret = await create_key(plugin, "alice")
    bob, bob_secret = await create_key(plugin, "bob")
    first, second = await two_proxies(start, tmp_path, redis_url)
    sent = [(first, alice_secret, "a1"), (first, alice_secret, "a2"), (first, bob_secret, "b1"),
            (second, bob_secret, "b2"), (second, bob_secret, "b3")]
    results = await asyncio.gather(*(post(handle, CHAT_PATH, json_body=chat(text),
                                          headers=bearer(secret))
                                     for handle, secret, text in sent))
    assert [code for code, _, _ in results] == [200] * 5
    assert x402_upstream.ledger.total_paid_usd(payer) == pytest.approx(0.005)
    expected = {alice.id: {"requests": 2, "cost": 0.002}, bob.id: {"requests": 3, "cost": 0.003}}
    for handle, secret in ((first, bob_secret), (second, alice_secret)):
        answer = await team_stats_when(handle, secret, lambda s: s["totalRequests"] >= 5)
        assert answer["scope"] == "team" and "teamError" not in answer
        assert answer["totalRequests"] == 5 and answer["byKey"] == expected
        assert answer["totalCost"] == pytest.approx(0.005)
        assert answer["payments"]["settled"] == {"count": 5, "amount": 0.005}
    await asyncio.sleep(0.6)  # more than two flush periods: nothing is added again
    assert (await stats(first, alice_secret))["totalRequests"] == 5
    # each machine's own log holds its own records only
    assert len(usage_lines(first)) == 3 and len(usage_lines(second)) == 2


async def test_a_batch_sent_again_after_a_lost_answer_is_counted_once(
        start, tmp_path, redis_url):
    proxy = await start(data_dir=tmp_path / "a", **team(redis_url, keys=False))
    team_stats = proxy.services.stats
    real_apply = team_stats._apply
    lost = []

    async def apply_then_lose_the_answer(**kwargs):
        result = await real_apply(**kwargs)  # Redis has applied it...
        if not lost:
            lost.append(kwargs)
            raise ConnectionError("connection lost before the answer")  # ...we never hear
        return result

    team_stats._apply = apply_then_lose_the_answer
    for _ in range(3):
        proxy.services.usage.append(_record("k1"))
    with pytest.raises(ConnectionError):
        await team_stats.flush()
    assert not proxy.services.redis.healthy
    proxy.services.usage.append(_record("k2"))
    await team_stats.flush()  # the lost batch again (same number), then the new one
    answer = await stats(proxy)
    assert lost and answer["totalRequests"] == 4
    assert answer["byKey"] == {"k1": {"requests": 3, "cost": 0.003},
                               "k2": {"requests": 1, "cost": 0.001}}
    assert proxy.services.redis.healthy


def _record(key: str) -> UsageRecord:
    return UsageRecord(timestamp=utc_now_iso(), session="s", requested_model="auto",
                       model="openai/gpt-4o-mini", tier="SIMPLE", input_tokens=1,
                       output_tokens=1, cost=0.001, baseline_cost=0.01, savings=0.009,
                       latency_ms=1.0, cache_hit=False, fallbacks=0, key=key)


async def test_with_redis_down_stats_shows_this_machines_numbers_and_says_so(
        start, tmp_path, own_redis):
    proxy = await start(data_dir=tmp_path / "a", state={"backend": "redis",
                                                        "redisUrl": own_redis.url,
                                                        "timeoutSeconds": 0.5})
    other = await start(data_dir=tmp_path / "b", state={"backend": "redis",
                                                        "redisUrl": own_redis.url})
    for handle, text in ((proxy, "mine"), (other, "theirs 1"), (other, "theirs 2")):
        code, _, _ = await post(handle, CHAT_PATH, json_body=chat(text))
        assert code == 200
    answer = await team_stats_when(proxy, None, lambda s: s["totalRequests"] >= 3)
    assert answer["scope"] == "team" and answer["totalRequests"] == 3
    own_redis.kill()
    down = await stats(proxy)
    assert down["scope"] == "local" and down["totalRequests"] == 1
    assert "Redis is unreachable" in down["teamError"]
    assert "this machine only" in render_stats(down) and "whole team" in render_stats(answer)
    proxy.services.usage.append(_record("while-down"))  # written while Redis is away
    assert (await stats(proxy))["totalRequests"] == 2
    own_redis.start()  # empty: a restarted server without persistence
    back = await team_stats_when(proxy, None, lambda s: s.get("scope") == "team")
    assert back["scope"] == "team" and back["byKey"] == {
        "while-down": {"requests": 1, "cost": 0.001}}
