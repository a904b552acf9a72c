"""What one write to a local Redis costs the writer, by where Redis runs (not a timed test).

Run: ``.venv/bin/python bench/redis_wakeup.py [--commands N]``.

Starts a real ``redis-server`` on 127.0.0.1 three times: free to run on any CPU, pinned to
another CPU than this process, and pinned to the same CPU. Each time it sends N ``PING``s one
at a time and prints the median and p90 of the ``send`` call (what the proxy's event loop
pays when it writes a script) and of the wait for the reply. On a virtual machine, waking an
idle Redis on another virtual CPU can cost far more than the command itself; the Redis
backend writes twice per request, so this is the floor under what it adds to a request's
latency on that machine (see docs/deploy.md).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.redis_server import free_port, redis_binary  # noqa: E402

PING = b"*1\r\n$4\r\nPING\r\n"


def measure(redis_cpu: int | None, my_cpu: int | None, commands: int) -> tuple[list, list]:
    """Send times and reply waits (seconds) against a fresh redis-server."""
    port = free_port()
    args = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no"]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mask = os.sched_getaffinity(0)
    try:
        if redis_cpu is not None:
            os.sched_setaffinity(server.pid, {redis_cpu})
        if my_cpu is not None:
            os.sched_setaffinity(0, {my_cpu})
        deadline = time.monotonic() + 5
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sends, waits = [], []
        for _ in range(commands):
            start = time.perf_counter()
            sock.send(PING)
            sent = time.perf_counter()
            sock.recv(64)
            sends.append(sent - start)
            waits.append(time.perf_counter() - sent)
        sock.close()
        return sends, waits
    finally:
        os.sched_setaffinity(0, mask)
        server.terminate()
        server.wait(5)


def show(title: str, values: list) -> str:
    values = sorted(values)
    return (f"{title} median {statistics.median(values) * 1e6:6.1f} µs, "
            f"p90 {values[len(values) * 9 // 10] * 1e6:6.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=3000)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    cases = [("Redis on any CPU", None, None)]
    if len(cpus) > 1:
        cases += [("Redis on another CPU", cpus[1], cpus[0]),
                  ("Redis on the same CPU", cpus[0], cpus[0])]
    for title, redis_cpu, my_cpu in cases:
        sends, waits = measure(redis_cpu, my_cpu, args.commands)
        print(f"{title:<24}{show('send', sends)};  {show('reply', waits)}")


if __name__ == "__main__":
    main()
