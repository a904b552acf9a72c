"""CPU cost per request as instructions counted by valgrind's callgrind: exact and repeatable,
unlike timings on a shared machine (here they drift by up to 2x within an hour).

Run: ``.venv/bin/python bench/instructions.py [--target clawrouter|thin|thin-uvloop]
[--model M] [--stream]`` (needs ``valgrind``: ``apt-get install valgrind``). The target runs
under callgrind in front of the fast local upstream and answers 100, then 600 unique requests
at concurrency 1; the difference between the two totals, divided by 500, is the cost of one
request with start-up and shutdown taken out. Takes about two minutes.

Under callgrind everything runs ~50x slower, so the proxy's write-behind delays are stretched
50x too (``--stretched-serve`` below): otherwise a cache save would cover 50x fewer requests
than in real time and count 50x too often.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_proxy  # noqa: E402  (bench/ is not a package)

SLOWDOWN = 50


def stretched_serve(argv: list[str]) -> int:
    """``clawrouter serve`` with the background writers' delays stretched by SLOWDOWN."""
    from clawrouter_plugin import log_output, usage
    from clawrouter_plugin.cli import main
    from clawrouter_plugin.state import cache

    cache.SAVE_DELAY_SECONDS *= SLOWDOWN
    usage.WRITE_DELAY_SECONDS *= SLOWDOWN
    log_output.DELAY_SECONDS *= SLOWDOWN
    return main(["serve", *argv])


async def _ready(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as resp:
                    await resp.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.5)
    raise RuntimeError(f"{url} did not come up")


async def count(target: str, requests: int, stream: bool) -> int:
    """Instructions callgrind counted for the target's whole life, answering ``requests``."""
    up_port, port = bench_proxy.free_port(), bench_proxy.free_port()
    base = f"http://127.0.0.1:{up_port}/api"
    data_dir = tempfile.mkdtemp(prefix="clawrouter-instructions-")
    env = {**os.environ, "BLOCKRUN_WALLET_KEY": "0x" + secrets.token_hex(32),
           "OPENCLAW_CONFIG": os.path.join(data_dir, "none.yaml"), "PYTHONHASHSEED": "0"}
    upstream = subprocess.Popen([sys.executable, str(HERE / "fast_upstream.py"), str(up_port)])
    callgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    if target == "clawrouter":
        command = [sys.executable, __file__, "--stretched-serve", "--port", str(port),
                   "--api-base", base, "--data-dir", data_dir]
    else:
        command = [sys.executable, str(HERE / "passthrough.py"), str(port), base]
        command += ["--uvloop"] if target == "thin-uvloop" else []
    proc = subprocess.Popen(callgrind + command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        await _ready(f"http://127.0.0.1:{port}/health")
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        await bench_proxy.run_load(url, total=30, concurrency=1, unique=True, stream=stream,
                                   offset=10**8)  # warm-up, in both runs
        await bench_proxy.run_load(url, total=requests, concurrency=1, unique=True,
                                   stream=stream, offset=0)
    finally:
        proc.terminate()
        stderr = proc.communicate(timeout=600)[1]
        upstream.terminate()
        upstream.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
    found = re.search(r"Collected : (\d+)", stderr)
    if found is None:
        raise RuntimeError(f"callgrind reported no total:\n{stderr[-2000:]}")
    return int(found.group(1))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", choices=("clawrouter", "thin", "thin-uvloop"),
                        default="clawrouter")
    parser.add_argument("--model", default="blockrun/auto")
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    bench_proxy.MODEL = args.model
    few, many = await asyncio.gather(count(args.target, 100, args.stream),
                                     count(args.target, 600, args.stream))
    mode = "stream" if args.stream else "json"
    print(f"{args.target} ({mode}, model {args.model}): "
          f"{(many - few) / 500 / 1000:,.0f}k instructions per request")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--stretched-serve"]:
        sys.exit(stretched_serve(sys.argv[2:]))
    asyncio.run(main())
