"""/exclude's list on both backends, then the Redis backend's own promises: a change through
one process is honoured by every other on its next request, and an unreachable server keeps
the last list (changes are refused, not lost)."""

from __future__ import annotations

import pytest

from clawrouter_plugin.catalog import load_catalog
from clawrouter_plugin.errors import BadRequest, ConfigError, StateUnavailable
from clawrouter_plugin.state.exclusions import ExclusionStore
from clawrouter_plugin.state.redis_exclusions import RedisExclusions

from .conftest import link_to

CATALOG = load_catalog()


@pytest.fixture
def make(backend, tmp_path):
    """``make(initial=...)``: an exclusion store of the backend under test."""
    name, link = backend
    if name == "local":
        return lambda initial=(): ExclusionStore(tmp_path / "exclude-models.json", CATALOG,
                                                 initial)
    return lambda initial=(): RedisExclusions(link, CATALOG, initial)


async def test_add_resolves_names_and_is_kept(make):
    store = make()
    assert await store.all() == frozenset()
    assert await store.add("sonnet") == "anthropic/claude-sonnet-4.6"
    assert await store.add("blockrun/DeepSeek") == "deepseek/deepseek-chat"
    assert await store.add("free") == CATALOG.free_model
    expected = {"anthropic/claude-sonnet-4.6", "deepseek/deepseek-chat", CATALOG.free_model}
    assert await store.all() == expected
    assert await make().all() == expected  # a fresh store over the same place


async def test_bad_names_are_refused_with_hints(make):
    store = make()
    with pytest.raises(BadRequest, match=r"Did you mean: .*sonnet"):
        await store.add("sonet")
    with pytest.raises(BadRequest, match="routing profile"):
        await store.add("auto")
    with pytest.raises(BadRequest, match="model name is required"):
        await store.add(" ")
    assert await store.all() == frozenset()


async def test_remove_and_clear(make):
    store = make(initial=["kimi"])
    await store.add("haiku")
    await store.add("flash")
    with pytest.raises(BadRequest, match='Model "opus" was not in the exclude list.'):
        await store.remove("opus")
    with pytest.raises(BadRequest, match="excludeModels"):
        await store.remove("kimi")
    assert await store.remove("anthropic/claude-haiku-4-5") == "anthropic/claude-haiku-4.5"
    assert await store.all() == {"moonshot/kimi-k2.5", "google/gemini-2.5-flash"}
    await store.clear()
    assert await store.all() == {"moonshot/kimi-k2.5"}  # the config's stay


async def test_unknown_config_exclusion_is_a_config_error(make):
    with pytest.raises(ConfigError, match="Unknown model"):
        make(initial=["not-a-model"])


# --- only the Redis backend ---------------------------------------------------------------


async def test_a_change_on_one_process_is_seen_by_another_on_its_next_read(redis_url):
    first, second = link_to(redis_url), link_to(redis_url)
    try:
        here, there = RedisExclusions(first, CATALOG), RedisExclusions(second, CATALOG, ["kimi"])
        assert await there.all() == {"moonshot/kimi-k2.5"}
        await here.add("grok")
        assert await there.all() == {"moonshot/kimi-k2.5", "xai/grok-3"}
        assert await there.remove("grok") == "xai/grok-3"
        assert await here.all() == frozenset()
    finally:
        await first.aclose()
        await second.aclose()


async def test_server_down_keeps_the_last_list_and_refuses_changes(own_redis, own_link):
    store = RedisExclusions(own_link, CATALOG)
    await store.add("grok")
    assert await store.all() == {"xai/grok-3"}
    own_redis.kill()
    assert await store.all() == {"xai/grok-3"}
    for change in (store.add("flash"), store.remove("grok"), store.clear()):
        with pytest.raises(StateUnavailable):
            await change
    assert await store.all() == {"xai/grok-3"}
