"""A thin aiohttp pass-through proxy (the comparison point for proxy overhead).

``python bench/passthrough.py PORT UPSTREAM_BASE [--uvloop]`` forwards POST
/v1/chat/completions, on the standard asyncio loop unless ``--uvloop`` is given.
"""

from __future__ import annotations

import sys

import aiohttp
from aiohttp import web


def main() -> None:
    port, upstream = int(sys.argv[1]), sys.argv[2]
    loop_factory = None
    if "--uvloop" in sys.argv[3:]:
        import uvloop
        loop_factory = uvloop.new_event_loop

    async def session_ctx(app: web.Application):
        app["session"] = aiohttp.ClientSession()
        yield
        await app["session"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        async with request.app["session"].post(
            upstream + "/v1/chat/completions", data=body,
            headers={"content-type": "application/json"},
        ) as upstream_response:
            response = web.StreamResponse(
                status=upstream_response.status,
                headers={"Content-Type": upstream_response.headers.get("content-type", "")},
            )
            await response.prepare(request)
            async for chunk in upstream_response.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/v1/chat/completions", forward)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None,
                loop=loop_factory() if loop_factory else None)


if __name__ == "__main__":
    main()
