"""Team mode routes while the opening script is on its way (with the pin tier and the
exclusions the process last saw), and routes again when the reply says otherwise: a pin or an
``/exclude`` changed through another proxy is honoured by the very next request, and a
conversation nobody else touches is routed once per request. Two proxies, one real Redis."""

from __future__ import annotations

import pytest

from commands import exclude
from tests.host.services import ctx
from tests.support.x402_upstream import CHAT_PATH

from .test_team_state import HARD, ask


@pytest.fixture
def pair(start, tmp_path):
    """``await pair(url)``: two proxies with their own data directories on one Redis."""

    async def _pair(url: str):
        state = {"backend": "redis", "redisUrl": url, "timeoutSeconds": 1.0}
        return [await start(data_dir=tmp_path / name, state=state) for name in ("a", "b")]

    return _pair


async def test_a_pin_raised_through_another_proxy_holds_for_the_next_request(pair, redis_url):
    a, b = await pair(redis_url)
    first, _ = await ask(b, "thanks!", session="conv", extra_body={"cache": False})
    assert first["x-clawrouter-tier"] == "SIMPLE"  # b now expects a SIMPLE pin for conv
    raised, _ = await ask(a, HARD, session="conv")
    assert raised["x-clawrouter-tier"] not in ("SIMPLE", "DIRECT")
    before = b.services.pipeline.rerouted
    pinned, _ = await ask(b, "thanks again!", session="conv", extra_body={"cache": False})
    assert pinned["x-clawrouter-tier"] == raised["x-clawrouter-tier"]
    assert pinned["x-clawrouter-model"] == raised["x-clawrouter-model"]
    assert b.services.pipeline.rerouted == before + 1  # routed early with SIMPLE, then again


async def test_an_exclusion_made_through_another_proxy_holds_for_the_next_request(
        pair, redis_url, x402_upstream):
    a, b = await pair(redis_url)
    question = "What is the capital of France?"  # one session each: pins are shared too
    before, _ = await ask(b, question, session="x0", extra_body={"cache": False})
    routed = before["x-clawrouter-model"]
    reply = await exclude.command(a.services).handler(ctx(f"add {routed}"))
    assert not reply.is_error, reply.text
    x402_upstream.requests.clear()
    rerouted = b.services.pipeline.rerouted
    after, _ = await ask(b, question, session="x1", extra_body={"cache": False})
    assert after["x-clawrouter-model"] != routed
    assert routed not in [r.json()["model"] for r in x402_upstream.requests if r.json()]
    assert x402_upstream.count(path=CHAT_PATH) >= 1
    assert b.services.pipeline.rerouted == rerouted + 1  # b's early guess still had it


async def test_a_conversation_nobody_else_touches_is_routed_once_per_request(pair, redis_url):
    _, b = await pair(redis_url)
    tiers = []
    for content in ("thanks!", HARD, "and the second point, briefly?"):
        headers, _ = await ask(b, content, session="calm", extra_body={"cache": False})
        tiers.append(headers["x-clawrouter-tier"])
    assert tiers[0] == "SIMPLE" and tiers[1] not in ("SIMPLE", "DIRECT")
    assert tiers[2] == tiers[1]  # pinned to the raised tier
    assert b.services.pipeline.rerouted == 0  # each guess (pin tier, exclusions) was right
