"""Fixtures: the image service wired to the x402 test upstream, and an app with its routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from clawrouter_plugin.catalog import load_catalog
from clawrouter_plugin.config import ImageConfig, PaymentConfig
from clawrouter_plugin.images import ImageService, ImageStore
from clawrouter_plugin.outbound import OutboundPolicy
from clawrouter_plugin.payment import PaymentPolicy, Wallet, X402Client
from clawrouter_plugin.proxy.app import errors_middleware
from clawrouter_plugin.proxy.image_routes import add_image_routes
from clawrouter_plugin.usage import UsageLog
from tests.images.imagedata import data_uri, png
from tests.support.x402_upstream import IMAGE_EDIT_PATH, IMAGE_PATH, X402TestUpstream

CATALOG = load_catalog()
RESULT = png(3, 3, (0, 128, 255))  # what the upstream "generates"


def catalog_price(call: Any) -> float | None:
    """Like BlockRun: the catalog price of the requested model and size, times n."""
    body = call.json() or {}
    model = CATALOG.images.get(str(body.get("model")))
    if model is None:
        return None
    return round(model.price(str(body.get("size", "1024x1024"))) * int(body.get("n") or 1), 6)


def image_handler(mode: str = "data", *, revised: bool = True):
    """An OpenAI-style images answer, one entry per ``n``.

    ``mode``: "data" (a data URI in ``url``), "b64" (``b64_json``), "url" (a URL the upstream
    serves), "dead-url" (a URL that 404s), "empty" (no images).
    """
    async def handler(call: Any) -> web.StreamResponse:
        body = call.json()
        if not isinstance(body, dict) or not body.get("prompt"):
            return web.json_response({"error": "prompt required"}, status=400)
        count = int(body.get("n") or 1)
        items: list[dict[str, Any]] = []
        for index in range(count):
            if mode == "data":
                item = {"url": data_uri(RESULT)}
            elif mode == "b64":
                item = {"b64_json": data_uri(RESULT).split(",", 1)[1]}
            elif mode == "url":
                item = {"url": f"{call.upstream.origin}/files/out-{index}.png"}
            elif mode == "dead-url":
                item = {"url": f"{call.upstream.origin}/gone/out-{index}.png"}
            else:
                item = {}
            if revised:
                item["revised_prompt"] = f"revised: {body['prompt']}"
            items.append(item)
        return web.json_response({"created": 1741460000,
                                  "data": items if mode != "empty" else []})
    return handler


@dataclass
class ImageEnv:
    """Everything an image test needs."""

    upstream: X402TestUpstream
    service: ImageService
    store: ImageStore
    usage: UsageLog
    payer: str
    data_dir: Path
    services: Any  # what commands and routes read: .images, .catalog
    client: Any = None  # aiohttp test client for the routes
    public: dict = field(default_factory=dict)

    def allow_private_urls(self) -> None:
        """Turn on the images.allowPrivateUrls opt-in (for tests serving inputs on 127.0.0.1)."""
        self.service.outbound.allow_private = True

    def paid_usd(self) -> float:
        return self.upstream.ledger.total_paid_usd(self.payer)

    def image_requests(self, path: str | None = None) -> list:
        """The paid image requests the upstream received (402 probes left out)."""
        paths = (path,) if path else (IMAGE_PATH, IMAGE_EDIT_PATH)
        return [r for r in self.upstream.requests if r.path in paths and r.paid]

    def assert_nothing_sent(self) -> None:
        """Proof a refused request cost nothing: no upstream request, no settlement."""
        assert self.upstream.requests == []
        assert self.upstream.ledger.settlements == []

    def usage_records(self) -> list[dict]:
        import json
        self.usage.flush()  # lines gather briefly before they are written
        lines = []
        for file in sorted(self.usage.directory.glob("usage-*.jsonl")):
            lines += [json.loads(line) for line in file.read_text().splitlines() if line]
        return lines


@pytest.fixture
async def image_env(x402_upstream, funded_wallet_key, tmp_path, aiohttp_client):
    """The service, store and usage log on the x402 test upstream, and a test client for an
    app with the image routes (its public URL is the test server's own address)."""
    x402_upstream.set_price(IMAGE_PATH, catalog_price)
    x402_upstream.set_price(IMAGE_EDIT_PATH, catalog_price)
    x402_upstream.set_handler(IMAGE_PATH, image_handler("data"))
    x402_upstream.set_handler(IMAGE_EDIT_PATH, image_handler("data"))
    wallet = Wallet.from_private_key(funded_wallet_key)
    data_dir = tmp_path / "data"
    public = {"url": "http://localhost:8402"}
    async with aiohttp.ClientSession() as http:
        client = X402Client(http, wallet, PaymentPolicy.from_config(PaymentConfig()),
                            api_base=x402_upstream.url)
        store = ImageStore(data_dir / "images", lambda: public["url"])
        usage = UsageLog(data_dir / "logs")
        config = ImageConfig(max_input_bytes=256 * 1024, download_timeout_seconds=3,
                             max_redirects=2, max_images=4, local_folders=[str(tmp_path)])
        outbound = OutboundPolicy(own_url=lambda: public["url"], trusted=(x402_upstream.url,))
        service = ImageService(client, CATALOG, store, config, outbound, usage)
        services = SimpleNamespace(images=service, catalog=CATALOG)
        app = web.Application(middlewares=[errors_middleware], client_max_size=4 * 1024 * 1024)
        add_image_routes(app, services)
        test_client = await aiohttp_client(app)
        public["url"] = f"http://localhost:{test_client.port}"
        yield ImageEnv(upstream=x402_upstream, service=service, store=store, usage=usage,
                       payer=wallet.address, data_dir=data_dir, services=services,
                       client=test_client, public=public)
