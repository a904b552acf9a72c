"""Response-cache latency: cache_key, get (hit and miss) and put for a ~2 KB reply.

Run: ``.venv/bin/python bench/bench_cache.py [--rounds N] [--dir PATH]``. Uses a temporary
directory on local disk unless ``--dir`` is given. Prints p50/p99 in microseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from clawrouter_plugin.state.cache import CachedResponse, ResponseCache
from clawrouter_plugin.state.cache_key import cache_key

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
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(f"{label:<28} p50 {p50:8.1f} µs   p99 {p99:8.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000)
    parser.add_argument("--dir", type=Path, default=None)
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


if __name__ == "__main__":
    main()
