"""Chat prices the way a paid-up-front upstream sets them, for :class:`X402TestUpstream`.

x402 is paid before the answer exists, so the upstream prices a chat request by its input
size (body bytes / 4, as tokens) and its output cap (``max_completion_tokens``, else
``max_tokens``, else the model's max output), the cap at most the model's max output, at the
catalog's per-million prices, with a minimum charge. The free model asks nothing.

    up.set_price(CHAT_PATH, chat_price)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clawrouter_plugin.catalog import ChatModel, load_catalog

if TYPE_CHECKING:
    from .x402_upstream import Call

MIN_CHARGE_USD = 0.001
CATALOG = load_catalog()


def output_cap(body: dict, model: ChatModel) -> int:
    """The output tokens the upstream charges for: the request's cap, at most the model's."""
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    if type(cap) is not int or cap <= 0:
        cap = model.max_output
    return min(cap, model.max_output)


def price_usd(model: ChatModel, body_bytes: int, cap: int) -> float:
    """USD for ``body_bytes`` of request with an output cap of ``cap`` tokens."""
    usd = (body_bytes // 4 * model.input_price + min(cap, model.max_output) * model.output_price)
    return max(MIN_CHARGE_USD, usd / 1_000_000)


def atomic(usd: float) -> int:
    """USD in the atomic USDC units a settlement records (what the test upstream asks)."""
    return round(usd * 1_000_000)


def chat_price(call: Call) -> float | None:
    """The price of one chat request (``None``: the free model, nothing to pay)."""
    body = call.json()
    model = CATALOG.chat.get(body.get("model")) if isinstance(body, dict) else None
    if model is None:
        return MIN_CHARGE_USD
    if model.is_free:
        return None
    return price_usd(model, len(call.body), output_cap(body, model))
