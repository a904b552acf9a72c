"""Shared fixtures: an x402 test upstream (official SDK server side) and a funded wallet key."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from eth_account import Account

from tests.support.x402_upstream import X402TestUpstream

PACKAGE = Path(__file__).resolve().parent.parent / "clawrouter_plugin"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test stale compiled modules: a router source edited after the mypyc build
    would otherwise be shadowed by its old compiled copy (./test rebuilds them)."""
    for compiled in PACKAGE.rglob("*.so"):
        source = compiled.with_name(compiled.name.split(".", 1)[0] + ".py")
        if source.exists() and source.stat().st_mtime > compiled.stat().st_mtime:
            pytest.exit(f"{source.relative_to(PACKAGE.parent)} changed after it was compiled; "
                        "run ./test (it rebuilds the compiled modules)", returncode=2)


@pytest.fixture
async def x402_upstream():
    """A running :class:`X402TestUpstream` on 127.0.0.1 (``.url`` is the API base)."""
    upstream = X402TestUpstream()
    await upstream.start()
    try:
        yield upstream
    finally:
        await upstream.close()


@pytest.fixture
def funded_wallet_key(x402_upstream) -> str:
    """A fresh 0x-hex private key whose address holds $100 USDC in the upstream's ledger."""
    key = "0x" + secrets.token_hex(32)
    x402_upstream.ledger.fund(Account.from_key(key).address, 100)
    return key


@pytest.fixture
def openclaw_home(tmp_path, monkeypatch) -> Path:
    """A fresh HOME for `openclaw-config`: no config file, no `openclaw` on PATH, no port or
    config-path overrides from the environment."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("OPENCLAW_CONFIG", str(tmp_path / "none.yaml"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    for name in ("BLOCKRUN_PROXY_PORT", "OPENCLAW_CONFIG_PATH"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(scope="session")
def redis_server_session():
    """One real redis-server for the whole run (started on first use), see tests/support."""
    from tests.support.redis_server import running_redis

    with running_redis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server_session) -> str:
    """The URL of the shared test Redis, emptied for this test."""
    redis_server_session.flush()
    return redis_server_session.url


@pytest.fixture
def own_redis():
    """A redis-server of this test's own, which the test may kill and restart."""
    from tests.support.redis_server import running_redis

    with running_redis() as server:
        yield server
