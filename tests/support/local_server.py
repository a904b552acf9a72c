"""A base for the test servers: an aiohttp app on 127.0.0.1 on a free port."""

from __future__ import annotations

from typing import Self

from aiohttp import web


class LocalServer:
    """Subclasses build their app in :meth:`make_app`; ``port`` is set once started."""

    port = 0
    _runner: web.AppRunner | None = None

    def make_app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> Self:
        """Listen on 127.0.0.1 on a free port."""
        self._runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
