"""ResponseCache: expiry, LRU eviction, limits, counters, persistence."""

import time
from pathlib import Path

import pytest

from clawrouter_plugin.state.cache import CachedResponse, ResponseCache


def reply(text: str = "hello", status: int = 200, model: str | None = "openai/gpt-4o-mini"):
    return CachedResponse(
        status=status,
        headers={"content-type": "application/json"},
        body=f'{{"text":"{text}"}}'.encode(),
        model=model,
        stored_at=1700000000.5,
    )


@pytest.fixture
def cache(tmp_path):
    with ResponseCache(tmp_path / "cache", max_size=3) as c:
        yield c


def test_round_trip_and_counters(cache):
    assert cache.get("k") is None
    assert cache.put("k", reply())
    assert cache.get("k") == reply()
    assert cache.get("k") == reply()
    assert cache.stats() == {
        "size": 1,
        "maxSize": 3,
        "hits": 2,
        "misses": 1,
        "evictions": 0,
        "hitRate": "66.7%",
    }


def test_hit_rate_is_zero_percent_before_any_lookup(cache):
    assert cache.stats()["hitRate"] == "0%"


def test_overwrite_replaces_value_without_eviction(cache):
    cache.put("k", reply("one"))
    cache.put("k", reply("two"))
    assert cache.get("k").body == b'{"text":"two"}'
    assert cache.stats()["size"] == 1 and cache.stats()["evictions"] == 0


def test_entries_expire_after_ttl(tmp_path):
    with ResponseCache(tmp_path, default_ttl=0.15) as cache:
        cache.put("short", reply())
        cache.put("long", reply(), ttl=30)
        assert cache.get("short") is not None
        time.sleep(0.25)
        assert cache.get("short") is None  # expired counts as a miss
        assert cache.get("long") is not None
        stats = cache.stats()
        assert (stats["hits"], stats["misses"], stats["size"]) == (2, 1, 1)


def test_least_recently_used_is_evicted_first(cache):
    for key in ("a", "b", "c"):
        cache.put(key, reply(key))
    assert cache.get("a") is not None  # a is now the most recently used; b is the oldest
    cache.put("d", reply("d"))
    assert cache.get("b") is None
    assert all(cache.get(k) is not None for k in ("a", "c", "d"))
    cache.put("e", reply("e"))  # after the lookups above, a is the least recently used
    assert cache.get("a") is None
    stats = cache.stats()
    assert stats["size"] == 3 and stats["evictions"] == 2


def test_expired_entries_make_room_before_live_ones(tmp_path):
    with ResponseCache(tmp_path, max_size=2) as cache:
        cache.put("old-but-live", reply())
        cache.put("soon-expired", reply(), ttl=0.05)
        time.sleep(0.1)
        cache.put("new", reply())
        assert cache.get("old-but-live") is not None
        assert cache.get("new") is not None
        assert cache.stats()["evictions"] == 0


def test_max_size_is_honoured_under_many_puts(tmp_path):
    with ResponseCache(tmp_path, max_size=5) as cache:
        for i in range(50):
            cache.put(f"k{i}", reply(str(i)))
        assert cache.stats()["size"] == 5
        assert cache.stats()["evictions"] == 45
        assert [cache.get(f"k{i}") is not None for i in range(45, 50)] == [True] * 5


def test_item_size_limit(tmp_path):
    with ResponseCache(tmp_path, max_item_size=100) as cache:
        big = CachedResponse(200, {}, b"x" * 101, None, 0.0)
        exact = CachedResponse(200, {}, b"x" * 100, None, 0.0)
        assert not cache.put("big", big)
        assert cache.put("exact", exact)
        assert cache.get("big") is None and cache.get("exact") == exact


@pytest.mark.parametrize("status", [400, 402, 429, 500, 502])
def test_errors_are_never_stored(cache, status):
    assert not cache.put("k", reply(status=status))
    assert cache.get("k") is None


def test_large_bodies_round_trip(tmp_path):
    body = bytes(range(256)) * 1024  # 256 KiB: stored as a file by diskcache
    with ResponseCache(tmp_path) as cache:
        assert cache.put("big", CachedResponse(200, {"a": "b"}, body, None, 1.0))
    with ResponseCache(tmp_path) as cache:
        assert cache.get("big").body == body


def test_entries_survive_a_new_instance(tmp_path):
    with ResponseCache(tmp_path, max_size=3) as first:
        for key in ("a", "b", "c"):
            first.put(key, reply(key))
        first.put("gone", reply(), ttl=0.05)  # evicts a (the least recently used)
    time.sleep(0.1)
    with ResponseCache(tmp_path, max_size=3) as second:
        assert second.stats()["size"] == 2
        # After a restart entries keep the order they were stored in: b before c.
        second.put("d", reply("d"))
        second.put("e", reply("e"))
        assert second.get("b") is None
        assert second.get("a") is None and second.get("gone") is None
        assert second.get("c") == reply("c")
        assert second.get("e") == reply("e")


def test_a_smaller_max_size_after_restart_drops_the_oldest(tmp_path):
    with ResponseCache(tmp_path, max_size=5) as first:
        for i in range(5):
            first.put(f"k{i}", reply())
    with ResponseCache(tmp_path, max_size=2) as second:
        assert second.stats()["size"] == 2
        assert second.get("k4") is not None and second.get("k0") is None


def test_disabled_cache_stores_nothing(tmp_path):
    cache = ResponseCache(tmp_path / "off", enabled=False)
    assert not cache.put("k", reply())
    assert cache.get("k") is None
    assert cache.stats() == {
        "size": 0, "maxSize": 200, "hits": 0, "misses": 0, "evictions": 0, "hitRate": "0%"
    }
    assert not (tmp_path / "off").exists()
    cache.close()


def test_private_temp_dir_is_removed_on_close():
    cache = ResponseCache()
    cache.put("k", reply())
    directory = Path(cache._tempdir)
    assert directory.is_dir()
    cache.close()
    cache.close()
    assert not directory.exists()
    assert cache.get("k") is None and not cache.put("k", reply())


def test_clear_removes_entries_and_counters(tmp_path):
    with ResponseCache(tmp_path) as cache:
        cache.put("k", reply())
        cache.get("k")
        cache.clear()
        assert cache.stats()["size"] == 0 and cache.stats()["hits"] == 0
    with ResponseCache(tmp_path) as again:
        assert again.get("k") is None


def test_invalid_limits_are_rejected(tmp_path):
    with pytest.raises(ValueError):
        ResponseCache(tmp_path, max_size=0)
    with pytest.raises(ValueError):
        ResponseCache(tmp_path, default_ttl=0)


def test_unusable_directory_is_a_clear_error(tmp_path):
    from clawrouter_plugin.errors import ConfigError

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="cannot open the response cache"):
        ResponseCache(blocker)


def test_zero_ttl_is_not_stored(cache):
    assert not cache.put("k", reply(), ttl=0)


def test_disk_failures_degrade_to_misses(tmp_path, monkeypatch, caplog):
    import sqlite3

    with ResponseCache(tmp_path) as cache:
        cache.put("k", reply())
    with ResponseCache(tmp_path) as cache:  # "k" is on disk only, not in memory

        def broken(*args, **kwargs):
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(cache._disk, "get", broken)
        monkeypatch.setattr(cache._disk, "set", broken)
        assert cache.get("k") is None
        cache.put("k2", reply())  # accepted; the background write fails and forgets it
        cache.flush()
        assert "disk I/O error" in caplog.text
        assert cache.get("k2") is None
        assert cache.stats()["misses"] == 2


def _on_disk(directory: Path) -> set[str]:
    """Keys in the cache directory, read with diskcache itself (not through ResponseCache)."""
    import diskcache

    with diskcache.Cache(str(directory)) as disk:
        return set(disk.iterkeys())


def test_entries_evicted_before_their_save_never_reach_the_disk(tmp_path, monkeypatch):
    import diskcache

    writes = []
    real_set = diskcache.Cache.set
    monkeypatch.setattr(diskcache.Cache, "set",
                        lambda self, key, *a, **kw: writes.append(key) or real_set(self, key, *a, **kw))
    with ResponseCache(tmp_path, max_size=3) as cache:
        for i in range(50):
            cache.put(f"k{i}", reply(str(i)))
        cache.flush()
        assert sorted(writes) == ["k47", "k48", "k49"]  # one save, only the survivors
        assert _on_disk(tmp_path) == {"k47", "k48", "k49"}


def test_saved_entries_evicted_later_are_deleted_from_disk(tmp_path):
    with ResponseCache(tmp_path, max_size=2) as cache:
        cache.put("a", reply("a"))
        cache.put("b", reply("b"))
        cache.flush()
        cache.put("c", reply("c"))  # evicts "a", which is on disk
        cache.flush()
        assert _on_disk(tmp_path) == {"b", "c"}
    with ResponseCache(tmp_path, max_size=2) as cache:
        assert cache.get("a") is None and cache.get("c") == reply("c")


def test_stores_reach_the_disk_on_their_own(tmp_path, monkeypatch):
    from clawrouter_plugin.state import cache as cache_module

    monkeypatch.setattr(cache_module, "SAVE_DELAY_SECONDS", 0.05)
    with ResponseCache(tmp_path) as cache:
        cache.put("k", reply())
        deadline = time.monotonic() + 5
        while "k" not in _on_disk(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "k" in _on_disk(tmp_path)
        assert cache.get("k") == reply()  # now read back from disk


def test_many_unsaved_bytes_start_a_save_early(tmp_path, monkeypatch):
    from clawrouter_plugin.state import cache as cache_module

    monkeypatch.setattr(cache_module, "SAVE_DELAY_SECONDS", 60)
    monkeypatch.setattr(cache_module, "SAVE_BYTES", 10)
    with ResponseCache(tmp_path) as cache:
        started = time.monotonic()
        cache.put("k", reply("more than ten bytes"))
        while "k" not in _on_disk(tmp_path) and time.monotonic() - started < 5:
            time.sleep(0.02)
        assert "k" in _on_disk(tmp_path)
        assert time.monotonic() - started < 5


def test_close_saves_what_is_unsaved(tmp_path, monkeypatch):
    from clawrouter_plugin.state import cache as cache_module

    monkeypatch.setattr(cache_module, "SAVE_DELAY_SECONDS", 60)
    started = time.monotonic()
    with ResponseCache(tmp_path) as cache:
        cache.put("k", reply())
    assert time.monotonic() - started < 5  # close does not wait out the delay
    assert _on_disk(tmp_path) == {"k"}


def test_expired_entries_are_purged_from_disk_at_the_next_start(tmp_path):
    with ResponseCache(tmp_path) as cache:
        cache.put("k", reply(), ttl=0.05)
        cache.put("live", reply("live"))
        cache.flush()
        assert _on_disk(tmp_path) == {"k", "live"}
        time.sleep(0.1)
        assert cache.get("k") is None
    with ResponseCache(tmp_path) as cache:
        assert cache.get("k") is None and cache.get("live") == reply("live")
    assert _on_disk(tmp_path) == {"live"}


def test_saved_entries_used_lately_are_answered_from_memory(tmp_path, monkeypatch):
    from clawrouter_plugin.state import cache as cache_module

    with ResponseCache(tmp_path) as cache:
        cache.put("k", reply("k"))
        cache.flush()  # saved, and kept in memory
        reads = []
        real_get = cache._disk.get
        monkeypatch.setattr(cache._disk, "get", lambda *a, **kw: reads.append(a) or real_get(*a, **kw))
        assert cache.get("k") == reply("k") and reads == []
    with ResponseCache(tmp_path) as cache:  # a new process reads it from disk once
        reads = []
        real_get = cache._disk.get
        monkeypatch.setattr(cache._disk, "get", lambda *a, **kw: reads.append(a) or real_get(*a, **kw))
        assert cache.get("k") == reply("k") and cache.get("k") == reply("k")
        assert len(reads) == 1
    monkeypatch.setattr(cache_module, "HOT_BYTES", 20)  # room for one 12-byte reply only
    with ResponseCache(tmp_path) as cache:
        cache.put("a", reply("a"))
        cache.put("b", reply("b"))
        cache.flush()
        assert list(cache._hot) == ["b"] and cache._hot_bytes == len(reply("b").body)
        cache.put("b", reply("new"))  # an overwrite never answers with the old copy
        assert cache.get("b") == reply("new")
