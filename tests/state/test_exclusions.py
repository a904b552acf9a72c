"""ExclusionStore: alias resolution, hints, persistence, corrupt files."""

import json
import os

import pytest

from clawrouter_plugin.catalog import load_catalog
from clawrouter_plugin.errors import BadRequest, ConfigError
from clawrouter_plugin.state.exclusions import ExclusionStore

CATALOG = load_catalog()


@pytest.fixture
def path(tmp_path):
    return tmp_path / "data" / "exclude-models.json"


async def test_empty_by_default(path):
    assert await ExclusionStore(path, CATALOG).all() == frozenset()
    assert not path.exists()


async def test_add_resolves_aliases_and_persists(path):
    store = ExclusionStore(path, CATALOG)
    assert await store.add("sonnet") == "anthropic/claude-sonnet-4.6"
    assert await store.add("blockrun/DeepSeek") == "deepseek/deepseek-chat"
    assert await store.add("openai/gpt-4o") == "openai/gpt-4o"
    assert await store.add("gpt") == "openai/gpt-4o"  # already excluded: unchanged
    expected = ["anthropic/claude-sonnet-4.6", "deepseek/deepseek-chat", "openai/gpt-4o"]
    assert path.read_text() == json.dumps(expected, indent=2) + "\n"
    assert await ExclusionStore(path, CATALOG).all() == frozenset(expected)


async def test_free_means_the_free_model(path):
    store = ExclusionStore(path, CATALOG)
    assert await store.add("free") == CATALOG.free_model
    assert await store.remove("free") == CATALOG.free_model


async def test_unknown_model_gets_a_hint(path):
    store = ExclusionStore(path, CATALOG)
    with pytest.raises(BadRequest, match=r'Unknown model "grok-4"\. Did you mean: xai/grok-4'):
        await store.add("grok-4")
    with pytest.raises(BadRequest, match="Did you mean: .*sonnet"):
        await store.add("sonet")
    with pytest.raises(BadRequest) as err:
        await store.add("zzzzqqqq")
    assert err.value.message == 'Unknown model "zzzzqqqq".'
    assert not path.exists()


async def test_profiles_and_empty_names_are_rejected(path):
    store = ExclusionStore(path, CATALOG)
    with pytest.raises(BadRequest, match="routing profile"):
        await store.add("auto")
    with pytest.raises(BadRequest, match="model name is required"):
        await store.add("  ")


async def test_remove(path):
    store = ExclusionStore(path, CATALOG)
    await store.add("haiku")
    with pytest.raises(BadRequest, match='Model "opus" was not in the exclude list.'):
        await store.remove("opus")
    assert await store.remove("anthropic/claude-haiku-4-5") == "anthropic/claude-haiku-4.5"
    assert await store.all() == frozenset()
    assert json.loads(path.read_text()) == []


async def test_remove_handles_unknown_entries_written_by_others(path):
    path.parent.mkdir()
    path.write_text('["grok-4", "opus"]')
    store = ExclusionStore(path, CATALOG)
    assert await store.all() == {"anthropic/claude-opus-4.6"}  # unknown strings match nothing
    assert await store.remove("grok-4") == "grok-4"
    assert await store.remove("anthropic/claude-opus-4.6") == "anthropic/claude-opus-4.6"
    assert json.loads(path.read_text()) == []


async def test_config_exclusions_are_included_but_not_removable(path):
    store = ExclusionStore(path, CATALOG, initial=["kimi"])
    assert await store.all() == {"moonshot/kimi-k2.5"}
    assert await store.add("kimi") == "moonshot/kimi-k2.5"
    assert not path.exists()  # nothing new to store
    with pytest.raises(BadRequest, match="excludeModels"):
        await store.remove("kimi")
    await store.add("gemini")
    await store.clear()
    assert await store.all() == {"moonshot/kimi-k2.5"}


def test_unknown_config_exclusion_is_a_config_error(path):
    with pytest.raises(ConfigError, match="Unknown model"):
        ExclusionStore(path, CATALOG, initial=["not-a-model"])


async def test_changes_by_another_process_are_seen_within_the_recheck_interval(path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("clawrouter_plugin.state.exclusions.time.monotonic", lambda: clock[0])
    store = ExclusionStore(path, CATALOG)
    assert await store.all() == frozenset()
    await ExclusionStore(path, CATALOG).add("flash")
    assert await store.all() == frozenset()  # not looked at again yet: no stat per request
    clock[0] += 1.5
    assert await store.all() == {"google/gemini-2.5-flash"}
    path.unlink()
    clock[0] += 1.5
    assert await store.all() == frozenset()


async def test_all_is_cached_until_the_file_changes(path, monkeypatch):
    store = ExclusionStore(path, CATALOG)
    await store.add("flash")
    reads = []
    original = store._read
    monkeypatch.setattr(store, "_read", lambda: reads.append(1) or original())
    for _ in range(100):
        assert await store.all() == {"google/gemini-2.5-flash"}
    assert reads == []


@pytest.mark.parametrize("content", ["{not json", '{"a": 1}', '["ok", 3]', "\xff\xfe"])
async def test_corrupt_file_is_set_aside_with_a_warning(path, content, caplog):
    """A damaged list is not an outage: it is moved aside (kept for the user to look at),
    routing goes on without it, and the store says so until the next good write."""
    path.parent.mkdir()
    path.write_bytes(content.encode("latin-1"))
    store = ExclusionStore(path, CATALOG, initial=["kimi"])
    assert await store.all() == {"moonshot/kimi-k2.5"}  # config exclusions still apply
    assert not path.exists()
    aside = list(path.parent.glob("exclude-models.json.unreadable-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == content.encode("latin-1")
    assert len(store.warnings) == 1 and str(aside[0]) in store.warnings[0]
    assert "not a valid exclusion list" in caplog.text
    assert await store.add("flash") == "google/gemini-2.5-flash"  # a fresh list starts
    assert await store.all() == {"moonshot/kimi-k2.5", "google/gemini-2.5-flash"}
    assert len(store.warnings) == 1  # the notice stays: the old list is still set aside


async def test_a_corrupt_file_written_later_is_set_aside_too(path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("clawrouter_plugin.state.exclusions.time.monotonic", lambda: clock[0])
    store = ExclusionStore(path, CATALOG)
    await store.add("flash")
    path.write_text("[oops")
    clock[0] += 1.5
    assert await store.all() == frozenset()
    assert store.warnings and list(path.parent.glob("*.unreadable-*"))


async def test_writes_are_atomic_and_leave_no_temp_files(path):
    store = ExclusionStore(path, CATALOG)
    for name in ("flash", "gemini", "kimi", "opus"):
        await store.add(name)
    assert os.listdir(path.parent) == ["exclude-models.json"]


async def test_unwritable_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = ExclusionStore(blocker / "exclude-models.json", CATALOG)
    with pytest.raises(ConfigError, match="cannot"):
        await store.add("flash")
