"""The one image service behind ``/v1/images/*`` and the ``/imagegen`` / ``/img2img`` commands.

Everything that can be checked is checked before paying: the model (and that it can edit),
the size against the model's maximum, the count, the prompt, and for edits the image and mask
inputs. The payment is then bounded by the catalog price (``price x n``), so a 402 asking for
more is refused without signing. Exactly one paid request is made per call; whatever comes
back is saved to the local store, and an image that cannot be saved is returned by its
upstream URL with a note rather than failing a request that was already paid for.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from ..catalog import Catalog, ImageModel
from ..config import ImageConfig
from ..errors import BadRequest, ClawRouterError, UpstreamError
from ..keys.model import ApiKey
from ..outbound import OutboundPolicy
from ..payment.response import transport_error
from ..payment.tab import PaymentTab
from ..proxy.fallback import error_message
from ..proxy.recorder import record_payments
from ..state.spend import Spend
from ..usage import UsageLog
from .download import download_image
from .formats import SNIFF_BYTES, STORE_FORMATS, sniff
from .inputs import ImageInput, decode_data_uri, load_image_input
from .models import check_count, check_size, resolve_model
from .store import ImageStore, StoredImage

if TYPE_CHECKING:
    from ..keys.model import ApiKey
    from ..payment import PaymentRecord, X402Client

log = logging.getLogger("clawrouter.images")

GENERATE_PATH = "/v1/images/generations"
EDIT_PATH = "/v1/images/image2image"
_JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}
_MAX_PROMPT_CHARS = 32_000


@dataclass
class ImageResult:
    """What one image request produced and cost."""

    created: int
    model: str
    size: str
    images: list[StoredImage]
    cost_usd: float
    payment: PaymentRecord | None

    def to_openai(self, response_format: str = "url") -> dict:
        """The OpenAI images response: ``{created, data: [{url, revised_prompt?, note?}]}``.

        With ``b64_json`` each item carries the image itself as ``b64_json`` instead (read
        back from the store: blocking, so async callers run it in a thread); an image known
        only by a remote URL keeps its ``url`` and gets ``b64_json: null``.
        """
        data = []
        for image in self.images:
            item: dict[str, Any]
            if response_format == "b64_json":
                encoded = image.base64()
                item = {"b64_json": encoded} if encoded else {"b64_json": None, "url": image.url}
            else:
                item = {"url": image.url}
            if image.revised_prompt:
                item["revised_prompt"] = image.revised_prompt
            if image.note:
                item["note"] = image.note
            data.append(item)
        return {"created": self.created, "data": data}


class ImageService:
    """Generates and edits images through the paying x402 client."""

    def __init__(self, client: X402Client, catalog: Catalog, store: ImageStore,
                 config: ImageConfig, outbound: OutboundPolicy, usage: UsageLog | None = None,
                 spend: Spend | None = None):
        self.client = client
        self.spend = spend  # images count against the session's maxCostPerRun too
        self.catalog = catalog
        self.store = store
        self.config = config
        self.outbound = outbound  # every URL fetched (inputs and results) goes through it
        self.usage = usage

    async def generate(self, *, prompt: object, model: object = None, size: object = None,
                       n: object = 1, session_id: str = "images",
                       api_key: ApiKey | None = None) -> ImageResult:
        """Generate ``n`` images of ``prompt`` (defaults: google/nano-banana, 1024x1024),
        paid from the session's budget and ``api_key``'s (the caller on a shared proxy)."""
        text = _check_prompt(prompt)
        image_model = resolve_model(self.catalog, model)
        size_text = check_size(image_model, size)
        count = check_count(n, self.config.max_images)
        body = {"model": image_model.id, "prompt": text, "size": size_text, "n": count}
        return await self._paid_call(GENERATE_PATH, body, image_model, model, session_id,
                                     api_key)

    async def edit(self, *, prompt: object, image: object, mask: object = None,
                   model: object = None, size: object = None, n: object = 1,
                   allow_relative: bool = False, local_files: bool = True,
                   session_id: str = "images", api_key: ApiKey | None = None) -> ImageResult:
        """Edit ``image`` (path, URL or data URI; optional ``mask``) following ``prompt``.

        ``allow_relative`` lets paths be relative to the working directory (chat command only);
        ``local_files`` False refuses paths (a message relayed from a chat channel).
        """
        text = _check_prompt(prompt)
        image_model = resolve_model(self.catalog, model, edit=True)
        size_text = check_size(image_model, size)
        count = check_count(n, self.config.max_images)
        if mask is not None and not isinstance(mask, str):
            raise BadRequest("mask must be a string: a file path, an http(s) URL or a data URI")
        sources = {"image": image} if not mask else {"image": image, "mask": mask}
        loaded = await self._load_inputs(sources, allow_relative, local_files)
        body: dict[str, Any] = {"model": image_model.id, "prompt": text,
                                "image": loaded["image"].data_uri()}
        if "mask" in loaded:
            body["mask"] = loaded["mask"].data_uri()
        body.update(size=size_text, n=count)
        return await self._paid_call(EDIT_PATH, body, image_model, model, session_id, api_key)

    async def _load_inputs(self, sources: dict[str, object],
                           allow_relative: bool, local_files: bool) -> dict[str, ImageInput]:
        """Load all inputs concurrently; the first failure cancels the others."""
        tasks = {label: asyncio.ensure_future(load_image_input(
            value, outbound=self.outbound, config=self.config, allow_relative=allow_relative,
            local_files=local_files, label=label)) for label, value in sources.items()}
        try:
            await asyncio.gather(*tasks.values())
        except BaseException:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            raise
        return {label: task.result() for label, task in tasks.items()}

    async def _paid_call(self, path: str, body: dict, image_model: ImageModel,
                         requested: object, session_id: str,
                         api_key: ApiKey | None = None) -> ImageResult:
        """One paid upstream request, then the returned images saved locally."""
        size, count = body["size"], body["n"]
        limit = round(image_model.price(size) * count, 6)
        started = time.monotonic()
        payload = json.dumps(body, ensure_ascii=False).encode()
        reservation = await self.spend.reserve(session_id, limit, api_key=api_key) \
            if self.spend else None  # 429 if over
        tab = PaymentTab(session_id, "image", path, model=image_model.id,
                         key=api_key.id if api_key is not None else None)
        try:
            async with self.client.open(
                "POST", path, body=payload, headers=_JSON_HEADERS, max_amount_usd=limit,
                price_key=f"{path} {image_model.id} {size} n={count}", tab=tab,
                claim=reservation.claim if reservation is not None else None,
            ) as resp:
                payment = resp.payment
                data = await _read_capped(resp.content, self._response_cap(count))
                status = resp.status
        finally:  # what may have been settled counts, and every payment signed is recorded
            if reservation is not None:
                await reservation.commit(tab.spent_usd())
            if self.usage is not None:
                record_payments(self.usage, tab, tier="IMAGE",
                                requested=requested if isinstance(requested, str) else "",
                                latency_ms=(time.monotonic() - started) * 1000)
        if status != 200:
            raise UpstreamError(error_message(status, data),
                                status=status if 400 <= status < 500 and status != 402 else 502)
        created, items = _parse_images(data)
        # never more than was asked (and paid) for: each entry may be a download to store
        images = await asyncio.gather(*(self._keep(item) for item in items[:count]))
        return ImageResult(created=created, model=image_model.id, size=size, images=list(images),
                           cost_usd=payment.amount_usd if payment else 0.0, payment=payment)

    def _response_cap(self, count: int) -> int:
        """The most bytes an answer with ``count`` base64 images may reasonably take."""
        return count * (self.config.max_output_bytes * 4 // 3 + 64 * 1024) + 64 * 1024

    async def _keep(self, item: dict) -> StoredImage:
        """Save one returned image locally; on failure keep its upstream URL with a note.

        An image that arrived inline and cannot be stored is returned as a data URI of its
        checked bytes; anything else the upstream put in ``url`` (``javascript:``, a
        ``data:text/html`` URI, ...) is never passed on.
        """
        revised = item.get("revised_prompt") if isinstance(item.get("revised_prompt"), str) else None
        url = item.get("url") if isinstance(item.get("url"), str) else None
        image: ImageInput | None = None
        try:
            image = await self._image_bytes(item, url)
            stored = await asyncio.to_thread(self.store.save, image.data)
        except (ClawRouterError, OSError) as exc:
            reason = getattr(exc, "message", None) or str(exc)
            log.warning("image could not be saved locally: %s", reason)
            remote = url if url and url.lower().startswith(("http://", "https://")) else None
            if remote:
                note = f"not saved locally ({reason}); this is the upstream's URL"
            elif image is not None:
                note = f"not saved locally ({reason}); the image is inline as a data URI"
            else:
                note = f"not saved locally ({reason})"
            inline = image.data_uri() if image is not None and not remote else None
            return StoredImage(url=remote or inline or "", path=None, upstream_url=remote,
                               revised_prompt=revised, note=note)
        stored.upstream_url = url if url and not url.startswith("data:") else None
        stored.revised_prompt = revised
        return stored

    async def _image_bytes(self, item: dict, url: str | None) -> ImageInput:
        """The checked image of one answer entry (data URI, URL or ``b64_json``)."""
        cap = self.config.max_output_bytes
        if url and url[:5].lower() == "data:":
            return await asyncio.to_thread(decode_data_uri, url, cap, "result", STORE_FORMATS)
        if url:
            data, fmt = await download_image(
                self.outbound, url, max_bytes=cap, timeout=self.config.download_timeout_seconds,
                max_redirects=self.config.max_redirects, formats=STORE_FORMATS, label="result")
            return ImageInput(data, fmt)
        b64 = item.get("b64_json")
        if isinstance(b64, str) and len(b64) <= cap * 4 // 3 + 4:
            try:
                data = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                raise UpstreamError("the upstream returned invalid base64 image data") from None
            fmt = sniff(data[:SNIFF_BYTES])
            if fmt is not None:
                return ImageInput(data, fmt)
        raise UpstreamError("the upstream returned an entry without a usable image")


def _check_prompt(prompt: object) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("prompt is required: describe the image", code="missing_prompt")
    if len(prompt) > _MAX_PROMPT_CHARS:
        raise BadRequest(f"prompt is longer than {_MAX_PROMPT_CHARS} characters",
                         code="prompt_too_long")
    return prompt.strip()


async def _read_capped(content: aiohttp.StreamReader, cap: int) -> bytes:
    buf = bytearray()
    try:
        async for chunk in content.iter_chunked(256 * 1024):
            buf += chunk
            if len(buf) > cap:
                raise UpstreamError("the upstream's answer is larger than any image answer "
                                    "should be (images.maxOutputBytes)")
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise transport_error(exc, "the image API") from None
    return bytes(buf)


def _parse_images(data: bytes) -> tuple[int, list[dict]]:
    """(created, data items) of an OpenAI images answer; anything else is an UpstreamError."""
    try:
        parsed = orjson.loads(data)  # unlike json, bounds nesting: no stack overflow
    except ValueError:
        raise UpstreamError("the upstream answered with invalid JSON") from None
    items = parsed.get("data") if isinstance(parsed, dict) else None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if isinstance(error, dict):
            error = error.get("message")
        detail = f": {str(error)[:300]}" if error else ""
        raise UpstreamError(f"the upstream returned no images{detail}")
    created = parsed.get("created")
    if isinstance(created, bool) or not isinstance(created, int):
        created = int(time.time())
    return created, items
