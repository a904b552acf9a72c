"""``clawrouter serve`` (minimal until the proxy lands): answers GET /health on 127.0.0.1."""

from __future__ import annotations

import argparse

from aiohttp import web

from ..config import load_config, with_overrides


async def _health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def serve_command(args: argparse.Namespace) -> int:
    """Run the proxy until interrupted."""
    loaded = load_config(args.config)
    plugin = with_overrides(loaded.plugin, port=args.port, api_base=args.api_base,
                            data_dir=args.data_dir)
    app = web.Application()
    app.router.add_get("/health", _health)
    web.run_app(app, host="127.0.0.1", port=plugin.port, print=None)
    return 0
