"""Proxy overhead benchmark: the proxy vs the upstream directly vs a thin aiohttp pass-through.

Run: ``.venv/bin/python bench/bench_proxy.py [--requests N] [--rounds R] [--model M]``
(default model ``blockrun/auto``: every request is routed). Everything runs on
127.0.0.1 in separate processes (upstream, proxy, two pass-throughs: one on the standard
asyncio loop, one on uvloop like the proxy); this process generates the load. Prints p50/p99
latency, throughput, CPU per request and RSS of the proxy process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Awaitable, Callable

import aiohttp

HERE = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def wait_ready(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.post(url, json={"model": "x", "messages": [
                        {"role": "user", "content": "warm"}]}) as resp:
                    await resp.read()
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.02)
    raise RuntimeError(f"{url} did not come up")


MODEL = "blockrun/auto"  # set from --model


def body(index: int, unique: bool, stream: bool) -> dict:
    text = f"Summarise the benefits of unit tests in one line. #{index if unique else 0}"
    return {"model": MODEL, "messages": [{"role": "user", "content": text}],
            "max_tokens": 64, "stream": stream}


async def run_load(url: str, *, total: int, concurrency: int, unique: bool, stream: bool,
                   offset: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    counter = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            for index in counter:
                payload = json.dumps(body(offset + index, unique, stream)).encode()
                started = time.perf_counter()
                async with session.post(url, data=payload,
                                        headers={"content-type": "application/json"}) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"{url}: HTTP {resp.status}")
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return latencies, total / elapsed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def measure(targets: dict[str, str], cpu: dict[str, Callable[[], float]], *,
                  requests: int, rounds: int, concurrency: int, stream: bool, offset: int,
                  warmup: int) -> dict[str, dict]:
    """p50/p99 (ms), req/s and CPU ms per request (for targets in ``cpu``, which reads a
    target's CPU seconds so far) of each target. The targets take turns in each round, so a
    busy moment of the machine hits all of them; bodies are unique from ``offset`` on."""
    per_round = max(1, requests // rounds)
    rows = {name: {"lat": [], "elapsed": 0.0, "cpu": 0.0} for name in targets}
    for index, url in enumerate(targets.values()):  # warm-up: connections, lazy imports
        await run_load(url, total=warmup, concurrency=concurrency, unique=True, stream=stream,
                       offset=10**8 + offset + 1000 * index)
    for round_index in range(rounds):
        for index, (name, url) in enumerate(targets.items()):
            read_cpu = cpu.get(name)
            before = read_cpu() if read_cpu else 0.0
            start = offset + (round_index * len(targets) + index) * per_round
            lat, rps = await run_load(url, total=per_round, concurrency=concurrency,
                                      unique=True, stream=stream, offset=start)
            rows[name]["lat"] += lat
            rows[name]["elapsed"] += per_round / rps
            rows[name]["cpu"] += read_cpu() - before if read_cpu else 0.0
    total = per_round * rounds
    return {name: {"p50": pct(row["lat"], 0.5), "p99": pct(row["lat"], 0.99),
                   "rps": total / row["elapsed"],
                   "cpu_ms": row["cpu"] / total * 1000 if name in cpu else None}
            for name, row in rows.items()}


async def main() -> None:
    global MODEL
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000, help="per row (split over rounds)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="each row is measured in this many slices, the targets taking "
                             "turns, so that a busy moment on the machine hits all of them")
    parser.add_argument("--model", default="blockrun/auto",
                        help="model of every request: a profile (routed, the default) or an "
                             "explicit model such as blockrun/deepseek (not routed)")
    args = parser.parse_args()
    MODEL = args.model
    print(f"model {MODEL}, {args.requests} requests per row in {args.rounds} rounds")
    up_port, proxy_port, thin_port, thin_uv_port = free_port(), free_port(), free_port(), free_port()
    upstream_base = f"http://127.0.0.1:{up_port}/api"
    data_dir = tempfile.mkdtemp(prefix="clawrouter-bench-")
    env = {**os.environ, "BLOCKRUN_WALLET_KEY": "0x" + secrets.token_hex(32),
           "OPENCLAW_CONFIG": os.path.join(data_dir, "none.yaml")}
    thin = subprocess.Popen([sys.executable, str(HERE / "passthrough.py"), str(thin_port),
                             upstream_base])
    thin_uv = subprocess.Popen([sys.executable, str(HERE / "passthrough.py"), str(thin_uv_port),
                                upstream_base, "--uvloop"])
    procs = [subprocess.Popen([sys.executable, str(HERE / "fast_upstream.py"), str(up_port)]),
             thin, thin_uv]
    try:
        targets = {
            "direct": f"{upstream_base}/v1/chat/completions",
            "thin pass-through": f"http://127.0.0.1:{thin_port}/v1/chat/completions",
            "thin on uvloop": f"http://127.0.0.1:{thin_uv_port}/v1/chat/completions",
            "clawrouter": f"http://127.0.0.1:{proxy_port}/v1/chat/completions",
        }
        for name, url in targets.items():
            if name != "clawrouter":
                await wait_ready(url)
        started = time.perf_counter()  # the proxy starts alone, on a quiet machine
        proxy = subprocess.Popen([sys.executable, "-m", "clawrouter_plugin", "serve", "--port",
                                  str(proxy_port), "--api-base", upstream_base,
                                  "--data-dir", data_dir],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proxy)
        await wait_ready(targets["clawrouter"])
        print(f"proxy ready after {time.perf_counter() - started:.2f} s (incl. interpreter start)")
        pids = {"clawrouter": proxy.pid, "thin pass-through": thin.pid,
                "thin on uvloop": thin_uv.pid}
        results: dict[tuple, dict] = {}
        cpu = {name: (lambda pid=pid: cpu_seconds(pid)) for name, pid in pids.items()}
        for stream in (False, True):
            for concurrency in (1, 16):
                measured = await measure(
                    targets, cpu, requests=args.requests, rounds=args.rounds,
                    concurrency=concurrency, stream=stream,
                    offset=len(results) * 10 * args.requests, warmup=200)
                for name, row in measured.items():
                    results[(stream, concurrency, name)] = row
        print(f"\n{'mode':<10}{'conc':>5}  {'target':<18}{'p50 ms':>8}{'p99 ms':>8}{'req/s':>9}"
              f"{'added p50':>11}{'CPU/req':>15}")
        for (stream, concurrency, name), row in results.items():
            direct = results[(stream, concurrency, "direct")]
            added = row["p50"] - direct["p50"]
            cpu = f"{row['cpu_ms']:.3f} ms" if row["cpu_ms"] is not None else ""
            print(f"{'stream' if stream else 'json':<10}{concurrency:>5}  {name:<18}{row['p50']:>8.3f}"
                  f"{row['p99']:>8.3f}{row['rps']:>9.0f}{added:>10.3f} {cpu:>15}")
        for stream in (False, True):
            ours = results[(stream, 16, "clawrouter")]["rps"]
            print(f"throughput at concurrency 16 ({'stream' if stream else 'json'}): "
                  f"{ours / results[(stream, 16, 'thin pass-through')]['rps']:.0%} of the thin "
                  f"pass-through, {ours / results[(stream, 16, 'thin on uvloop')]['rps']:.0%} "
                  f"of it on uvloop")
        # cache hits: the same body over and over (the first one fills the cache)
        hit_lat, hit_rps = await run_load(targets["clawrouter"], total=args.requests,
                                          concurrency=1, unique=False, stream=False, offset=0)
        print(f"cache hit: p50 {pct(hit_lat, 0.5):.3f} ms, p99 {pct(hit_lat, 0.99):.3f} ms, "
              f"{hit_rps:.0f} req/s (the upstream directly: p50 "
              f"{results[(False, 1, 'direct')]['p50']:.3f} ms)")
        print(f"proxy RSS after load: {rss_mb(proxy.pid):.1f} MB")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def run(main: Callable[[], Awaitable[None]]) -> None:
    """Run a benchmark's ``main`` on uvloop where it is installed: the load generator too, so
    less of the machine's cores is left to the targets."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


if __name__ == "__main__":
    run(main)
