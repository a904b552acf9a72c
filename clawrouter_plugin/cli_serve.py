"""``clawrouter serve``: run the proxy in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal

from .config import load_config, with_overrides


async def _serve(args: argparse.Namespace) -> int:
    from .plugin import setup_services
    from .proxy.server import start_proxy

    loaded = load_config(args.config)
    plugin = with_overrides(loaded.plugin, port=args.port, api_base=args.api_base,
                            data_dir=args.data_dir, host=args.host)
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


def serve_command(args: argparse.Namespace) -> int:
    """Run the proxy until interrupted (on uvloop's event loop where it is installed)."""
    try:
        import uvloop
    except ImportError:  # not available on this platform: the standard loop works too
        return asyncio.run(_serve(args))
    return uvloop.run(_serve(args))
