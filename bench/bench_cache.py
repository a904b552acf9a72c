"""Response-cache latency: cache_key, get (hit and miss) and put for a ~2 KB reply; then the
state backends compared at concurrency 1: a cache hit, and the store reads of a routed request
(cache miss, session pin, exclusions), through the local stores and through Redis.

Run: ``.venv/bin/python bench/bench_cache.py [--rounds N] [--dir PATH] [--redis-url URL]``.
Uses a temporary directory on local disk unless ``--dir`` is given, and starts a
``redis-server`` of its own on 127.0.0.1 unless ``--redis-url`` is given (``--no-redis``
skips the comparison). Prints p50/p99 in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from clawrouter_plugin.catalog import load_catalog
from clawrouter_plugin.config import PluginConfig
from clawrouter_plugin.state.backends import Stores, open_stores
from clawrouter_plugin.state.cache import CachedResponse, ResponseCache
from clawrouter_plugin.state.cache_key import cache_key
from clawrouter_plugin.state.redis_conn import open_link

REQUEST = {
    "model": "openai/gpt-4o-mini",
    "stream": True,
    "temperature": 0.2,
    "max_tokens": 1024,
    "messages": [
        {"role": "system", "content": "You are a helpful coding assistant. " * 8},
        {"role": "user", "content": "[Mon 2024-01-15 10:30 UTC] How do I reverse a list?"},
        {"role": "assistant", "content": "Use reversed() or slicing: items[::-1]."},
        {"role": "user", "content": "[Mon 2024-01-15 10:31 UTC] And a string?"},
    ],
}
REPLY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "model": "openai/gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "x" * 1800}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 450, "total_tokens": 570},
    }
).encode()


def measure(label: str, rounds: int, action: Callable[[int], object]) -> None:
    for i in range(min(200, rounds)):  # warm up
        action(i)
    samples = []
    for i in range(rounds):
        start = time.perf_counter()
        action(i)
        samples.append((time.perf_counter() - start) * 1e6)
    report(label, samples)


def report(label: str, samples: list[float]) -> float:
    """Print p50/p99 of ``samples`` (µs); returns the p50."""
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(f"{label:<28} p50 {p50:8.1f} µs   p99 {p99:8.1f} µs")
    return p50


async def measure_async(label: str, rounds: int, action: Callable[[int], Awaitable[object]]
                        ) -> float:
    for i in range(min(200, rounds)):  # warm up
        await action(i)
    samples = []
    for i in range(rounds):
        start = time.perf_counter()
        await action(i)
        samples.append((time.perf_counter() - start) * 1e6)
    return report(label, samples)


async def backend_p50s(stores: Stores, name: str, rounds: int) -> tuple[float, float]:
    """p50 of a cache hit, and of a routed request's store reads, through ``stores``."""
    reply = CachedResponse(200, {"x-clawrouter-tier": "SIMPLE"}, REPLY, "m", 0.0)
    key = cache_key(REQUEST)
    await stores.cache.put(key, reply)
    await stores.sessions.pin("bench", "openai/gpt-4o-mini", "SIMPLE", "auto")

    async def routed(_: int) -> None:
        await stores.cache.get("absent")
        await stores.sessions.get("bench")
        await stores.exclusions.all()

    hit = await measure_async(f"{name}: cache hit", rounds, lambda i: stores.cache.get(key))
    reads = await measure_async(f"{name}: routed reads", rounds, routed)
    return hit, reads


async def compare_backends(rounds: int, data_dir: Path, redis_url: str) -> None:
    """The added p50 of the redis backend over the local one, at concurrency 1."""
    catalog = load_catalog()
    config = PluginConfig.model_validate({"state": {"backend": "redis", "redisUrl": redis_url,
                                                    "keyPrefix": "bench"}})
    local = open_stores(config, data_dir, catalog, None)
    link = open_link(config.state)
    try:
        shared = open_stores(config, data_dir, catalog, link)
        local_hit, local_reads = await backend_p50s(local, "local", rounds)
        redis_hit, redis_reads = await backend_p50s(shared, "redis", rounds)
        await shared.cache.clear()
        await shared.sessions.clear()
    finally:
        await local.cache.aclose()
        await link.aclose()
    print(f"redis adds (p50): cache hit +{(redis_hit - local_hit) / 1000:.3f} ms, "
          f"routed reads +{(redis_reads - local_reads) / 1000:.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args()
    print(f"request {len(json.dumps(REQUEST))} B, reply {len(REPLY)} B, {args.rounds} rounds")
    measure("cache_key", args.rounds, lambda i: cache_key(REQUEST))
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.dir or Path(tmp)
        with ResponseCache(directory, max_size=200) as cache:
            reply = CachedResponse(200, {"content-type": "application/json"}, REPLY, "m", 0.0)
            keys = [f"{i:064x}" for i in range(150)]
            measure("put (new/overwrite)", args.rounds, lambda i: cache.put(keys[i % 150], reply))
            measure("get (hit)", args.rounds, lambda i: cache.get(keys[i % 150]))
            measure("get (miss)", args.rounds, lambda i: cache.get("absent"))
            evicting = [f"e{i}" for i in range(args.rounds + 200)]
            measure("put (full, evicting)", args.rounds, lambda i: cache.put(evicting[i], reply))
            print("stats", cache.stats())
        if not args.no_redis:
            run_comparison(args.rounds, directory / "backends", args.redis_url)


def run_comparison(rounds: int, data_dir: Path, redis_url: str | None) -> None:
    """The backend comparison (on uvloop where installed, like ``clawrouter serve``), on a
    redis-server of its own when no URL is given."""
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    if redis_url is not None:
        run(compare_backends(rounds, data_dir, redis_url))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository
    from tests.support.redis_server import RedisServer  # the machine's redis-server

    server = RedisServer()
    server.start()
    try:
        run(compare_backends(rounds, data_dir, server.url))
    finally:
        server.close()


if __name__ == "__main__":
    main()
