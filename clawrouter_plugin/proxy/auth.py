"""API keys on a shared proxy: the middleware that asks every request for one.

Registered by :func:`~.app.create_app` only when keys are required (``server.requireKeys``,
or a ``server.host`` other than loopback), so a local proxy pays nothing for it. Every
request must then carry ``Authorization: Bearer <key>``; a missing, unknown or revoked key
is a 401 before anything is read, routed or paid. The one exception: ``/health`` without an
``Authorization`` header answers with its minimal form (status, service, version) for load
balancers and for the "is a clawrouter already on this port" probe.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web

from ..keys.model import ApiKey
from ..keys.store import KeyStore

API_KEY: web.RequestKey[ApiKey | None] = web.RequestKey("api_key", ApiKey)
MINIMAL_HEALTH: web.RequestKey[bool] = web.RequestKey("minimal_health", bool)
HEALTH_PATH = "/health"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def auth_middleware(keys: KeyStore) -> Callable[[web.Request, Handler],
                                                 Awaitable[web.StreamResponse]]:
    """A middleware that puts the caller's key on ``request[API_KEY]`` or refuses the
    request (errors go through the app's errors middleware, which is outside this one)."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        authorization = request.headers.get("Authorization")
        if authorization is None and request.path == HEALTH_PATH:
            request[MINIMAL_HEALTH] = True
            return await handler(request)
        request[API_KEY] = await keys.authenticate(authorization)
        return await handler(request)

    return authenticate
