"""Helpers shared by the payment tests."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager

import aiohttp

from clawrouter_plugin.config import BASE_MAINNET, BASE_USDC
from clawrouter_plugin.payment import PaymentPolicy, Wallet, X402Client

CHAT = "/v1/chat/completions"


def chat_body(model: str = "openai/gpt-4o-mini", text: str = "hello", **extra) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": text}],
                       **extra}).encode()


def policy(**kwargs) -> PaymentPolicy:
    return PaymentPolicy.create([(BASE_MAINNET, BASE_USDC)], **kwargs)


@asynccontextmanager
async def client_for(upstream, key: str, *, preauth: bool = True, pol: PaymentPolicy | None = None,
                     payments: list | None = None):
    """An X402Client (fresh session) talking to ``upstream`` with wallet ``key``."""
    wallet = Wallet.from_private_key(key)
    async with aiohttp.ClientSession() as session:
        yield X402Client(session, wallet, pol or policy(), api_base=upstream.url,
                         preauth=preauth,
                         on_payment=payments.append if payments is not None else None)
