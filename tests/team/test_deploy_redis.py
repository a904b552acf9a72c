"""docs/deploy.md's Redis set-up works as written: two proxies on a TLS-only Redis, through an
ACL user that may touch only ``clawrouter:*`` keys and no admin or dangerous command, pay once
for identical requests, share the cache, and never show the password."""

from __future__ import annotations

import asyncio

import pytest

from .conftest import PAID
from .tls_redis import PASSWORD, TlsRedis


@pytest.fixture
def tls_redis():
    server = TlsRedis()
    try:
        server.start()
        yield server
    finally:
        server.close()


async def test_the_deploy_guide_redis_serves_a_team(team, tls_redis, x402_upstream):
    assert tls_redis.command("FLUSHALL").startswith("-NOPERM")  # the ACL really applies
    assert tls_redis.command("GET", "other:key").startswith("-NOPERM")
    a, b = await team(2, redis=tls_redis.url)
    question = "served through TLS and an ACL user"
    replies = await asyncio.gather(a.chat(question, model=PAID), b.chat(question, model=PAID))
    assert [reply.status for reply in replies] == [200, 200], [r.body for r in replies]
    again = await b.chat(question, model=PAID)
    assert again.status == 200 and again.headers["x-clawrouter-cache"] == "HIT"
    assert len(x402_upstream.ledger.settlements) == 1
    health = await a.get("/health")
    assert health.status == 200 and PASSWORD not in str(health.body)
    assert health.body["redis"]["connected"] is True, health.body
    for proxy in (a, b):
        assert await proxy.stop() == 0
        assert PASSWORD not in proxy.stderr()
        assert "NOPERM" not in proxy.stderr()  # no command clawrouter needs was refused
