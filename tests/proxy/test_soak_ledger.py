"""Soak: concurrent clients, strict session budgets and rotating upstream faults (timeouts
after payment, cut streams, settlements reported failed, 5xx, refused payments), bounded in
count and time. At the end the usage log reconciles with the ledger payment by payment, no
request was paid twice, and no session spent more than its cap.

Budget rule: every payment is claimed from its session's budget before it is signed, and a
payment that may have settled stays counted, so a session's ledger total is at most its cap
(no in-flight allowance).

Reconciliation rule: each settlement in the ledger has exactly one usage record that counts
it. A record may count a payment the ledger does not have only when it is ``unconfirmed``
and the upstream really never settled it (the proxy gave up waiting first, which a heavily
loaded machine can cause); the test prints how many, normally none.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections import Counter, defaultdict

import aiohttp
import pytest

from tests.support import handlers as h
from tests.support.x402_upstream import CHAT_PATH

from .test_disconnects import usage_records
from .test_limits import post

pytestmark = pytest.mark.slow

FREE = "nvidia/gpt-oss-120b"
CAP = 0.005  # USD per session
FORWARD = "/v1/embeddings"
REQUESTS = 5000  # bounded: at most this many requests ...
SECONDS = 50  # ... and no new request after this long
TIMEOUT = 1.5  # seconds an attempt may wait for the upstream; the stalls take longer
CLIENTS = 12
SPENT = ("settled", "unconfirmed")


def signed_nonce(headers: dict) -> str | None:
    """The authorization nonce of the payment a request carried."""
    value = headers.get("PAYMENT-SIGNATURE") or headers.get("Payment-Signature")
    if value is None:
        return None
    return json.loads(base64.b64decode(value))["payload"]["authorization"]["nonce"]


def rotating(faults: list, ok: h.Handler, seed: int) -> h.Handler:
    """A handler answering each paid call with a fault drawn from ``faults`` (or ``ok``)."""
    rng = random.Random(seed)

    async def handler(call) -> aiohttp.web.StreamResponse:
        body = call.json() if isinstance(call.json(), dict) else {}
        if body.get("model") == FREE:
            return await h.chat_handler(call)
        return await rng.choice(faults)(call)
    return handler


async def test_soak_reconciles_with_the_ledger(start, x402_upstream, payer):
    proxy = await start(maxCostPerRun=CAP, maxCostPerRunMode="strict",
                        upstream={"attemptTimeoutSeconds": TIMEOUT})
    refused = h.raw(402, body={"error": "Payment verification failed", "details": "refused"})
    x402_upstream.set_handler(CHAT_PATH, rotating([
        h.chat_handler, h.chat_handler, h.chat_handler,
        h.settle_then_stall(TIMEOUT + 1),  # the attempt times out after its payment settled
        h.drop_mid_stream(2),  # settled, then the connection is cut
        h.settle_then_report_failed(),  # settled, reported failed (pending)
        h.settle_then_report_failed(status_code=200),
        h.status(503),  # not settled: the payment is refused, the next model is tried
        refused,  # the upstream turns the payment down
    ], h.chat_handler, seed=14))
    x402_upstream.set_price(FORWARD, "0.0004")
    x402_upstream.set_handler(FORWARD, rotating([
        h.generic_handler, h.generic_handler, h.settle_then_report_failed(),
        h.status(503), refused], h.generic_handler, seed=41))

    rng = random.Random(2026)
    plan = []
    for index in range(REQUESTS):
        session = f"s{index % 20}-{index // 240}"  # 20 sessions at a time, 10 requests each
        kind = rng.choices(["chat", "stream", "forward"], [6, 3, 1])[0]
        plan.append((index, session, kind))
    queue: asyncio.Queue = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)
    statuses: Counter = Counter()
    deadline = time.monotonic() + SECONDS

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty() and time.monotonic() < deadline:
            index, sid, kind = queue.get_nowait()
            headers = {"x-session-id": sid}
            if kind == "forward":
                url, body = proxy.base_url + FORWARD, {"input": f"text {index}"}
            else:
                url = proxy.base_url + CHAT_PATH
                body = {"model": "auto", "stream": kind == "stream", "max_tokens": 20,
                        "messages": [{"role": "user", "content": f"request {index}"}]}
            try:
                async with session.post(url, json=body, headers=headers) as resp:
                    await resp.read()
                    statuses[resp.status] += 1
            except aiohttp.ClientError:
                statuses["broken"] += 1

    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.wait_for(asyncio.gather(*(client(session) for _ in range(CLIENTS))), 110)
    elapsed = time.monotonic() - started
    await asyncio.sleep(TIMEOUT + 1.1)  # stalled upstream handlers finish

    records = usage_records(proxy)
    settlements = x402_upstream.ledger.settlements
    spent = [r for r in records if r.get("payment") in SPENT]
    by_nonce = {r["nonce"]: r for r in spent}
    ledger_total = sum(s.amount for s in settlements)
    records_total = sum(round(r["paid"] * 1e6) for r in spent)
    per_session: defaultdict[str, int] = defaultdict(int)
    for settlement in settlements:
        record = by_nonce.get(settlement.nonce)
        per_session[record["session"] if record else "(no record)"] += settlement.amount
    ledger_nonces = {s.nonce for s in settlements}
    extra = [r for r in spent if r["nonce"] not in ledger_nonces]
    unsettled = {signed_nonce(r.headers) for r in x402_upstream.requests
                 if r.paid and r.settlement is None}
    per_request = Counter(
        json.dumps(r.json()) for r in x402_upstream.requests if r.settlement is not None)
    code, _, raw = await post(proxy, "/stats", method="GET")
    assert code == 200
    stats = json.loads(raw)
    payment_counts = Counter(r.get("payment") for r in records)
    print(f"\nsoak: {sum(statuses.values())} requests in {elapsed:.1f} s "
          f"({dict(statuses)}); ledger: {len(settlements)} settlements, "
          f"${ledger_total / 1e6:.6f}; usage log: {len(spent)} spent records "
          f"(settled {payment_counts['settled']}, unconfirmed {payment_counts['unconfirmed']}),"
          f" ${records_total / 1e6:.6f}; refused {payment_counts['refused']}; "
          f"/stats totalCost ${stats['totalCost']:.6f} (unconfirmed "
          f"${stats.get('unconfirmedCost', 0):.6f}); sessions {len(per_session)}, "
          f"max session spend ${max(per_session.values()) / 1e6:.6f} (cap ${CAP}); "
          f"unconfirmed records the upstream never settled: {len(extra)}")

    assert sum(statuses.values()) >= REQUESTS // 3  # enough happened to mean something
    assert payment_counts["unconfirmed"] and payment_counts["refused"]
    assert len(spent) == len(by_nonce)  # no payment in two records
    assert ledger_nonces <= set(by_nonce)  # every settlement is recorded
    assert all(r["payment"] == "unconfirmed" and r["nonce"] in unsettled for r in extra)
    assert len(spent) - len(extra) == len(settlements)
    extra_total = sum(round(r["paid"] * 1e6) for r in extra)
    assert records_total - extra_total == ledger_total
    assert round(stats["totalCost"] * 1e6) == records_total
    assert max(per_request.values()) == 1  # no request was paid twice
    assert max(per_session.values()) <= round(CAP * 1e6)
