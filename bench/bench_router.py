"""Routing speed: median and p99 per request, printed (not a timed test).

Run: .venv/bin/python bench/bench_router.py [--rounds N] [--passes P]
Corpora: every development-set request of at most 500 characters (all languages), synthetic
100k-character requests (English prose, Chinese prose, pasted code, a long chat), and requests
in the OpenClaw gateway's shape (tests/support/host_shapes.py: ~47k-character system prompt,
13 tools, envelope, context block).
Every timed call starts with an empty context cache (system prompts and earlier turns are
scanned again), except in the "agent loop" line, which re-routes the same conversation as an
agent does on every tool call. The machine may be shared: each line reports the median of all
samples and the best per-pass median.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

from clawrouter_plugin.router import Router, classifier

ROOT = Path(__file__).resolve().parent.parent
DEVSET = ROOT / "tests" / "router" / "devset.jsonl"
sys.path.insert(0, str(ROOT))  # for the host-shaped requests under tests/

from tests.support.host_shapes import openclaw_turn  # noqa: E402


def _chars(body: dict) -> int:
    total = 0
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
    return total


def short_bodies() -> list[dict]:
    """Development-set requests whose messages total at most 500 characters."""
    rows = [json.loads(line) for line in DEVSET.read_text("utf-8").splitlines() if line.strip()]
    return [row["body"] for row in rows if _chars(row["body"]) <= 500]


def long_bodies() -> dict[str, dict]:
    """Synthetic requests of about 100,000 characters."""
    prose = ("The committee reviewed the quarterly figures, the hiring plan and the office move. "
             "Several members asked for more detail on the vendor contracts before approving. ")
    chinese = "我们在会议上讨论了季度预算、招聘计划以及办公室搬迁的安排，大家希望在批准之前看到更多细节。"
    code = ("def handler(event, context):\n    items = [x for x in event['records'] if x]\n"
            "    return {'count': len(items), 'ok': True}\n\n")
    chat = [{"role": "user" if i % 2 == 0 else "assistant",
             "content": (prose * 6)[:500]} for i in range(200)]
    return {
        "english prose + 'summarize'": {"messages": [{"role": "user", "content": (
            prose * 700)[:100_000] + "\n\nSummarize the main decisions."}]},
        "chinese prose + question": {"messages": [{"role": "user", "content": (
            chinese * 2100)[:100_000] + "\n\n请总结主要决定。"}]},
        "pasted code + 'find the bug'": {"messages": [{"role": "user", "content": (
            "Find the bug in this module:\n\n```python\n" + code * 800)[:100_000] + "\n```"}]},
        "200-turn chat": {"messages": chat + [{"role": "user", "content": "and now?"}]},
    }


def openclaw_bodies() -> dict[str, dict]:
    """Requests as the OpenClaw gateway sends them."""
    ask = ("Refactor the payment module so that retries use exponential backoff, update the "
           "tests, and run the whole suite.")
    return {
        "'hello'": openclaw_turn("hello"),
        "a coding ask": openclaw_turn(ask),
        "a coding ask, tool loop, 2 earlier turns": openclaw_turn(
            ask, earlier=(("hi", "Hello!"), ("what's in the repo?", "A payments service.")),
            tool_results=True),
    }


def measure(router: Router, bodies: list[dict], rounds: int, cold: bool = True) -> list[float]:
    """Microseconds per route() call, every body ``rounds`` times."""
    for body in bodies:  # warm up the interpreter, not the cache
        router.route(body)
    clear = router.classifier.clear_cache
    samples = []
    gc.disable()
    try:
        for _ in range(rounds):
            for body in bodies:
                if cold:
                    clear()
                start = time.perf_counter_ns()
                router.route(body)
                samples.append((time.perf_counter_ns() - start) / 1000)
    finally:
        gc.enable()
    return samples


def _stats(passes: list[list[float]]) -> str:
    ordered = sorted(x for samples in passes for x in samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    best = min(statistics.median(samples) for samples in passes)
    return (f"median {statistics.median(ordered):7.1f} µs   p99 {p99:7.1f} µs   "
            f"best-pass median {best:7.1f} µs   (n={len(ordered)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40, help="rounds per pass")
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    compiled = not classifier.__file__.endswith(".py")
    print("router modules: " + ("compiled (mypyc)" if compiled else
                                "pure Python (not compiled: expect several times slower)"))
    started = time.perf_counter()
    router = Router()
    print(f"Router() construction: {(time.perf_counter() - started) * 1000:.1f} ms")
    short = short_bodies()
    passes = [measure(router, short, args.rounds) for _ in range(args.passes)]
    print(f"requests <= 500 chars ({len(short)} distinct):\n    {_stats(passes)}")
    agent = [body for body in short if len(body["messages"]) > 1]
    passes = [measure(router, agent, args.rounds, cold=False) for _ in range(args.passes)]
    print(f"agent loop (same conversations again, {len(agent)} distinct):\n    {_stats(passes)}")
    for name, body in long_bodies().items():
        passes = [measure(router, [body], max(5, args.rounds // 4)) for _ in range(args.passes)]
        print(f"100k chars, {name}:\n    {_stats(passes)}")
    for name, body in openclaw_bodies().items():
        passes = [measure(router, [body], max(5, args.rounds // 4)) for _ in range(args.passes)]
        print(f"OpenClaw-shaped, {name}:\n    {_stats(passes)}")


if __name__ == "__main__":
    main()
