"""The private key and the recovery phrase never appear in logs, errors or reprs."""

from __future__ import annotations

import logging

import pytest
from eth_account import Account

from clawrouter_plugin.errors import ClawRouterError
from clawrouter_plugin.payment import export_wallet, load_or_create_wallet, recover_wallet
from tests.support import handlers

from .helpers import CHAT, chat_body, client_for, policy

PHRASE = "legal winner thank year wave sausage worth useful legal winner thank yellow"


async def test_key_never_logged_or_in_errors(tmp_path, caplog, x402_upstream):
    caplog.set_level(logging.DEBUG)
    wallet = recover_wallet(tmp_path, PHRASE)
    secret = export_wallet(tmp_path)["private_key"]
    x402_upstream.ledger.fund(wallet.address, 1)
    texts: list[str] = [repr(wallet), str(wallet)]

    async def attempt(**kwargs):
        try:
            response, data = await client.request("POST", CHAT, body=chat_body(), **kwargs)
            texts.extend([repr(response), data.decode()])
        except ClawRouterError as exc:
            texts.extend([str(exc), exc.message, repr(exc), str(exc.to_dict())])

    async with client_for(x402_upstream, secret, pol=policy(max_per_request_usd=0.5)) as client:
        await attempt()  # paid
        await attempt()  # pre-signed
        await attempt(max_amount_usd=0.0001)  # refused
        x402_upstream.set_price(CHAT, "0.9")
        await attempt()  # over the cap
        x402_upstream.set_price(CHAT, "0.4")
        x402_upstream.ledger.set_balance(wallet.address, 0)
        await attempt()  # insufficient funds
        x402_upstream.set_handler(CHAT, handlers.status(500))
        x402_upstream.ledger.fund(wallet.address, 1)
        await attempt()  # upstream failure
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "wallet.key").write_text(secret[:-3])  # corrupt: a truncated key
    for action in (lambda: load_or_create_wallet(tmp_path / "bad", env={}),
                   lambda: load_or_create_wallet(tmp_path / "env", env={
                       "BLOCKRUN_WALLET_KEY": secret[:-1]}),
                   lambda: recover_wallet(tmp_path, PHRASE.replace("yellow", "zoo")),
                   lambda: recover_wallet(tmp_path, "abandon " * 11 + "about")):
        with pytest.raises(ClawRouterError) as caught:
            action()
        texts.extend([caught.value.message, repr(caught.value)])
    load_or_create_wallet(tmp_path, env={})
    everything = caplog.text + "\n".join(texts)
    for record in x402_upstream.requests:
        everything += "\n".join(record.headers.values()) + record.body.decode()
    assert wallet.address in caplog.text  # the address is logged, as it should be
    assert len(texts) > 10
    for needle in (secret[2:], secret[2:].upper(), secret[2:40], secret[-40:], "legal winner",
                   "winner thank"):
        assert needle not in everything
    assert Account.from_key(secret).address == wallet.address
