"""Team-mode benchmark: ``serve --workers 2`` against one worker, and Redis against local state.

Run: ``.venv/bin/python bench/bench_team.py [--requests N] [--rounds R] [--concurrency C]``.

Everything runs on 127.0.0.1 in separate processes: the fast upstream (free, no x402), the
thin aiohttp pass-through (``bench/passthrough.py``, the comparison point of
``bench/bench_proxy.py``), a real ``redis-server``, and four proxies: local state in one
process, Redis state in one process, Redis state with ``--workers 2``. This process
generates the load, with the targets taking turns in each round so that a busy moment of
the machine hits all of them. It prints, per target, p50/p99, throughput, CPU per request
(all the target's processes) and the throughput as a ratio to the pass-through measured in
the same run; then the p50 that the Redis backend adds to local state at concurrency 1, as
the median of many short local/Redis pairs with its spread.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]

from bench_proxy import cpu_seconds, free_port, measure, run, wait_ready  # noqa: E402

from tests.support.redis_server import RedisServer  # noqa: E402  (a real redis-server)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its children (a ``--workers`` parent and its workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [pid, *map(int, children.read_text().split())]
    except FileNotFoundError:
        return [pid]


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its live children."""
    total = 0.0
    for each in process_tree(pid):
        try:
            total += cpu_seconds(each)
        except FileNotFoundError:
            pass
    return total


def start_proxy(port: int, upstream: str, data_dir: Path, state: dict, workers: int,
                env: dict) -> subprocess.Popen:
    """A ``clawrouter serve`` with this ``state`` section, on ``port``."""
    data_dir.mkdir(parents=True)
    config = data_dir.parent / f"{data_dir.name}.yaml"
    config.write_text(json.dumps({"plugins": [{"id": "blockrun", "config": {
        "state": state, "payment": {"rpcUrl": "http://127.0.0.1:9/"}}}]}))
    args = [sys.executable, "-m", "clawrouter_plugin", "serve", "--config", str(config),
            "--port", str(port), "--api-base", upstream, "--data-dir", str(data_dir)]
    if workers > 1:
        args += ["--workers", str(workers)]
    return subprocess.Popen(args, env=env, cwd=str(REPO), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def show(title: str, results: dict[str, dict], reference: str) -> None:
    print(f"\n{title}")
    print(f"{'target':<30}{'p50 ms':>8}{'p99 ms':>8}{'req/s':>8}{'CPU/req':>10}"
          f"{'× thin':>8}")
    for name, row in results.items():
        cpu = f"{row['cpu_ms']:.2f}ms" if row["cpu_ms"] is not None else ""
        ratio = row["rps"] / results[reference]["rps"]
        print(f"{name:<30}{row['p50']:>8.3f}{row['p99']:>8.3f}{row['rps']:>8.0f}{cpu:>10}"
              f"{ratio:>8.2f}")


async def added_p50(targets: dict[str, str], cpu: dict, *, pairs: int, requests: int) -> None:
    """The p50 the Redis backend adds at concurrency 1, as ``pairs`` short back-to-back runs
    of local then Redis (the order alternating), each pair's difference taken on its own: on
    a shared machine the load drifts between runs far more than within a pair."""
    local, shared = "clawrouter local, 1 process", "clawrouter redis, 1 worker"
    differences, local_p50, redis_p50 = [], [], []
    for index in range(pairs):
        order = (local, shared) if index % 2 == 0 else (shared, local)
        row = await measure({name: targets[name] for name in order}, cpu, requests=requests,
                            rounds=1, concurrency=1, stream=False,
                            offset=2 * 10**6 + index * 2 * requests, warmup=0)
        local_p50.append(row[local]["p50"])
        redis_p50.append(row[shared]["p50"])
        differences.append(row[shared]["p50"] - row[local]["p50"])
    ordered = sorted(differences)
    quartile = len(ordered) // 4
    print(f"\nadded p50 at concurrency 1, {pairs} pairs of {requests} requests: median "
          f"{statistics.median(differences):+.3f} ms (middle half {ordered[quartile]:+.3f} to "
          f"{ordered[-quartile - 1]:+.3f}, all {ordered[0]:+.3f} to {ordered[-1]:+.3f}); "
          f"median p50 local {statistics.median(local_p50):.3f} ms, redis "
          f"{statistics.median(redis_p50):.3f} ms (target: ≤ +0.3 ms)")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000, help="per target and row")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16, help="of the throughput row")
    parser.add_argument("--pairs", type=int, default=20,
                        help="local/Redis pairs of the added-p50 measurement")
    parser.add_argument("--pair-requests", type=int, default=200, help="per target and pair")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} before the run; "
          f"{args.requests} requests per target in {args.rounds} rounds")
    up_port, thin_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}/api"
    root = Path(tempfile.mkdtemp(prefix="clawrouter-bench-team-"))
    env = {**os.environ, "BLOCKRUN_WALLET_KEY": "0x" + secrets.token_hex(32),
           "OPENCLAW_CONFIG": str(root / "none.yaml")}
    env.pop("BLOCKRUN_PROXY_PORT", None)
    redis = RedisServer()
    redis.start()
    procs = [subprocess.Popen([sys.executable, str(HERE / "fast_upstream.py"), str(up_port)]),
             subprocess.Popen([sys.executable, str(HERE / "passthrough.py"), str(thin_port),
                               upstream])]
    try:
        redis_state = {"backend": "redis", "redisUrl": redis.url}
        plan = {"clawrouter local, 1 process": ({"backend": "local"}, 1),
                "clawrouter redis, 1 worker": (redis_state, 1),
                "clawrouter redis, --workers 2": (redis_state, 2)}
        targets = {"thin pass-through": f"http://127.0.0.1:{thin_port}/v1/chat/completions"}
        pids: dict[str, int] = {}
        await wait_ready(f"{upstream}/v1/chat/completions")
        for index, (name, (state, workers)) in enumerate(plan.items()):
            port = free_port()
            proc = start_proxy(port, upstream, root / f"proxy{index}", state, workers, env)
            procs.append(proc)
            targets[name] = f"http://127.0.0.1:{port}/v1/chat/completions"
            pids[name] = proc.pid
        for url in targets.values():
            await wait_ready(url, timeout=60)
        started = time.perf_counter()
        pool = process_tree(pids["clawrouter redis, --workers 2"])
        pool_before = [cpu_seconds(pid) for pid in pool]
        cpu = {name: (lambda pid=pid: tree_cpu(pid)) for name, pid in pids.items()}
        busy = await measure(targets, cpu, requests=args.requests, rounds=args.rounds,
                             concurrency=args.concurrency, stream=False, offset=0, warmup=100)
        show(f"concurrency {args.concurrency}, JSON, routed (blockrun/auto), unique bodies",
             busy, "thin pass-through")
        one = busy["clawrouter redis, 1 worker"]["rps"]
        two = busy["clawrouter redis, --workers 2"]["rps"]
        thin = busy["thin pass-through"]["rps"]
        print(f"throughput / thin pass-through: 1 worker {one / thin:.2f}×, "
              f"--workers 2 {two / thin:.2f}× (2 workers / 1 worker = {two / one:.2f}×)")
        used = [cpu_seconds(pid) - before for pid, before in zip(pool, pool_before)]
        print("CPU seconds of the --workers 2 processes (parent, workers): "
              + ", ".join(f"{seconds:.2f}" for seconds in used))
        quiet_targets = {name: targets[name] for name in
                         ("thin pass-through", "clawrouter local, 1 process",
                          "clawrouter redis, 1 worker")}
        quiet = await measure(quiet_targets, cpu, requests=args.requests // 2,
                              rounds=args.rounds, concurrency=1, stream=False, offset=10**6,
                              warmup=100)
        show("concurrency 1, JSON, routed, unique bodies", quiet, "thin pass-through")
        await added_p50(targets, cpu, pairs=args.pairs, requests=args.pair_requests)
        print(f"(measured in {time.perf_counter() - started:.0f} s; load average "
              f"{os.getloadavg()[0]:.1f} at the end)")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis.close()


if __name__ == "__main__":
    run(main)
