"""Fixtures for the state stores: a RedisLink on the shared test server, and one on a server
of the test's own that it may kill and restart (see tests/support/redis_server.py)."""

from __future__ import annotations

import pytest

from clawrouter_plugin.config import StateConfig
from clawrouter_plugin.state.redis_conn import open_link


def link_to(url: str, prefix: str = "test"):
    """A RedisLink like the proxy's, with a short timeout so down-tests stay quick."""
    return open_link(StateConfig(backend="redis", redis_url=url, key_prefix=prefix,
                                 timeout_seconds=1.0))


@pytest.fixture
async def link(redis_url):
    """A link to the shared test Redis (emptied for this test)."""
    made = link_to(redis_url)
    yield made
    await made.aclose()


@pytest.fixture
async def own_link(own_redis):
    """A link to a Redis of this test's own (``own_redis`` kills and restarts it)."""
    made = link_to(own_redis.url)
    yield made
    await made.aclose()


@pytest.fixture(params=["local", "redis"])
async def backend(request):
    """Run a store's behaviour tests against both backends: the backend's name and, for
    redis, a link to the shared test server (emptied for this test), else None."""
    if request.param == "local":
        yield "local", None
        return
    made = link_to(request.getfixturevalue("redis_url"))
    yield "redis", made
    await made.aclose()
