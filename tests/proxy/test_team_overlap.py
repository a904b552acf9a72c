"""Team mode routes while the opening script is on its way (with the pin tier and the
exclusions the process last saw), and routes again when the reply says otherwise: a pin changed through another proxy is
honoured by the very next request (an ``/exclude``: test_team_state.py), and a conversation
nobody else touches is routed once per request. Two proxies, one real Redis."""

from __future__ import annotations

import pytest

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


async def test_a_conversation_nobody_else_touches_is_routed_once_per_request(pair, redis_url):
    _, b = await pair(redis_url)
    tiers = []
    for content in ("thanks!", HARD, "and the second point, briefly?"):
        headers, _ = await ask(b, content, session="calm", extra_body={"cache": False})
        tiers.append(headers["x-clawrouter-tier"])
    assert tiers[0] == "SIMPLE" and tiers[1] not in ("SIMPLE", "DIRECT")
    assert tiers[2] == tiers[1]  # pinned to the raised tier
    assert b.services.pipeline.rerouted == 0  # each guess (pin tier, exclusions) was right
