"""The API key stores (a file of the data directory, and a Redis hash on a real redis-server):
secrets stored only hashed, the checks every request goes through, revocation seen by another
process's store within a second, clear errors."""

from __future__ import annotations

import asyncio
import os
import stat
import time

import orjson
import pytest

from clawrouter_plugin.config import StateConfig
from clawrouter_plugin.errors import BadRequest, ClawRouterError, KeysUnavailable, Unauthorized
from clawrouter_plugin.keys.local import LocalKeyStore
from clawrouter_plugin.keys.redis_store import RedisKeyStore
from clawrouter_plugin.keys.secret import secret_hash
from clawrouter_plugin.keys.store import REVOCATION_SECONDS, KeyNotFound, to_record
from clawrouter_plugin.state.redis_conn import open_link


@pytest.fixture(params=["local", "redis"])
async def two_stores(request, tmp_path):
    """Two stores over the same keys, as two proxy processes would hold them."""
    if request.param == "local":
        path = tmp_path / "data" / "api-keys.json"
        yield LocalKeyStore(path), LocalKeyStore(path)
        return
    url = request.getfixturevalue("redis_url")
    links = [open_link(StateConfig(backend="redis", redis_url=url)) for _ in range(2)]
    try:
        yield RedisKeyStore(links[0]), RedisKeyStore(links[1])
    finally:
        for link in links:
            await link.aclose()


async def test_a_created_key_works_and_only_its_hash_is_stored(two_stores, tmp_path):
    first, second = two_stores
    key, secret = await first.create("alice", daily_usd=5, run_usd=0.5)
    assert secret.startswith("cr_") and key.id in secret and len(secret) >= 3 + 12 + 1 + 43
    assert (key.name, key.daily_usd, key.run_usd, key.revoked) == ("alice", 5.0, 0.5, False)
    assert abs(key.created - time.time()) < 60
    for store in (first, second):
        assert (await store.authenticate(f"Bearer {secret}")) == key
        assert (await store.authenticate(f"bearer   {secret} ")).id == key.id
    [listed] = await second.list()
    assert listed == key and "hash" not in repr(listed)
    stored = await _stored_bytes(first, tmp_path)
    assert secret.encode() not in stored and secret_hash(secret).encode() in stored


async def _stored_bytes(store, tmp_path) -> bytes:
    if isinstance(store, LocalKeyStore):
        assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
        return store.path.read_bytes()
    return b"".join(await store.link.client.hvals(store.hash))


@pytest.mark.parametrize("header", [
    None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "x402", "Bearer x402",
    "Bearer cr_0123456789ab_" + "A" * 43,  # the right shape, an id that does not exist
])
async def test_missing_or_malformed_keys_are_refused(two_stores, header):
    first, _ = two_stores
    await first.create("alice")
    with pytest.raises(Unauthorized) as caught:
        await first.authenticate(header)
    assert caught.value.status == 401 and caught.value.code == "invalid_api_key"


async def test_a_forged_secret_for_a_real_id_is_refused(two_stores):
    first, _ = two_stores
    key, secret = await first.create("alice")
    forged = secret[:-43] + ("B" if secret[-43] != "B" else "C") + secret[-42:]
    with pytest.raises(Unauthorized):
        await first.authenticate(f"Bearer {forged}")
    other, other_secret = await first.create("bob")
    # bob's secret with alice's id: the hash compared is alice's
    with pytest.raises(Unauthorized):
        await first.authenticate("Bearer " + other_secret.replace(other.id, key.id))


async def test_a_key_revoked_through_one_store_is_refused_by_the_other_within_a_second(
        two_stores):
    first, second = two_stores
    key, secret = await first.create("alice")
    keep, keep_secret = await first.create("bob")
    assert (await second.authenticate(f"Bearer {secret}")).id == key.id  # now in its cache
    revoked_at = time.monotonic()
    revoked = await first.revoke(key.id)
    assert revoked.revoked and revoked.id == key.id
    refused_after = None
    for _ in range(200):  # bounded: 200 × 10 ms
        try:
            await second.authenticate(f"Bearer {secret}")
        except Unauthorized:
            refused_after = time.monotonic() - revoked_at
            break
        await asyncio.sleep(0.01)
    assert refused_after is not None and refused_after < REVOCATION_SECONDS
    with pytest.raises(Unauthorized):
        await first.authenticate(f"Bearer {secret}")
    assert (await second.authenticate(f"Bearer {keep_secret}")).id == keep.id
    assert [k.revoked for k in await second.list()] == [True, False]
    assert (await first.revoke(key.id)).revoked  # again: fine, nothing changes
    assert await second.has_active()
    await second.revoke(keep.id)
    assert not await first.has_active()


async def test_revoking_an_unknown_id_says_so(two_stores):
    first, _ = two_stores
    await first.create("alice")
    with pytest.raises(KeyNotFound) as caught:
        await first.revoke("0123456789ab")
    assert "0123456789ab" in caught.value.message and "keys list" in caught.value.message


@pytest.mark.parametrize("name,daily,run", [
    ("", None, None), ("   ", None, None), ("x" * 65, None, None), ("bad\nname", None, None),
    ("ok", -1.0, None), ("ok", None, float("nan")), ("ok", float("inf"), None),
])
async def test_bad_names_and_budgets_are_refused_before_storing(two_stores, name, daily, run):
    first, _ = two_stores
    with pytest.raises(BadRequest):
        await first.create(name, daily_usd=daily, run_usd=run)
    assert await first.list() == []


async def test_concurrent_creates_in_several_threads_keep_every_key(tmp_path):
    path = tmp_path / "data" / "api-keys.json"

    def create(index: int) -> str:
        return asyncio.run(LocalKeyStore(path).create(f"agent-{index}"))[0].id

    ids = await asyncio.gather(*(asyncio.to_thread(create, i) for i in range(12)))
    assert sorted(k.id for k in await LocalKeyStore(path).list()) == sorted(ids)
    assert len(set(ids)) == 12


async def test_a_damaged_key_file_refuses_requests_and_is_never_overwritten(tmp_path):
    path = tmp_path / "data" / "api-keys.json"
    store = LocalKeyStore(path)
    key, secret = await store.create("alice")
    path.write_text("{not json")
    fresh = LocalKeyStore(path)
    with pytest.raises(KeysUnavailable) as caught:
        await fresh.authenticate(f"Bearer {secret}")
    assert caught.value.status == 503 and str(path) in caught.value.message
    with pytest.raises(ClawRouterError, match="damaged"):
        await fresh.create("bob")
    assert path.read_text() == "{not json"
    assert secret not in caught.value.message


async def test_a_damaged_entry_disables_only_its_key(tmp_path):
    path = tmp_path / "data" / "api-keys.json"
    store = LocalKeyStore(path)
    alice, alice_secret = await store.create("alice")
    bob, bob_secret = await store.create("bob")
    text = path.read_text().replace('"name": "alice"', '"name": ["alice"]', 1)
    path.write_text(text)
    fresh = LocalKeyStore(path)
    assert (await fresh.authenticate(f"Bearer {bob_secret}")).id == bob.id
    assert [k.id for k in await fresh.list()] == [bob.id]
    with pytest.raises(Unauthorized):
        await fresh.authenticate(f"Bearer {alice_secret}")


async def test_redis_down_refuses_with_503_and_recovers(own_redis):
    link = open_link(StateConfig(backend="redis", redis_url=own_redis.url, timeout_seconds=0.5))
    try:
        store = RedisKeyStore(link)
        key, secret = await store.create("alice")
        own_redis.kill()
        await asyncio.sleep(0.6)  # past the half-second cache
        with pytest.raises(KeysUnavailable) as caught:
            await store.authenticate(f"Bearer {secret}")
        assert caught.value.status == 503 and not link.healthy
        with pytest.raises(ClawRouterError, match="cannot reach Redis"):
            await store.list()
        own_redis.start()  # a fresh, empty server: the key is gone with its data
        await store.link.client.hset(store.hash, key.id, _record_of(key, secret))
        assert (await store.authenticate(f"Bearer {secret}")).id == key.id
        assert link.healthy
    finally:
        await link.aclose()


def _record_of(key, secret) -> bytes:
    return orjson.dumps(to_record(key, secret_hash(secret)))
