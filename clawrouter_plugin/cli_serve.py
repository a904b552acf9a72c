"""``clawrouter serve``: run the proxy in the foreground until SIGINT/SIGTERM.

``--workers N`` (N > 1) runs N proxy processes on the port, see :mod:`.proxy.workers`; each
child is this same command, handed its listening socket through ``--worker-fds``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys

from .config import PluginConfig, load_config, with_overrides
from .errors import ClawRouterError


def _plugin_config(args: argparse.Namespace) -> PluginConfig:
    loaded = load_config(args.config)
    return with_overrides(loaded.plugin, port=args.port, api_base=args.api_base,
                          data_dir=args.data_dir, host=args.host)


async def _serve(args: argparse.Namespace) -> int:
    from .plugin import setup_services
    from .proxy.server import start_proxy

    plugin = _plugin_config(args)
    if args.worker_fds:
        return await _serve_worker(args.worker_fds, plugin)
    handle = await start_proxy(config=plugin, setup=setup_services)
    if handle.reused:
        print(f"clawrouter is already running at {handle.base_url} "
              f"(wallet {handle.wallet_address}); reusing it.")
        return 0
    print(f"clawrouter listening on {handle.base_url}  (OpenAI base URL: {handle.base_url}/v1)")
    if plugin.server.keys_required:
        print(f"listening on {plugin.server.host}; every request needs an API key "
              "(Authorization: Bearer <key>, see `clawrouter keys`)")
    print(f"wallet {handle.wallet_address}  data {plugin.data_path}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        print("clawrouter shutting down...")
        await handle.close()
    return 0


async def _serve_worker(fds: str, plugin: PluginConfig) -> int:
    """One child of ``serve --workers``: serve the inherited socket until SIGTERM/SIGINT or
    until the parent is gone (its pipe reads end-of-file), then stop like ``serve``."""
    from .plugin import setup_services
    from .proxy.server import start_proxy

    listen_fd, parent_fd, ready_fd = (int(fd) for fd in fds.split(","))
    handle = await start_proxy(config=plugin, setup=setup_services,
                               sock=socket.socket(fileno=listen_fd))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(parent_fd, stop.set)  # readable only at end-of-file: the parent died
    os.write(ready_fd, f"{os.getpid()}\n".encode())
    os.close(ready_fd)
    try:
        await stop.wait()
    finally:
        loop.remove_reader(parent_fd)
        await handle.close()
    return 0


def _run(main: object) -> int:
    """Run a coroutine on uvloop's event loop where it is installed."""
    try:
        import uvloop
    except ImportError:  # not available on this platform: the standard loop works too
        return asyncio.run(main)  # type: ignore[arg-type]
    return uvloop.run(main)  # type: ignore[arg-type]


def serve_command(args: argparse.Namespace) -> int:
    """Run the proxy until interrupted: in this process, or as ``--workers`` processes."""
    if args.workers > 1 and not args.worker_fds:
        return _run(_serve_pool(args, _plugin_config(args)))
    return _run(_serve(args))


def check_workers(plugin: PluginConfig, workers: int) -> None:
    """Refuse ``--workers N`` (N > 1) without the shared Redis state (nothing is started)."""
    if workers > 1 and plugin.state.backend != "redis":
        raise ClawRouterError(
            f"--workers {workers} needs state.backend: redis (and state.redisUrl) in the "
            f"config: with the '{plugin.state.backend}' backend every worker would keep its own "
            "budgets, payment dedup and cache, so limits would not hold. Run one worker, or "
            "see docs/deploy.md")


async def _serve_pool(args: argparse.Namespace, plugin: PluginConfig) -> int:
    """The ``--workers`` parent: check, bind, create the wallet once, run the children."""
    from .paths import open_data_dir
    from .payment.wallet import env_wallet, load_or_create_wallet
    from .proxy.server import http_url, local_address, probe_existing
    from .proxy.workers import WorkerPool, listening_sockets

    check_workers(plugin, args.workers)
    host = plugin.server.host
    if plugin.port:
        existing = await probe_existing(plugin.port, host=local_address(host))
        if existing is not None:
            print(f"clawrouter is already running at {http_url(local_address(host), plugin.port)} "
                  f"(wallet {existing.get('wallet', '')}); reusing it.")
            return 0
    if not os.path.lexists(plugin.data_path):  # like build_services: a bad key before mkdir
        env_wallet(os.environ)
    # Created here, once: N children starting together then all load this same wallet.
    wallet = load_or_create_wallet(open_data_dir(plugin.data_path))
    sockets = listening_sockets(host, plugin.port, args.workers)
    base_url = http_url(local_address(host), sockets[0].getsockname()[1])

    def ready(pids: list[int]) -> None:
        print(f"clawrouter listening on {base_url} with {len(pids)} workers (pids "
              f"{' '.join(map(str, pids))})  (OpenAI base URL: {base_url}/v1)", flush=True)
        if plugin.server.keys_required:
            print(f"listening on {host}; every request needs an API key "
                  "(Authorization: Bearer <key>, see `clawrouter keys`)", flush=True)
        print(f"wallet {wallet.address}  data {plugin.data_path}", flush=True)

    command = [sys.executable, "-m", "clawrouter_plugin", *args.argv]
    pool = WorkerPool(command, sockets, args.workers, on_ready=ready)
    try:
        code = await pool.run()
    finally:
        for sock in sockets:
            sock.close()
    print("clawrouter shutting down...", flush=True)
    return code
