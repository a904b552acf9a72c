"""Issue #15's team scenarios: three real ``clawrouter serve`` processes (each with its own
config and data directory, as on three machines) share one real ``redis-server`` and one
wallet, in front of the x402 test upstream whose payments the official SDK verifies and
settles into its ledger. The ledger, not the proxies, says what was paid."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from collections import Counter

from tests.support import handlers as h
from tests.support.x402_upstream import CHAT_PATH

from .conftest import PAID, team_config
from .harness import REPO, Reply, TeamProxy, eventually, usage_lines

HARD = ("Design a distributed rate limiter for a multi-region API gateway: compare token "
        "bucket and sliding window, explain consistency trade-offs and failure modes.")


def last_user_text(call_body: object) -> str:
    """The last user message of a request body the upstream received."""
    messages = call_body.get("messages") if isinstance(call_body, dict) else None
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return str(message.get("content"))
    return ""


def settled_questions(upstream) -> Counter:
    """How many settled payments the upstream took for each question (last user message)."""
    return Counter(last_user_text(record.json()) for record in upstream.requests
                   if record.settlement is not None)


async def test_identical_requests_spread_over_three_proxies_pay_once(team, x402_upstream,
                                                                     payer):
    """8 identical requests at once, spread over the three: one payment, eight answers."""
    x402_upstream.set_handler(CHAT_PATH, h.delayed(1.5))  # the first is still in flight
    proxies = await team(3)
    question = "one question asked by eight agents at once"
    replies = await asyncio.gather(*(proxies[i % 3].chat(question, model=PAID)
                                     for i in range(8)))
    assert [reply.status for reply in replies] == [200] * 8, [r.body for r in replies]
    assert {reply.text for reply in replies} == {f"Echo from {PAID}: {question}"}
    assert len(x402_upstream.ledger.settlements) == 1
    assert x402_upstream.count(path=CHAT_PATH, paid=True) == 1
    assert x402_upstream.ledger.total_paid(payer) == 1000


async def test_a_strict_session_budget_holds_across_three_proxies(team, x402_upstream, payer):
    """64 requests at once in one strict session of $0.01, over the three: the ledger total
    stays within the cap; every answer was paid once; the rest are refused as over budget."""
    x402_upstream.set_handler(CHAT_PATH, h.delayed(0.2))
    cap = 0.01
    proxies = await team(3, maxCostPerRun=cap, maxCostPerRunMode="strict")
    replies = await asyncio.gather(*(proxies[i % 3].chat(f"task number {i}", model=PAID,
                                                         session="team-run")
                                     for i in range(64)))
    paid = x402_upstream.ledger.total_paid_usd(payer)
    assert 0 < paid <= cap + 1e-9
    answered = [reply for reply in replies if reply.status == 200]
    refused = [reply for reply in replies if reply.status != 200]
    assert len(answered) == len(x402_upstream.ledger.settlements)
    assert refused, "64 requests at $0.001 cannot all fit in $0.01"
    assert all(reply.status == 429 and reply.is_openai_error()
               and reply.body["error"]["code"] == "cost_cap_exceeded" for reply in refused), \
        Counter((reply.status, json.dumps(reply.body)[:200]) for reply in refused)
    assert max(settled_questions(x402_upstream).values()) == 1


async def test_a_pin_set_through_one_proxy_is_honoured_by_the_others(team):
    a, b, c = await team(3)
    first = await a.chat(HARD, session="conv-team")
    assert first.status == 200
    pinned, tier = first.headers["x-clawrouter-model"], first.headers["x-clawrouter-tier"]
    for n, proxy in enumerate((b, c)):
        follow = [{"role": "user", "content": HARD}, {"role": "assistant", "content": "..."},
                  {"role": "user", "content": f"thanks! ({n})"}]
        again = await proxy.chat(follow, session="conv-team")
        assert again.status == 200
        assert (again.headers["x-clawrouter-model"], again.headers["x-clawrouter-tier"]) == \
            (pinned, tier)
    # without the pin, the same follow-up is a simple one: the pin is what kept the model
    other = await b.chat("thanks! (2)", session="conv-other")
    assert other.headers["x-clawrouter-tier"] == "SIMPLE" != tier


async def test_a_response_cached_by_one_proxy_is_a_hit_on_another(team, x402_upstream):
    a, b, c = await team(3)
    question = "cache this answer for the whole team"
    first = await a.chat(question, model=PAID)
    assert first.status == 200 and first.headers["x-clawrouter-cache"] == "MISS"
    for proxy in (b, c):
        hit = await proxy.chat(question, model=PAID)
        assert hit.status == 200 and hit.headers["x-clawrouter-cache"] == "HIT"
        assert hit.text == first.text
    assert len(x402_upstream.ledger.settlements) == 1
    assert x402_upstream.count(path=CHAT_PATH, paid=True) == 1


async def test_an_exclusion_added_on_one_proxy_is_honoured_by_all(team):
    a, b, c = await team(3)
    before = await b.chat("what is the capital of France?", session="ex-0")
    routed = before.headers["x-clawrouter-model"]
    same = await c.chat("what is the capital of Italy?", session="ex-1")
    assert same.headers["x-clawrouter-model"] == routed  # such a question goes to that model
    added = await a.chat(f"/exclude add {routed}")
    assert added.status == 200 and routed in added.text, added.body
    for n, proxy in enumerate((a, b, c)):
        after = await proxy.chat(f"what is the capital of Spain? ({n})", session=f"ex-{n + 2}")
        assert after.status == 200
        assert after.headers["x-clawrouter-model"] != routed


async def test_redis_killed_mid_load_loses_and_doubles_no_payment(team, own_redis,
                                                                   x402_upstream, payer):
    """Redis dies while requests are in flight, stays down for a while, comes back. Every
    payment the ledger took bought exactly one answer, once, and is in a usage log once;
    while Redis is down requests get a clear 503 and nothing is signed; afterwards every
    proxy serves again by itself."""
    x402_upstream.set_handler(CHAT_PATH, h.delayed(0.3))
    proxies = await team(3, redis=own_redis.url, maxCostPerRun=5, maxCostPerRunMode="strict")
    replies: dict[str, Reply] = {}

    async def ask(question: str, proxy: TeamProxy) -> Reply:
        replies[question] = await proxy.chat(question, model=PAID, session="under-load")
        return replies[question]

    in_flight = [asyncio.ensure_future(ask(f"before {i}", proxies[i % 3])) for i in range(12)]
    await eventually(lambda: _now(x402_upstream.count(path=CHAT_PATH, paid=True) >= 3),
                     seconds=20, every=0.02, what="payments in flight")
    own_redis.kill()
    await asyncio.gather(*in_flight)
    settled_before_down = len(x402_upstream.ledger.settlements)
    down = await asyncio.gather(*(ask(f"while down {i}", proxies[i % 3]) for i in range(9)))
    assert all(reply.status == 503 and reply.is_openai_error() for reply in down), \
        [(reply.status, reply.body) for reply in down]
    assert len(x402_upstream.ledger.settlements) == settled_before_down  # nothing signed
    own_redis.start()
    for n, proxy in enumerate(proxies):
        attempts = iter(range(1000))

        async def served(proxy: TeamProxy = proxy, n: int = n) -> bool:
            reply = await ask(f"after {n} #{next(attempts)}", proxy)
            return reply.status == 200

        await eventually(served, seconds=30, every=0.5, what=f"proxy {n} serves again")

    assert all(reply.status in (200, 503) and (reply.status == 200 or reply.is_openai_error())
               for reply in replies.values()), \
        {q: (r.status, r.body) for q, r in replies.items() if r.status not in (200, 503)}
    paid_for = settled_questions(x402_upstream)
    assert paid_for and max(paid_for.values()) == 1  # nothing doubled
    answered = {question for question, reply in replies.items() if reply.status == 200}
    assert set(paid_for) == answered  # every payment bought its answer; no answer unpaid
    for proxy in proxies:
        assert await proxy.stop() == 0
    nonces = Counter(line.get("nonce") for line in usage_lines(*proxies) if line.get("nonce"))
    assert {s.nonce for s in x402_upstream.ledger.settlements} == set(nonces)  # none lost
    assert set(nonces.values()) == {1}  # each recorded once
    assert x402_upstream.ledger.total_paid(payer) == 1000 * len(paid_for)


async def test_the_leader_of_a_dedup_group_killed_mid_request_pays_once(team, x402_upstream):
    """The proxy that took the request's lock pays, then dies before the answer comes
    back. The two proxies waiting for the same request must not pay for it again: the
    payment went through (the ledger has it)."""
    question = "the leader dies holding this request"
    stall = h.settle_then_stall(120)

    async def handler(call):
        if last_user_text(call.json()) == question:
            return await stall(call)
        return await h.chat_handler(call)

    x402_upstream.set_handler(CHAT_PATH, handler)
    leader, b, c = await team(3)
    first = asyncio.ensure_future(leader.chat(question, model=PAID))
    await eventually(lambda: _now(len(x402_upstream.ledger.settlements) == 1), seconds=20,
                     every=0.02, what="the leader's payment settles")
    waiters = [asyncio.ensure_future(proxy.chat(question, model=PAID, timeout=120))
               for proxy in (b, c)]
    await asyncio.sleep(1.0)  # both are now waiting on the leader's lock
    await leader.kill()
    await asyncio.gather(first, return_exceptions=True)
    replies = await asyncio.wait_for(asyncio.gather(*waiters), 150)
    assert len(x402_upstream.ledger.settlements) == 1
    assert settled_questions(x402_upstream) == Counter({question: 1})
    assert all(reply.status >= 500 and reply.is_openai_error() for reply in replies), \
        [(reply.status, reply.body) for reply in replies]
    after = await b.chat("the team goes on", model=PAID)
    assert after.status == 200 and len(x402_upstream.ledger.settlements) == 2


async def keys_cli(tmp_path, redis_url: str, *args: str) -> str:
    """Run ``clawrouter keys ARGS`` as a real process on the team's Redis; its output."""
    config = tmp_path / "keys-cli.yaml"
    config.write_text(json.dumps({"plugins": [{"id": "blockrun",
                                               "config": team_config(redis_url)}]}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "clawrouter_plugin", "keys", *args, "--config", str(config),
        "--data-dir", str(tmp_path / "keys-cli-data"), cwd=str(REPO),
        env={**os.environ, "HOME": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_a_revoked_key_is_refused_everywhere_within_a_second(team, redis_url, tmp_path):
    created = [await keys_cli(tmp_path, redis_url, "create", "--name", name)
               for name in ("agent-one", "agent-two")]
    keys = []
    for text in created:
        key_id = re.search(r"created API key (\S+) ", text)
        assert key_id, text
        keys.append((key_id.group(1), text.splitlines()[1].strip()))
    (revoked_id, revoked), (_, kept) = keys
    proxies = await team(3, server={"requireKeys": True})

    def bearer(secret: str) -> dict[str, str]:
        return {"authorization": f"Bearer {secret}"}

    for n, proxy in enumerate(proxies):
        assert (await proxy.chat(f"hello {n}", headers=bearer(revoked))).status == 200
        refused = await proxy.chat(f"no key {n}")
        assert refused.status == 401 and refused.is_openai_error()
    await keys_cli(tmp_path, redis_url, "revoke", revoked_id)
    revoked_at = time.monotonic()
    for n, proxy in enumerate(proxies):
        async def refused(proxy: TeamProxy = proxy, n: int = n) -> bool:
            reply = await proxy.chat(f"after revoke {n}", headers=bearer(revoked))
            assert reply.status in (200, 401), reply.body
            return reply.status == 401 and reply.is_openai_error()

        await eventually(refused, seconds=3, every=0.05, what=f"proxy {n} refuses the key")
    assert time.monotonic() - revoked_at < 1.0 + 0.5 * len(proxies)  # requests take time too
    for n, proxy in enumerate(proxies):
        assert (await proxy.chat(f"still fine {n}", headers=bearer(kept))).status == 200


async def _now(value: bool) -> bool:
    return value
