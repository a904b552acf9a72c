"""HTTP routes for images: generation, editing, and serving the local image store.

``POST /v1/images/generations`` and ``POST /v1/images/image2image`` call the one
:class:`~clawrouter_plugin.images.ImageService`; errors propagate as ClawRouterError and the
app's middleware turns them into OpenAI-style JSON. ``GET /images/<name>`` serves only images
the store itself named, with the content type of their real format and ``nosniff``; anything
else (traversal, listing, other names, a non-image file under a store name) is a 404.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from ..errors import BadRequest
from ..state.sessions import session_id
from .app import read_json
from .auth import API_KEY

if TYPE_CHECKING:
    from ..images import ImageResult
    from ..services import Services

_NOT_FOUND = {"error": {"message": "image not found", "type": "not_found", "code": "not_found"}}


def add_image_routes(app: web.Application, services: Services) -> None:
    """Register the image routes on ``app`` (they use ``services.images``)."""

    async def generations(request: web.Request) -> web.Response:
        body = await read_json(request)
        response_format = _response_format(body)
        result = await services.images.generate(
            prompt=body.get("prompt"), model=body.get("model"), size=body.get("size"),
            n=body.get("n"), session_id=session_id(request.headers, body),
            api_key=request.get(API_KEY))
        return await _reply(result, response_format)

    async def image2image(request: web.Request) -> web.Response:
        body = await read_json(request)
        response_format = _response_format(body)
        result = await services.images.edit(
            prompt=body.get("prompt"), image=body.get("image"), mask=body.get("mask"),
            model=body.get("model"), size=body.get("size"), n=body.get("n"),
            allow_relative=False, session_id=session_id(request.headers, body),
            api_key=request.get(API_KEY))
        return await _reply(result, response_format)

    async def serve_image(request: web.Request) -> web.StreamResponse:
        found = await asyncio.to_thread(services.images.store.resolve,
                                        request.match_info["name"])
        if found is None:
            return web.json_response(_NOT_FOUND, status=404)
        path, fmt = found
        return web.FileResponse(path, headers={
            "Content-Type": fmt.mime,
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff"})

    app.router.add_post("/v1/images/generations", generations)
    app.router.add_post("/v1/images/image2image", image2image)
    app.router.add_get("/images/{name}", serve_image)


def _response_format(body: dict) -> str:
    """``url`` (the default) or ``b64_json``; anything else is refused before paying."""
    value = body.get("response_format")
    if value is None:
        return "url"
    if value not in ("url", "b64_json"):
        raise BadRequest(f'response_format must be "url" or "b64_json", got {value!r}',
                         code="invalid_response_format")
    return value


async def _reply(result: ImageResult, response_format: str) -> web.Response:
    headers = {"x-clawrouter-model": result.model, "x-clawrouter-size": result.size,
               "x-clawrouter-cost-usd": f"{result.cost_usd:.6f}"}
    if response_format == "b64_json":  # reads the stored files back: not on the event loop
        payload = await asyncio.to_thread(result.to_openai, response_format)
    else:
        payload = result.to_openai()
    return web.json_response(payload, headers=headers)
