"""Bad or surprising files in the data directory and in the config file.

The rule: a clear error, or the file is safely ignored / rebuilt; nothing is lost or
corrupted; never a traceback, never a crashed proxy. Cases already covered next to each store
(corrupt exclusion lists, partial usage lines, corrupt wallet files) are not repeated here.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import pickle
import secrets
import sqlite3
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import diskcache
import orjson
import pytest

from clawrouter_plugin.config import PluginConfig, load_config
from clawrouter_plugin.errors import ClawRouterError, ConfigError
from clawrouter_plugin.proxy.server import start_proxy
from clawrouter_plugin.state import cache as cache_module
from clawrouter_plugin.state import exclusions as exclusions_module
from clawrouter_plugin.state.cache import CachedResponse, ResponseCache
from clawrouter_plugin.usage import UsageLog, UsageRecord

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
TODAY_FILE = "usage-2026-01-10.jsonl"
CLOSED_RPC = "http://127.0.0.1:9/"  # nothing listens on the discard port
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
GOOD_LINE = (b'{"timestamp":"2026-01-10T10:00:00.000Z","model":"m","tier":"SIMPLE",'
             b'"cost":0.001,"baselineCost":0.01,"latencyMs":5}\n')


def reply(text: str = "hello") -> CachedResponse:
    return CachedResponse(200, {"content-type": "application/json"},
                          f'{{"text":"{text}"}}'.encode(), "openai/gpt-4o-mini", 1.0)


def serve(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``clawrouter serve`` as a user runs it, expected to stop on its own."""
    base = {**os.environ, "BLOCKRUN_WALLET_KEY": "0x" + secrets.token_hex(32),
            "OPENCLAW_CONFIG": str(tmp_path / "absent.yaml"), "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "clawrouter_plugin", "serve", "--port", "0",
         "--api-base", "http://127.0.0.1:9/api", *args],
        env={**base, **(env or {})}, capture_output=True, text=True, timeout=60)


async def start(upstream, key: str, data_dir: Path):
    return await start_proxy(
        wallet_key=key, port=0, api_base=upstream.url, data_dir=data_dir,
        config=PluginConfig.model_validate({"payment": {"rpcUrl": CLOSED_RPC}}))


async def chat(handle, content: str) -> tuple[int, dict, dict]:
    """POST one chat completion for the free model; (status, headers, JSON body)."""
    body = {"model": "nvidia/gpt-oss-120b", "messages": [{"role": "user", "content": content}]}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.post(f"{handle.base_url}/v1/chat/completions", json=body) as resp:
            return resp.status, dict(resp.headers), await resp.json(content_type=None)


async def get_json(handle, path: str, method: str = "GET") -> tuple[int, object]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.request(method, handle.base_url + path) as resp:
            text = await resp.text()
    return resp.status, json.loads(text, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"not standard JSON: {name}")


# --- the data directory itself ---------------------------------------------------------------


@pytest.mark.parametrize("shape", ["file", "broken symlink", "below a file"])
def test_serve_refuses_an_unusable_data_dir_clearly(tmp_path, shape):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    if shape == "file":
        data_dir = blocker
    elif shape == "broken symlink":
        data_dir = tmp_path / "link"
        data_dir.symlink_to(tmp_path / "nowhere")
    else:
        data_dir = blocker / "data"
    result = serve(tmp_path, "--data-dir", str(data_dir))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "clawrouter: " in result.stderr and "data directory" in result.stderr
    assert blocker.read_text() == "not a directory"


async def test_a_data_dir_reached_through_a_symlink_is_used(x402_upstream, funded_wallet_key,
                                                            tmp_path):
    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    handle = await start(x402_upstream, funded_wallet_key, link)
    try:
        status, _, _ = await chat(handle, "through a symlink")
        assert status == 200
    finally:
        await handle.close()
    assert link.is_symlink()
    assert len(list((target / "logs").glob("usage-*.jsonl"))) == 1
    assert (target / "cache" / "cache.db").is_file()


async def test_a_refused_start_leaves_no_http_session_open(x402_upstream, tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cache").write_text("a file where the cache folder goes")
    sessions = []
    real_session = aiohttp.ClientSession

    def tracking(*args, **kwargs):
        session = real_session(*args, **kwargs)
        sessions.append(session)
        return session

    monkeypatch.setattr(aiohttp, "ClientSession", tracking)
    with pytest.raises(ConfigError, match="response cache"):
        await start(x402_upstream, "0x" + secrets.token_hex(32), tmp_path / "data")
    assert all(session.closed for session in sessions)


@pytest.mark.parametrize(("place", "kind"), [
    ("wallet.key", "dir"), ("cache", "file"), ("cache/cache.db", "dir"),
    ("exclude-models.json", "dir"), ("logs", "file"), ("logs/<today's file>", "dir"),
    ("images", "file"),
])
async def test_a_directory_for_a_file_or_a_file_for_a_directory(x402_upstream, funded_wallet_key,
                                                               tmp_path, place, kind):
    """Either a clear refusal at start, or a proxy that keeps answering."""
    data_dir = tmp_path / "data"
    today = f"usage-{datetime.now(UTC).date().isoformat()}.jsonl"  # where a proxy writes now
    path = data_dir / place.replace("<today's file>", today)
    path.parent.mkdir(parents=True)
    if kind == "dir":
        path.mkdir()
    else:
        path.write_text("surprise")
    try:
        handle = await start(x402_upstream, funded_wallet_key, data_dir)
    except ClawRouterError as exc:
        assert str(data_dir) in exc.message
    else:
        try:
            status, _, body = await chat(handle, f"with {place} as a {kind}")
            assert status == 200, body
            status, stats = await get_json(handle, "/stats")
            assert status == 200 and isinstance(stats, dict)
            status, cleared = await get_json(handle, "/stats", "DELETE")
            assert status == 200 and cleared["cleared"] is True
        finally:
            await handle.close()
    if place == "exclude-models.json":  # set aside, kept for the user, routing went on
        path = next(path.parent.glob("exclude-models.json.unreadable-*"))
    assert path.is_dir() if kind == "dir" else path.read_text() == "surprise"


@pytest.mark.parametrize("links", [("wallet.key", "mnemonic"), ("wallet.key",), ("mnemonic",)])
def test_dangling_wallet_symlinks_are_refused_not_replaced(tmp_path, links):
    """A link to a missing wallet file is not "no wallet": generating one there could not be
    saved (funds sent to it would be lost), and the missing target may be the real wallet."""
    from clawrouter_plugin.payment.wallet import load_or_create_wallet

    for name in links:
        (tmp_path / name).symlink_to(tmp_path / f"gone-{name}")
    with pytest.raises(ClawRouterError, match="symlink to a missing file"):
        load_or_create_wallet(tmp_path, env={})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(links)  # nothing written


# --- the config file ---------------------------------------------------------------------------


def _plugin_config(body: str) -> str:
    return "plugins:\n  entries:\n    clawrouter:\n      config:\n" + "".join(
        f"        {line}\n" for line in body.splitlines())


def test_config_booleans_and_quoted_numbers_still_load(tmp_path):
    path = tmp_path / "openclaw.yaml"
    path.write_text(_plugin_config("port: '8080'\ncache: {enabled: false}\npayment: {preauth: no}"))
    plugin = load_config(str(path)).plugin
    assert (plugin.port, plugin.cache.enabled, plugin.payment.preauth) == (8080, False, False)


@pytest.mark.parametrize("content", [b"", b"\x00\xff\xfe binary", "plugins: {}".encode("utf-16")])
def test_config_file_that_is_empty_binary_or_not_utf8(tmp_path, content):
    path = tmp_path / "openclaw.yaml"
    path.write_bytes(content)
    if not content:
        assert load_config(str(path)).plugin.port == 8402
        return
    with pytest.raises(ConfigError, match="openclaw.yaml"):
        load_config(str(path))


def test_config_path_that_is_a_directory(tmp_path):
    (tmp_path / "openclaw.yaml").mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "openclaw.yaml"))


@pytest.mark.skipif(AS_ROOT, reason="root reads files whatever their permission bits")
def test_unreadable_config_file(tmp_path):
    path = tmp_path / "openclaw.yaml"
    path.write_text("plugins: {}\n")
    path.chmod(0)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(path))


@pytest.mark.parametrize("where", ["dataDir", "OPENCLAW_CONFIG"])
def test_serve_with_a_tilde_path_of_no_known_user(tmp_path, where):
    config = tmp_path / "openclaw.yaml"
    config.write_text(_plugin_config('dataDir: "~no-such-user-here/data"'))
    env = {"OPENCLAW_CONFIG": str(config) if where == "dataDir" else "~no-such-user-here/x.yaml"}
    result = serve(tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "~no-such-user-here" in result.stderr


@pytest.mark.parametrize("text", [
    _plugin_config("maxCostPerRun: 1" + "0" * 5000),  # too long for int()
    "a: " + "[" * 5000 + "]" * 5000 + "\n",  # deeper than the parser's recursion
])
def test_serve_with_a_config_it_cannot_parse(tmp_path, text):
    config = tmp_path / "openclaw.yaml"
    config.write_text(text)
    result = serve(tmp_path, "--config", str(config), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2 and "not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr


# --- the response cache ------------------------------------------------------------------------


def _sql(database: Path, statement: str, *params: object) -> int:
    """Run one statement on a cache database behind the cache's back; the changed row count."""
    db = sqlite3.connect(database)
    try:
        with db:
            return db.execute(statement, params).rowcount
    finally:
        db.close()


class Theirs:
    """A value another program stored (pickled) in a diskcache."""


def _tag(**changes) -> str:
    meta = {"status": 200, "headers": {}, "model": None, "stored_at": 1.0, "used": 1.0,
            "crc32": 0}
    return orjson.dumps({**meta, **changes}).decode()


@pytest.mark.parametrize(("label", "value", "tag"), [
    ("older, no checksum", b"v", orjson.dumps({"status": 200, "headers": {}, "model": None,
                                                "stored_at": 1.0, "used": 5.0}).decode()),
    ("used is null", b"v", _tag(used=None)),
    ("used is text", b"v", _tag(used="yesterday")),
    ("headers are a list", b"v", _tag(headers=[["a", "b"]])),
    ("status is text", b"v", _tag(status="200")),
    ("value is text", "a str, not bytes", _tag()),
    ("value is a number", 12345, _tag()),
])
def test_cache_entries_of_another_version_are_dropped(tmp_path, label, value, tag):
    with ResponseCache(tmp_path) as cache:
        cache.put("good", reply("good"))
    with diskcache.Cache(str(tmp_path)) as disk:
        disk.set("bad", value, expire=600, tag=tag)
    with ResponseCache(tmp_path) as cache:
        assert cache.get("bad") is None, label
        assert cache.get("good") == reply("good")
    with diskcache.Cache(str(tmp_path)) as disk:
        assert set(disk.iterkeys()) == {"good"}


def test_entries_of_another_program_are_left_alone(tmp_path):
    theirs = {("a", "tuple", "key"): {"their": "value"}, "plain": b"no tag",
              "tagged": b"their tag", 42: 42}
    with diskcache.Cache(str(tmp_path)) as disk:
        for key, value in theirs.items():
            disk.set(key, value, tag="their own tag" if key == "tagged" else None)
    with ResponseCache(tmp_path) as cache:
        assert cache.put("k", reply())
    with ResponseCache(tmp_path) as cache:
        assert cache.get("k") == reply() and cache.stats()["size"] == 1
    with diskcache.Cache(str(tmp_path)) as disk:
        assert {key: disk[key] for key in theirs} == theirs
        assert disk.get("tagged", tag=True) == (b"their tag", "their own tag")


def test_a_cache_of_another_program_that_cannot_be_decoded_is_refused(tmp_path):
    directory = tmp_path / "cache"
    with diskcache.Cache(str(directory)) as disk:
        disk.set("theirs", b"x")
    unknown_class = pickle.dumps(Theirs(), protocol=0).replace(__name__.encode(), b"gone_module")
    assert _sql(directory / "cache.db", "UPDATE Cache SET mode = ?, value = ? WHERE key = ?",
                diskcache.core.MODE_PICKLE, unknown_class, "theirs") == 1
    with pytest.raises(ConfigError, match="not clawrouter's response cache; move it away"):
        ResponseCache(directory)
    db = sqlite3.connect(directory / "cache.db")
    try:  # their entry is kept as it was
        assert db.execute("SELECT key, value FROM Cache").fetchall() == [("theirs", unknown_class)]
    finally:
        db.close()


@pytest.mark.parametrize("content", [b"garbage " * 1000, bytes(range(256)) * 64])
def test_a_corrupt_cache_db_is_moved_aside_and_rebuilt(tmp_path, content):
    directory = tmp_path / "cache"
    directory.mkdir()
    (directory / "cache.db").write_bytes(content)
    with ResponseCache(directory) as cache:
        assert cache.put("k", reply())
    with ResponseCache(directory) as cache:
        assert cache.get("k") == reply()
    aside = list(tmp_path.glob("cache.unreadable-*"))
    assert len(aside) == 1 and (aside[0] / "cache.db").read_bytes() == content


def test_a_cache_that_cannot_be_opened_is_not_moved_aside(tmp_path):
    directory = tmp_path / "cache"
    (directory / "cache.db").mkdir(parents=True)  # an access problem, not corrupt content
    with pytest.raises(ConfigError, match="cannot open the response cache"):
        ResponseCache(directory)
    assert (directory / "cache.db").is_dir() and not list(tmp_path.glob("cache.unreadable-*"))


@pytest.mark.parametrize("size", [100, 200_000])  # in the database, and in a file of its own
def test_a_body_damaged_on_disk_is_a_miss_never_served(tmp_path, size):
    body = secrets.token_bytes(size)
    with ResponseCache(tmp_path) as cache:
        cache.put("k", CachedResponse(200, {}, body, None, 1.0))
    files = list(tmp_path.rglob("*.val"))
    if files:  # e.g. a power loss before the file's data reached the disk
        with open(files[0], "r+b") as handle:
            handle.truncate(size // 2)
    else:
        assert _sql(tmp_path / "cache.db", "UPDATE Cache SET value = ? WHERE key = 'k'",
                    b"\0" * size) == 1
    with ResponseCache(tmp_path) as cache:
        assert cache.get("k") is None
        assert cache.stats()["misses"] == 1
    with diskcache.Cache(str(tmp_path)) as disk:
        assert "k" not in disk  # dropped, not kept to fail again


async def test_the_proxy_answers_when_a_cached_body_was_damaged(x402_upstream, funded_wallet_key,
                                                                tmp_path):
    data_dir = tmp_path / "data"
    handle = await start(x402_upstream, funded_wallet_key, data_dir)
    try:
        status, headers, first = await chat(handle, "cache me")
        assert status == 200 and headers["x-clawrouter-cache"] == "MISS"
    finally:
        await handle.close()
    assert _sql(data_dir / "cache" / "cache.db", "UPDATE Cache SET value = substr(value, 1, 20)") == 1
    handle = await start(x402_upstream, funded_wallet_key, data_dir)
    try:
        status, headers, again = await chat(handle, "cache me")
        assert status == 200, again
        assert headers["x-clawrouter-cache"] == "MISS"
        assert again["choices"][0]["message"] == first["choices"][0]["message"]
    finally:
        await handle.close()


# --- the usage logs ----------------------------------------------------------------------------


def _aggregate(tmp_path: Path, content: bytes, days: int = 1) -> dict:
    (tmp_path / TODAY_FILE).write_bytes(content)
    stats = UsageLog(tmp_path).aggregate(days, now=NOW)
    json.dumps(stats, allow_nan=False)  # what /stats sends must be standard JSON
    return stats


@pytest.mark.parametrize("line", [
    b'{"model":"m","tier":"SIMPLE","cost":1e308,"baselineCost":1e308}',
    b'{"model":"m","tier":"SIMPLE","cost":0.001,"latencyMs":1e308}',
    b'{"model":"m","tier":"SIMPLE","cost":-5,"baselineCost":0.01}',
    b'{"model":"m","tier":"SIMPLE","cost":0.001,"baselineCost":-1}',
    b'{"model":"m","tier":"SIMPLE","cost":0.001,"latencyMs":-1e9}',
])
def test_usage_lines_with_huge_or_negative_numbers_are_skipped(tmp_path, line):
    stats = _aggregate(tmp_path, GOOD_LINE + (line + b"\n") * 3)
    assert stats["totalRequests"] == 1
    assert stats["totalCost"] == 0.001 and stats["totalBaselineCost"] == 0.01
    assert stats["avgLatencyMs"] == 5.0 and stats["savingsPercentage"] == 90.0


def test_usage_lines_with_nul_bytes_bad_utf8_and_wrong_types_are_skipped(tmp_path):
    bad = [
        b"\x00" * 40,
        GOOD_LINE[:-1].replace(b'"m"', b'"m\x00"') + b"\x00",
        GOOD_LINE[:-1].replace(b'"m"', b'"m\xff\xfe"'),
        b'{"model":{"nested":1},"tier":"SIMPLE","cost":0.001}',
        b'{"model":"m","tier":["SIMPLE"],"cost":0.001}',
        b'{"model":"m","tier":"SIMPLE","cost":true}',
        b'{"model":"m","tier":"SIMPLE","cost":"0.001"}',
        b'{"model":"m","tier":"SIMPLE","cost":{"usd":1}}',
        b'{"model":"m","tier":"SIMPLE","cost":' + b"9" * 400 + b"}",
        b'{"model":"m","tier":"SIMPLE","cost":Infinity}',
        b'"just a string"',
        b"[" * 10_000 + b"]" * 10_000,
        bytes(range(256)),
    ]
    stats = _aggregate(tmp_path, GOOD_LINE + b"\n".join(bad) + b"\n" + GOOD_LINE)
    assert stats["totalRequests"] == 2 and list(stats["byModel"]) == ["m"]


def test_a_record_with_a_lone_surrogate_is_written_readably(tmp_path):
    log = UsageLog(tmp_path)
    log.append(UsageRecord(
        timestamp="2026-01-10T10:00:00.000Z", session="s\udc80", requested_model="auto\ud800",
        model="m", tier="SIMPLE", input_tokens=1, output_tokens=1, cost=0.001,
        baseline_cost=0.01, savings=0.009, latency_ms=5.0, cache_hit=False, fallbacks=0))
    assert log.aggregate(1, now=NOW)["totalRequests"] == 1
    entry = orjson.loads((tmp_path / TODAY_FILE).read_bytes())
    assert entry["session"] == "s?" and entry["requestedModel"] == "auto?"


def test_a_huge_usage_file_is_read_in_little_memory(tmp_path):
    lines = GOOD_LINE * 100_000  # about 11 MB
    (tmp_path / TODAY_FILE).write_bytes(lines)
    tracemalloc.start()
    try:
        stats = UsageLog(tmp_path).aggregate(1, now=NOW)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stats["totalRequests"] == 100_000
    assert peak < 1 << 20, f"peak {peak} bytes for a {len(lines) >> 20} MB file"


def test_a_line_of_megabytes_is_skipped(tmp_path):
    junk = b"\xff" * (5 << 20) + b"\n"  # e.g. a stray binary file's worth in one line
    assert _aggregate(tmp_path, GOOD_LINE + junk + GOOD_LINE)["totalRequests"] == 2


def test_a_usage_file_dated_far_in_the_future(tmp_path):
    (tmp_path / "usage-9999-12-31.jsonl").write_bytes(GOOD_LINE * 5)
    (tmp_path / "usage-99999-01-01.jsonl").write_bytes(GOOD_LINE)
    log = UsageLog(tmp_path)
    assert log.aggregate(365, now=NOW)["totalRequests"] == 0
    assert log.clear() == 2 and not list(tmp_path.iterdir())


def test_clearing_stats_skips_what_it_cannot_delete(tmp_path, caplog):
    log = UsageLog(tmp_path)
    (tmp_path / "usage-2026-01-09.jsonl").write_bytes(GOOD_LINE)
    (tmp_path / TODAY_FILE).mkdir()  # a directory where a day's file would be
    (tmp_path / TODAY_FILE / "keep.txt").write_text("not ours")
    assert log.clear() == 1
    assert (tmp_path / TODAY_FILE / "keep.txt").read_text() == "not ours"
    assert "cannot delete" in caplog.text


@pytest.mark.skipif(AS_ROOT, reason="root reads files whatever their permission bits")
def test_an_unreadable_usage_file_is_skipped(tmp_path):
    (tmp_path / "usage-2026-01-09.jsonl").write_bytes(GOOD_LINE)
    (tmp_path / TODAY_FILE).write_bytes(GOOD_LINE)
    (tmp_path / TODAY_FILE).chmod(0)
    assert UsageLog(tmp_path).aggregate(2, now=NOW)["totalRequests"] == 1


# --- a running proxy: full disk, two proxies on one data directory ----------------------------


async def test_requests_are_answered_while_the_disk_is_full(x402_upstream, funded_wallet_key,
                                                            tmp_path, monkeypatch, caplog):
    """The free model answers while the disk is full; a payment, which could not be
    journaled, is not sent."""
    x402_upstream.set_price("/v1/chat/completions", lambda call: None if (
        call.json() or {}).get("model") == "nvidia/gpt-oss-120b" else "0.001")
    handle = await start(x402_upstream, funded_wallet_key, tmp_path / "data")
    services = handle.services
    paid = {"model": "deepseek/deepseek-chat", "messages": [{"role": "user", "content": "x"}]}
    try:
        status, _, _ = await chat(handle, "before the disk filled up")
        assert status == 200
        services.usage.flush()
        services.cache.local.flush()

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def full_db(*args, **kwargs):
            raise sqlite3.OperationalError("database or disk is full")

        with monkeypatch.context() as patch:
            patch.setattr(os, "write", full)
            patch.setattr(diskcache.Cache, "set", full_db)
            for i in range(3):
                status, headers, body = await chat(handle, f"while full {i}")
                assert status == 200, body
            services.usage.flush()
            services.cache.local.flush()
            status, stats = await get_json(handle, "/stats")
            assert status == 200 and stats["totalRequests"] == 1
            status, headers, _ = await chat(handle, "while full 0")  # was not stored
            assert status == 200 and headers["x-clawrouter-cache"] == "MISS"
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{handle.base_url}/v1/chat/completions",
                                        json=paid) as resp:
                    error = (await resp.json())["error"]
            assert resp.status == 402 and "payment journal cannot be written" in error["message"]
            assert x402_upstream.ledger.total_paid() == 0
            services.usage.flush()  # its line too is lost while the disk is full
        assert "No space left on device" in caplog.text and "disk is full" in caplog.text
        status, _, _ = await chat(handle, "after space was freed")
        assert status == 200
    finally:
        await handle.close()
    lines = (tmp_path / "data" / "logs").glob("usage-*.jsonl")
    entries = [json.loads(line) for path in lines for line in path.read_bytes().splitlines()]
    assert len(entries) == 2  # before and after; the lost ones left no partial line


async def test_two_proxies_on_one_data_dir_keep_the_files_consistent(x402_upstream,
                                                                      funded_wallet_key,
                                                                      tmp_path, monkeypatch):
    monkeypatch.setattr(exclusions_module, "RECHECK_SECONDS", 0.0)
    monkeypatch.setattr(cache_module, "SAVE_DELAY_SECONDS", 0.01)
    data_dir = tmp_path / "data"
    first = await start(x402_upstream, funded_wallet_key, data_dir)
    second = await start(x402_upstream, funded_wallet_key, data_dir)
    try:
        assert first.base_url != second.base_url
        prompts = [f"question {i}" for i in range(20)]
        results = await asyncio.gather(*(chat(first if i % 2 else second, prompt)
                                         for i, prompt in enumerate(prompts)))
        assert [status for status, _, _ in results] == [200] * len(prompts)
        await first.services.exclusions.add("flash")
        assert "google/gemini-2.5-flash" in await second.services.exclusions.all()
    finally:
        await first.close()
        await second.close()
    lines = [json.loads(line) for path in (data_dir / "logs").glob("usage-*.jsonl")
             for line in path.read_bytes().splitlines()]
    assert len(lines) == len(prompts)
    assert json.loads((data_dir / "exclude-models.json").read_text()) == [
        "google/gemini-2.5-flash"]
    third = await start(x402_upstream, funded_wallet_key, data_dir)
    try:
        hits = [await chat(third, prompt) for prompt in prompts]
        assert [headers["x-clawrouter-cache"] for _, headers, _ in hits] == ["HIT"] * len(prompts)
    finally:
        await third.close()
