"""HTTP routes for images: generation, editing, and serving the local image store.

``POST /v1/images/generations`` and ``POST /v1/images/image2image`` call the one
:class:`~clawrouter_plugin.images.ImageService`; errors propagate as ClawRouterError and the
app's middleware turns them into OpenAI-style JSON. ``GET /images/<name>`` serves only files
the store itself named; anything else (traversal, listing, other names) is a 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from yarl import URL

from ..errors import ClawRouterError
from ..state.sessions import session_id
from .app import read_json

if TYPE_CHECKING:
    from ..images import ImageResult
    from ..services import Services

_NOT_FOUND = {"error": {"message": "image not found", "type": "not_found", "code": "not_found"}}
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def add_image_routes(app: web.Application, services: Services) -> None:
    """Register the image routes on ``app`` (they use ``services.images``)."""

    async def generations(request: web.Request) -> web.Response:
        _refuse_web_pages(request)
        body = await read_json(request)
        result = await services.images.generate(
            prompt=body.get("prompt"), model=body.get("model"), size=body.get("size"),
            n=body.get("n"), session_id=session_id(request.headers, body))
        return _reply(result)

    async def image2image(request: web.Request) -> web.Response:
        _refuse_web_pages(request)
        body = await read_json(request)
        result = await services.images.edit(
            prompt=body.get("prompt"), image=body.get("image"), mask=body.get("mask"),
            model=body.get("model"), size=body.get("size"), n=body.get("n"),
            allow_relative=False, session_id=session_id(request.headers, body))
        return _reply(result)

    async def serve_image(request: web.Request) -> web.StreamResponse:
        path = services.images.store.resolve(request.match_info["name"])
        if path is None:
            return web.json_response(_NOT_FOUND, status=404)
        return web.FileResponse(path, headers={
            "Content-Type": services.images.store.content_type(path),
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff"})

    app.router.add_post("/v1/images/generations", generations)
    app.router.add_post("/v1/images/image2image", image2image)
    app.router.add_get("/images/{name}", serve_image)


def _refuse_web_pages(request: web.Request) -> None:
    """Refuse POSTs a browser sends on behalf of a non-local web page.

    These routes spend money and read local image files; a page on another site (or a DNS
    rebinding one) must not be able to trigger them. Programs (curl, SDKs) send no Origin.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return
    try:
        host = URL(origin).host
    except ValueError:
        host = None
    if host not in _LOCAL_HOSTS:
        raise ClawRouterError("requests from web pages on other sites are not allowed",
                              status=403, code="forbidden_origin")


def _reply(result: ImageResult) -> web.Response:
    headers = {"x-clawrouter-model": result.model, "x-clawrouter-size": result.size,
               "x-clawrouter-cost-usd": f"{result.cost_usd:.6f}"}
    return web.json_response(result.to_openai(), headers=headers)

