"""`clawrouter serve` killed with SIGKILL right after a payment settled, before its answer
came back: the payment journal gets it into /stats at the next start, exactly once, however
many times the proxy is started (or killed) again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import aiohttp

from tests.support import handlers as h
from tests.support.x402_upstream import CHAT_PATH

from .conftest import CLOSED_RPC
from .test_disconnects import free_port

PAID = "deepseek/deepseek-chat"


class Serve:
    """One ``clawrouter serve`` process on a data directory."""

    def __init__(self, tmp_path, upstream_url: str, key: str) -> None:
        config = tmp_path / "openclaw.yaml"
        config.write_text(json.dumps(
            {"plugins": [{"id": "clawrouter", "config": {"payment": {"rpcUrl": CLOSED_RPC}}}]}))
        self.env = {**os.environ, "BLOCKRUN_WALLET_KEY": key, "HOME": str(tmp_path)}
        self.env.pop("BLOCKRUN_PROXY_PORT", None)
        self.port = free_port()
        self.args = [sys.executable, "-m", "clawrouter_plugin", "serve", "--config", str(config),
                     "--port", str(self.port), "--api-base", upstream_url,
                     "--data-dir", str(tmp_path / "data")]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, env=self.env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        async with aiohttp.ClientSession() as session:
            for _ in range(400):  # up to 20 s
                try:
                    async with session.get(self.base_url + "/health") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("clawrouter serve did not become healthy")

    async def stats(self) -> dict:
        async with aiohttp.ClientSession() as session:
            async with session.get(self.base_url + "/stats") as resp:
                assert resp.status == 200
                return await resp.json()

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), 10)

    async def stop(self) -> bytes:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(self.proc.communicate(), 20)
        return err


async def test_a_payment_settled_just_before_sigkill_is_in_stats_exactly_once(
        x402_upstream, funded_wallet_key, tmp_path):
    x402_upstream.set_handler(CHAT_PATH, h.by_model({PAID: h.settle_then_stall(60)}))
    serve = Serve(tmp_path, x402_upstream.url, funded_wallet_key)
    await serve.start()
    body = {"model": PAID, "messages": [{"role": "user", "content": "pay, then die"}]}

    async def ask() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.post(serve.base_url + CHAT_PATH, json=body) as resp:
                await resp.read()

    request = asyncio.ensure_future(ask())
    try:
        for _ in range(200):  # up to 10 s for the upstream to settle the payment
            if x402_upstream.ledger.settlements:
                break
            await asyncio.sleep(0.05)
        assert len(x402_upstream.ledger.settlements) == 1
        await serve.kill()  # the answer is still 60 s away: no usage line was written
    finally:
        request.cancel()
        await asyncio.gather(request, return_exceptions=True)
        if serve.proc.returncode is None:
            await serve.kill()
    settlement = x402_upstream.ledger.settlements[0]

    for restart in range(3):  # replayed once; the later starts add nothing
        await serve.start()
        try:
            totals = await serve.stats()
        finally:
            if restart == 1:
                await serve.kill()  # a kill after the replay does not bring it back twice
            else:
                err = await serve.stop()
                assert b"Traceback" not in err
        assert totals["totalCost"] == settlement.usd == 0.001
        assert totals["totalRequests"] == 1
        assert totals["payments"]["unconfirmed"] == {"count": 1, "amount": 0.001}, totals
    lines = [json.loads(line) for path in (tmp_path / "data" / "logs").glob("usage-*.jsonl")
             for line in path.read_text().splitlines()]
    assert [(r["nonce"], r["payment"], r["model"], r["session"] != "") for r in lines] == \
        [(settlement.nonce, "unconfirmed", PAID, True)]
    assert len(x402_upstream.ledger.settlements) == 1  # nothing was paid again
