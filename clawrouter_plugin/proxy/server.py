"""Starting and stopping the proxy: ``start_proxy`` (programmatic) and proxy reuse."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import aiohttp
from aiohttp import web

from ..config import PluginConfig, with_overrides
from ..errors import ClawRouterError
from ..services import Services, build_services
from .app import create_app
from .guard import ConnectionGuard, ConnectionLimits

log = logging.getLogger("clawrouter.server")
HOST = "127.0.0.1"
SHUTDOWN_GRACE_SECONDS = 5.0


@dataclass
class ProxyHandle:
    """A running (or reused) proxy."""

    base_url: str
    wallet_address: str
    services: Services | None
    reused: bool
    _runner: web.AppRunner | None = None
    _server: asyncio.AbstractServer | None = None

    async def close(self) -> None:
        """Stop serving: stop listening, give the chat work in flight SHUTDOWN_GRACE_SECONDS
        to finish (what is left ends with a 503 error), then close. No-op when reused."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        if self._server is not None:
            self._server.close()  # stop listening
        if self.services is not None:
            await self.services.pipeline.drain(SHUTDOWN_GRACE_SECONDS)
        await runner.cleanup()
        if self.services is not None:
            await self.services.aclose()


async def probe_existing(port: int, timeout: float = 1.0) -> dict | None:
    """``/health`` of a clawrouter already on ``port``; None if the port is free.

    Raises ClawRouterError when something else occupies the port.
    """
    url = f"http://{HOST}:{port}/health"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(url) as response:
                data = await response.json(content_type=None)
    except (aiohttp.ClientConnectorError, ConnectionRefusedError):
        return None
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        data = None
    if isinstance(data, dict) and data.get("service") == "clawrouter" and data.get("status") == "ok":
        return data
    raise ClawRouterError(
        f"port {port} on {HOST} is already in use by something that is not clawrouter; "
        "stop it or choose another port with --port / BLOCKRUN_PROXY_PORT"
    )


async def start_proxy(
    *,
    wallet_key: str | None = None,
    port: int | None = None,
    api_base: str | None = None,
    data_dir: str | Path | None = None,
    config: PluginConfig | None = None,
    on_routed: Callable[[Any], None] | None = None,
    on_payment: Callable[[Any], None] | None = None,
    on_low_balance: Callable[[Any], None] | None = None,
    setup: Callable[[Services], None] | None = None,
    sock: socket.socket | None = None,
) -> ProxyHandle:
    """Start the proxy on 127.0.0.1 (``port=0`` picks a free port) and return its handle.

    If a healthy clawrouter already answers on the port, it is reused: the handle points at
    it and ``close()`` does nothing. With ``sock`` (a listening socket handed over by the
    ``serve --workers`` parent) the proxy serves that socket and never looks for another
    clawrouter: its siblings answer on the same port.
    """
    plugin = with_overrides(
        config or PluginConfig(), port=port, api_base=api_base,
        data_dir=str(data_dir) if data_dir is not None else None,
    )
    if plugin.port and sock is None:
        existing = await probe_existing(plugin.port)
        if existing is not None:
            log.info("reusing the clawrouter already running on port %d", plugin.port)
            return ProxyHandle(f"http://{HOST}:{plugin.port}", existing.get("wallet", ""),
                               None, True)
    services = await build_services(plugin, wallet_key=wallet_key, on_routed=on_routed,
                                    on_payment=on_payment, on_low_balance=on_low_balance)
    if setup is not None:
        setup(services)
    limits = plugin.server
    runner = web.AppRunner(create_app(services), access_log=None,
                           shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
                           keepalive_timeout=limits.idle_timeout_seconds)
    await runner.setup()
    assert runner.server is not None
    guard = ConnectionGuard(runner.server, ConnectionLimits(
        max_connections=limits.max_connections, idle_seconds=limits.idle_timeout_seconds,
        header_seconds=limits.header_timeout_seconds, body_seconds=limits.body_timeout_seconds))
    try:
        loop = asyncio.get_running_loop()
        server = await (loop.create_server(guard, sock=sock) if sock is not None else
                        loop.create_server(guard, HOST, plugin.port, reuse_address=True))
    except OSError as exc:
        await runner.cleanup()
        await services.aclose()
        if exc.errno == errno.EADDRINUSE:
            raise ClawRouterError(f"port {plugin.port} on {HOST} is already in use") from None
        raise ClawRouterError(f"cannot listen on {HOST}:{plugin.port}: {exc.strerror}") from None
    bound = server.sockets[0].getsockname()[1]
    services.public_url = f"http://localhost:{bound}"
    log.info("clawrouter listening on http://%s:%d (wallet %s)", HOST, bound,
             services.wallet.address)
    return ProxyHandle(f"http://{HOST}:{bound}", services.wallet.address, services, False, runner,
                       server)
