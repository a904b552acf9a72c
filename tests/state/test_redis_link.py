"""The Redis link: a real server, health that follows it, and no password in what it shows."""

from __future__ import annotations

import pytest

from clawrouter_plugin.config import StateConfig, validate_plugin_config
from clawrouter_plugin.errors import ConfigError
from clawrouter_plugin.state.redis_conn import open_link, redacted_url


async def test_link_talks_to_a_real_server(redis_url):
    link = open_link(StateConfig(backend="redis", redis_url=redis_url, key_prefix="t1"))
    try:
        assert await link.ping() is True
        await link.client.set(link.key("probe"), b"1")
        assert await link.client.get("t1:probe") == b"1"
        assert link.health() == {"backend": "redis", "url": redis_url, "connected": True}
    finally:
        await link.aclose()


async def test_health_follows_a_server_that_dies_and_comes_back(own_redis):
    link = open_link(StateConfig(backend="redis", redis_url=own_redis.url, timeout_seconds=0.5))
    try:
        assert await link.ping()
        own_redis.kill()
        assert await link.ping() is False
        assert link.health()["connected"] is False and "Error" in link.health()["error"]
        own_redis.start()
        assert await link.ping() is True  # reconnects by itself
    finally:
        await link.aclose()


async def test_password_never_shows():
    secret = "s3cr3t-hunter2"
    url = f"redis://:{secret}@127.0.0.1:1/0"
    link = open_link(StateConfig(backend="redis", redis_url=url, timeout_seconds=0.3))
    try:
        await link.ping()
        shown = f"{link.health()} {link!r}"
        assert secret not in shown and "***@127.0.0.1:1" in shown
    finally:
        await link.aclose()
    assert redacted_url(f"rediss://user:{secret}@h:6380/2") == "rediss://***@h:6380/2"


def test_config_refuses_other_schemes_without_echoing_the_url():
    with pytest.raises(ConfigError) as caught:
        validate_plugin_config({"state": {"backend": "redis", "redisUrl": "http://u:pw9@x/"}})
    assert "redis://" in str(caught.value) and "pw9" not in str(caught.value)
