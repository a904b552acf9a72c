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
# listening on every address: this machine reaches the proxy (and probes it) at these
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1"}
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


def local_address(host: str) -> str:
    """The address this machine reaches a proxy listening on ``host`` at."""
    return _WILDCARDS.get(host, host)


def http_url(host: str, port: int) -> str:
    """``http://host:port`` (an IPv6 address in brackets)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def probe_existing(port: int, timeout: float = 1.0, host: str = HOST) -> dict | None:
    """``/health`` of a clawrouter already on ``host``:``port``; None if the port is free.

    Raises ClawRouterError when something else occupies the port.
    """
    url = f"{http_url(host, port)}/health"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(url) as response:
                data = await response.json(content_type=None)
    except (aiohttp.ClientConnectorError, ConnectionRefusedError):
        return None
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        data = None
    # "degraded" (team mode while Redis is down) is a running clawrouter too
    if isinstance(data, dict) and data.get("service") == "clawrouter" and \
            data.get("status") in ("ok", "degraded"):
        return data
    raise ClawRouterError(
        f"port {port} on {host} is already in use by something that is not clawrouter; "
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
    """Start the proxy on ``server.host`` (127.0.0.1 unless configured; ``port=0`` picks a
    free port) and return its handle.

    If a healthy clawrouter already answers on the port, it is reused: the handle points at
    it and ``close()`` does nothing. With ``sock`` (a listening socket handed over by the
    ``serve --workers`` parent) the proxy serves that socket and never looks for another
    clawrouter: its siblings answer on the same port. A proxy that requires API keys (any
    host but loopback, or ``server.requireKeys``) refuses to start while there is no key to
    use it with.
    """
    plugin = with_overrides(
        config or PluginConfig(), port=port, api_base=api_base,
        data_dir=str(data_dir) if data_dir is not None else None,
    )
    limits = plugin.server
    host, local = limits.host, local_address(limits.host)
    if plugin.port and sock is None:
        existing = await probe_existing(plugin.port, host=local)
        if existing is not None:
            log.info("reusing the clawrouter already running on port %d", plugin.port)
            return ProxyHandle(http_url(local, plugin.port), existing.get("wallet", ""),
                               None, True)
    services = await build_services(plugin, wallet_key=wallet_key, on_routed=on_routed,
                                    on_payment=on_payment, on_low_balance=on_low_balance)
    if limits.keys_required:
        try:
            await _require_a_key(services, host, limits.loopback)
        except BaseException:
            await services.aclose()
            raise
    if setup is not None:
        setup(services)
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
                        loop.create_server(guard, host, plugin.port, reuse_address=True))
    except OSError as exc:
        await runner.cleanup()
        await services.aclose()
        if exc.errno == errno.EADDRINUSE:
            raise ClawRouterError(f"port {plugin.port} on {host} is already in use") from None
        raise ClawRouterError(f"cannot listen on {host}:{plugin.port}: "
                              f"{exc.strerror or exc}") from None
    bound = server.sockets[0].getsockname()[1]
    services.public_url = f"http://localhost:{bound}"
    log.info("clawrouter listening on %s%s (wallet %s)", http_url(host, bound),
             "" if not limits.keys_required else ", API keys required", services.wallet.address)
    return ProxyHandle(http_url(local, bound), services.wallet.address, services, False, runner,
                       server)


async def _require_a_key(services: Services, host: str, loopback: bool) -> None:
    """ClawRouterError unless the key store holds a key that is not revoked."""
    try:
        found = await services.keys.has_active()
    except ClawRouterError as exc:
        raise ClawRouterError(f"cannot start: the API keys cannot be read ({exc.message})"
                              ) from None
    if found:
        return
    how = "create one with `clawrouter keys create --name NAME` (same config and data directory)"
    if loopback:
        raise ClawRouterError(f"server.requireKeys is on, but there is no API key: {how}")
    raise ClawRouterError(
        f"refusing to listen on {host}: a proxy other machines can reach needs API keys, and "
        f"there is none; {how}, or listen on 127.0.0.1 (server.host / --host)")
