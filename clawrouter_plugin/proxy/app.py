"""The aiohttp application: routes translate HTTP to pipeline calls and errors to HTTP."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import time
from typing import TYPE_CHECKING, Awaitable, Callable

from aiohttp import web

from .. import USER_AGENT_PREFIX, __version__
from ..errors import BadRequest, BudgetExceeded, ClawRouterError, ModelNotFound, Unauthorized
from ..payment.tab import PaymentTab
from ..state.sessions import session_id
from .auth import API_KEY, MINIMAL_HEALTH, auth_middleware
from .chat_format import DONE
from .guard import request_started
from .recorder import record_payments
from .request_json import parse_object

if TYPE_CHECKING:
    from ..services import Services

log = logging.getLogger("clawrouter.proxy")
SERVICES: web.AppKey["Services"] = web.AppKey("services")
MODEL_LIST: web.AppKey[dict] = web.AppKey("model_list", dict)
# listening on more than loopback (behind API keys): any Host header is fine
ANY_HOST: web.AppKey[bool] = web.AppKey("any_host", bool)
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length",
                         "content-encoding", "host", "upgrade", "proxy-authorization",
                         "authorization"})
EARLY_ERROR_SECONDS = 0.25  # wait this long for a quick failure before committing to SSE
# upstream routes passed through as they are (other /v1/ paths are a 404, never forwarded).
# Only POSTs: a GET is never paid, and the GETs clients use (/v1/models) are answered here.
FORWARDED_PATHS = ("/v1/embeddings",)
_STATUS_TYPES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def error_response(exc: ClawRouterError) -> web.Response:
    """The one place a ClawRouterError becomes an HTTP answer."""
    headers = {"X-ClawRouter-Cost-Cap-Exceeded": "1"} if isinstance(exc, BudgetExceeded) \
        else {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return web.json_response(exc.to_dict(), status=exc.status, headers=headers, dumps=_dumps)


_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
# what a browser says about who started a request; anything else (cross-site) is refused.
# same-site is a page on this same loopback host name at another port: local, like its Origin.
_LOCAL_FETCH_SITES = frozenset({"same-origin", "same-site", "none"})
_FOREIGN_PAGE = "requests started by web pages on other sites are not allowed"


def _host_of(value: str) -> str:
    host = value.rsplit("@", 1)[-1]
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.split(":", 1)[0].lower()


def _is_local(host: str) -> bool:
    """``host`` (from _host_of) names this machine: localhost or a loopback address."""
    if host in _LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_local_page(url: str) -> bool:
    """An Origin or Referer value belongs to a page on this machine (``null`` never does)."""
    scheme, _, rest = url.partition("://")
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return scheme.lower() in ("http", "https") and _is_local(_host_of(authority))


def refuse_foreign_callers(request: web.Request) -> None:
    """Only local programs may use the proxy: it spends money and reads local files.

    A web page elsewhere (or a DNS-rebinding one) reaches us with a foreign Host, or its
    browser names the page in Origin / Referer or calls it cross-site in Sec-Fetch-Site:
    refused on every route and method, GETs included (an ``<img>`` tag sends a GET).
    Command-line tools and SDKs send a local Host and none of the others. clawrouter's own
    outgoing requests (its user agent) are refused on ``/v1/`` routes. A proxy listening
    beyond loopback asks for API keys instead of a local Host (the names it is reached by are
    not known).
    """
    headers = request.headers
    if not request.app.get(ANY_HOST) and not _is_local(_host_of(headers.get("Host", "localhost"))):
        raise ClawRouterError("requests for other host names are not served", status=403,
                              code="forbidden_host")
    origin = headers.get("Origin")
    referer = headers.get("Referer")
    fetch_site = headers.get("Sec-Fetch-Site")
    if (origin is not None and not _is_local_page(origin)) or \
            (referer is not None and not _is_local_page(referer)) or \
            (fetch_site is not None and fetch_site.lower() not in _LOCAL_FETCH_SITES):
        raise ClawRouterError(_FOREIGN_PAGE, status=403, code="forbidden_origin")
    # clawrouter calling itself (an image URL or --api-base pointing here) would loop or pay
    # for something nobody asked for
    if request.path.startswith("/v1/") and \
            headers.get("User-Agent", "").startswith(USER_AGENT_PREFIX):
        raise ClawRouterError("clawrouter does not serve its own requests (an image URL or "
                              "--api-base points at this proxy)", status=508,
                              code="loop_detected")


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every failure becomes an OpenAI-style JSON error; tracebacks go to the log only."""
    request_started(request)
    try:
        refuse_foreign_callers(request)
        return await handler(request)
    except ClawRouterError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = _STATUS_TYPES.get(exc.status, "invalid_request_error")
        message = exc.text if exc.status != 413 else "request body is larger than the limit"
        body = {"error": {"message": message or exc.reason, "type": kind, "code": kind}}
        return web.json_response(body, status=exc.status, dumps=_dumps)
    except Exception as exc:  # noqa: BLE001 - never a traceback to the client
        transport = request.transport
        if isinstance(exc, ConnectionResetError) and (transport is None or transport.is_closing()):
            log.info("client went away during %s %s", request.method, request.path)
            return web.Response(status=499)  # "client closed request": aiohttp drops it
        log.exception("unexpected error on %s %s", request.method, request.path)
        body = {"error": {"message": "internal error in clawrouter (see its log)",
                          "type": "internal_error", "code": "internal_error"}}
        return web.json_response(body, status=500, dumps=_dumps)


async def read_json(request: web.Request) -> dict:
    """The request body as a JSON object, or a 400/413 error."""
    return parse_object(await request.read())


async def chat_completions(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    body = await read_json(request)
    reply = await services.pipeline.chat(body, request.headers, api_key=request.get(API_KEY))
    if body.get("stream") is not True:
        return web.Response(body=await reply.json_bytes(), content_type="application/json",
                            headers=reply.headers)
    await reply.first(EARLY_ERROR_SECONDS)
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache", **reply.headers,
    })
    await response.prepare(request)
    try:
        async for data in reply.sse():
            if data is DONE:  # always last: it goes out with the end of the body, one write
                await response.write_eof(data)
                return response
            await response.write(data)
    except (ConnectionResetError, ConnectionError):
        log.info("client went away during a stream")
    return response


def _model_list(services: "Services") -> dict:
    catalog = services.catalog
    created = int(time.time())
    rows = []

    def add(model_id: str, kind: str, target: str | None = None) -> None:
        owner = model_id.split("/", 1)[0] if "/" in model_id else "blockrun"
        row = {"id": model_id, "object": "model", "created": created, "owned_by": owner,
               "kind": kind}
        if target:
            row["target"] = target
        rows.append(row)

    for profile in catalog.profiles:
        add(profile, "profile")
    for model_id in catalog.chat:
        add(model_id, "chat")
    for alias, target in catalog.aliases.items():
        add(alias, "alias", target)
    for model_id in catalog.images:
        add(model_id, "image")
    return {"object": "list", "data": rows}


async def models(request: web.Request) -> web.Response:
    return web.json_response(request.app[MODEL_LIST], dumps=_dumps)


async def model(request: web.Request) -> web.Response:
    """One row of the model list (``client.models.retrieve``), answered locally."""
    name = request.match_info["model"]
    for row in request.app[MODEL_LIST]["data"]:
        if row["id"] == name:
            return web.json_response(row, dumps=_dumps)
    raise ModelNotFound(f"model {name!r} is not in the catalog (see GET /v1/models)")


async def health(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = {"status": "ok", "service": "clawrouter", "version": __version__}
    if request.get(MINIMAL_HEALTH):  # a shared proxy asked without an API key: no more
        return web.json_response(body, dumps=_dumps)
    body.update({
        "pid": os.getpid(),  # which process answered (`serve --workers` runs several)
        "wallet": services.wallet.address,
        "chain": "base",
        "network": services.config.payment.allowed_assets[0].network
        if services.config.payment.allowed_assets else None,
    })
    if services.redis is not None:  # team mode: is the shared state server reachable?
        await services.redis.ping()
        body["redis"] = services.redis.health()
        if not services.redis.healthy:
            body["status"] = "degraded"
    full = request.query.get("full") in ("1", "true")
    info = await services.balance.get() if full else services.balance.peek()  # peek: no RPC
    body["balance"] = info.usd
    if full:
        body.update(low=info.low, empty=info.empty, balanceError=info.error)
    try:
        await services.exclusions.all()  # notices a damaged list before a request is routed
        body["warnings"] = list(services.exclusions.warnings)
    except ClawRouterError as exc:  # e.g. an unreadable file: still healthy enough to say so
        body["warnings"] = [*services.exclusions.warnings, exc.message]
    return web.json_response(body, dumps=_dumps)


async def cache_stats(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SERVICES].cache.stats(),
                             headers={"Cache-Control": "no-cache"}, dumps=_dumps)


async def stats(request: web.Request) -> web.Response:
    """Usage statistics (this process's log, or the team's totals with the redis backend)."""
    services = request.app[SERVICES]
    if request.method == "DELETE":
        deleted = await services.stats.clear()
        return web.json_response({"cleared": True, "deletedFiles": deleted})
    raw_days = request.query.get("days", "7")
    if not (raw_days.isascii() and raw_days.isdigit()) or len(raw_days) > 6:
        raise BadRequest(f"days must be a whole number of days, got {raw_days!r}")
    totals = await services.stats.aggregate(int(raw_days))
    return web.json_response(totals, headers={"Cache-Control": "no-cache"}, dumps=_dumps)


async def forward(request: web.Request) -> web.StreamResponse:
    """A POST to one of FORWARDED_PATHS goes to the upstream as it is, through the paying
    client; its payment is claimed from the session's budget (and the caller's API key's,
    ``request[API_KEY]`` on a shared proxy) like a chat request's."""
    services = request.app[SERVICES]
    body = await request.read()
    fields = parse_object(body)  # a 400 before paying for something that is not JSON
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    model = fields.get("model")
    caller = request.get(API_KEY)
    tab = PaymentTab(session_id(request.headers, fields), "forward", request.path,
                     model=model if isinstance(model, str) and model else request.path,
                     key=caller.id if caller is not None else None)
    reservation = await services.spend.reserve(tab.session, 0.0, api_key=caller)
    started = time.perf_counter()
    try:
        response, data = await services.client.request(
            request.method, request.path_qs, body=body, headers=headers,
            price_key=request.path, claim=reservation.claim, tab=tab,
        )
    finally:  # what may have been settled counts, and every payment signed is recorded
        await reservation.commit(tab.spent_usd())
        record_payments(services.usage, tab, requested=tab.model, tier="FORWARD",
                        latency_ms=(time.perf_counter() - started) * 1000)
    out_headers = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}
    return web.Response(status=response.status, body=data, headers=out_headers)


async def not_found(request: web.Request) -> web.Response:
    body = {"error": {"message": f"no route for {request.method} {request.path}",
                      "type": "not_found", "code": "not_found"}}
    return web.json_response(body, status=404, dumps=_dumps)


def create_app(services: "Services") -> web.Application:
    """The proxy application for ``services``."""
    from .command_route import add_command_routes
    from .image_routes import add_image_routes

    server = services.config.server
    middlewares = [errors_middleware]
    if server.keys_required:
        middlewares.append(auth_middleware(services.keys))
    app = web.Application(middlewares=middlewares, client_max_size=services.config.max_body_bytes)
    app[SERVICES] = services
    app[ANY_HOST] = not server.loopback
    app[MODEL_LIST] = _model_list(services)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model:.+}", model)
    app.router.add_route("*", "/health", health)
    app.router.add_get("/cache", cache_stats)
    app.router.add_route("GET", "/stats", stats)
    app.router.add_route("DELETE", "/stats", stats)
    add_image_routes(app, services)
    add_command_routes(app)
    for path in FORWARDED_PATHS:
        app.router.add_post(path, forward)
    app.router.add_route("*", "/{tail:.*}", not_found)  # anything else, other /v1/ paths too
    return app


__all__ = ["create_app", "error_response", "read_json", "SERVICES"]
