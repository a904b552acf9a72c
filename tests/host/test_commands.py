"""/model, /exclude and /wallet: outputs and errors, against real stores in a temp folder."""

from __future__ import annotations

import pytest

from clawrouter_plugin.balance import BalanceInfo
from clawrouter_plugin.payment import load_or_create_wallet
from commands import exclude, model, wallet

from .services import FixedBalance, ctx, make_services

PHRASE = "test test test test test test test test test test test junk"
PHRASE_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


@pytest.fixture
def services(tmp_path):
    return make_services(tmp_path / "data")


# ---- /model ------------------------------------------------------------------------------

async def test_model_shows_default_profiles_and_aliases(services):
    reply = await model.command(services).handler(ctx())
    text = reply.text
    assert text.startswith("Current: blockrun/auto — Balanced - the cheapest model that can "
                           "handle each request (default)\n\nRouting profiles:\n")
    for profile in ("auto", "eco", "premium", "free", "agentic"):
        assert f"\n  {profile:<8} " in text
    assert "anthropic/claude-sonnet-4.6: br-sonnet, claude, sonnet" in text
    assert "deepseek/deepseek-chat: deepseek," in text


@pytest.mark.parametrize("name, stored, shown", [
    ("eco", "eco", "blockrun/eco — Cheapest possible"),
    ("blockrun/br-sonnet", "anthropic/claude-sonnet-4.6", "blockrun/anthropic/claude-sonnet-4.6 — $3/$15"),
    ("FREE", "free", "blockrun/free — Always the free model"),
    ("openai/gpt-4o-mini", "openai/gpt-4o-mini", "blockrun/openai/gpt-4o-mini — $0.15/$0.6"),
])
async def test_model_sets_the_conversation_preference(services, name, stored, shown):
    await services.sessions.pin("s-1", "openai/gpt-5.2", "COMPLEX", "auto")
    reply = await model.command(services).handler(ctx(name))
    assert not reply.is_error
    assert reply.text.startswith(f"This conversation now uses {shown}")
    assert await services.sessions.preference("s-1") == stored
    assert await services.sessions.get("s-1") is None  # the old pin no longer steers routing
    assert await services.sessions.preference("other") is None
    current = await model.command(services).handler(ctx())
    assert current.text.startswith(f"Current: {shown}")


async def test_model_unknown_name_suggests(services):
    reply = await model.command(services).handler(ctx("sonet"))
    assert reply.is_error
    assert reply.text.startswith('Unknown model "sonet". Did you mean:') and "sonnet" in reply.text
    assert await services.sessions.preference("s-1") is None
    nothing = await model.command(services).handler(ctx("zzzzqqq"))
    assert nothing.text == 'Unknown model "zzzzqqq". Try /model for the list.'


async def test_model_rejects_extra_words(services):
    reply = await model.command(services).handler(ctx("eco please"))
    assert reply.is_error and reply.text.startswith("Usage:")


# ---- /exclude ----------------------------------------------------------------------------

async def test_exclude_flow(services):
    handler = exclude.command(services).handler
    empty = await handler(ctx())
    assert empty.text.startswith("No models excluded.") and "/exclude add <model>" in empty.text
    added = await handler(ctx("add grok"))
    assert added.text == "Excluded: xai/grok-3\nExcluded models (1):\n  • xai/grok-3"
    await handler(ctx("add blockrun/deepseek"))
    listed = await handler(ctx())
    assert listed.text == ("Excluded models (2):\n  • deepseek/deepseek-chat\n  • xai/grok-3\n"
                           "Use /exclude remove <model> to unblock.")
    assert await services.exclusions.all() == {"xai/grok-3", "deepseek/deepseek-chat"}
    # persisted: a fresh store over the same file sees them
    again = make_services(services.data_dir)
    assert await again.exclusions.all() == {"xai/grok-3", "deepseek/deepseek-chat"}
    removed = await handler(ctx("remove grok"))
    assert removed.text.startswith("Unblocked: xai/grok-3\nExcluded models (1):")
    cleared = await handler(ctx("clear"))
    assert cleared.text == "All model exclusions cleared." and await services.exclusions.all() == set()


@pytest.mark.parametrize("args, expected", [
    ("add", "Which model? e.g. /exclude add deepseek"),
    ("add grokk-9000", 'Unknown model "grokk-9000".'),
    ("add eco", '"eco" is a routing profile, not a model'),
    ("remove deepseek", 'Model "deepseek" was not in the exclude list.'),
    ("frobnicate x", "Unknown subcommand: frobnicate"),
])
async def test_exclude_errors(services, args, expected):
    reply = await exclude.command(services).handler(ctx(args))
    assert reply.is_error and expected in reply.text
    assert await services.exclusions.all() == set()


# ---- /wallet -----------------------------------------------------------------------------

async def test_wallet_status_with_unknown_balance(services):
    reply = await wallet.command(services).handler(ctx())
    address = services.wallet.address
    assert f"  Address:  {address}" in reply.text
    assert "  Chain:    Base (USDC)" in reply.text
    assert "  Balance:  unknown (RPC unreachable)" in reply.text
    assert f"  Key file: {services.data_dir / 'wallet.key'} (mode 0600)" in reply.text
    assert f"Fund it: send USDC on Base to {address}" in reply.text
    assert "0x" + "0" * 10 not in reply.text


@pytest.mark.parametrize("info, line", [
    (BalanceInfo(usd=12.345, low=False, empty=False, error=None), "$12.35 USDC"),
    (BalanceInfo(usd=0.5, low=True, empty=False, error=None), "$0.50 USDC — low, top up soon"),
    (BalanceInfo(usd=0.0, low=True, empty=True, error=None), "$0.00 USDC — empty"),
])
async def test_wallet_status_balances(services, info, line):
    services.balance = FixedBalance(info)
    reply = await wallet.command(services).handler(ctx())
    assert f"  Balance:  {line}" in reply.text


async def test_wallet_from_env_has_no_key_file(tmp_path):
    key = "0x" + "11" * 32
    services = make_services(tmp_path / "env")
    services.wallet = load_or_create_wallet(tmp_path / "empty", env={"BLOCKRUN_WALLET_KEY": key})
    reply = await wallet.command(services).handler(ctx())
    assert "not stored: the key comes from $BLOCKRUN_WALLET_KEY" in reply.text


async def test_wallet_export_only_for_the_owner_at_the_terminal(services):
    handler = wallet.command(services).handler
    for kw in ({"channel": "telegram"}, {"is_authorized_sender": False}):
        refused = await handler(ctx("export", **kw))
        assert refused.is_error and "only allowed for the owner" in refused.text
        assert "Private key" not in refused.text
    owner_elsewhere = await handler(ctx("export", channel="telegram", sender_is_owner=True))
    assert "Private key:" in owner_elsewhere.text
    shown = await handler(ctx("export"))
    assert shown.text.startswith("⚠️⚠️ SECRET")
    phrase = (services.data_dir / "mnemonic").read_text().strip()
    key = (services.data_dir / "wallet.key").read_text().strip()
    assert f"Private key:     {key}" in shown.text and f"Recovery phrase: {phrase}" in shown.text


async def test_wallet_recover_refuses_to_replace_without_force(services):
    handler = wallet.command(services).handler
    before = (services.data_dir / "wallet.key").read_text()
    refused = await handler(ctx(f"recover {PHRASE}"))
    assert refused.is_error and "--force" in refused.text and PHRASE not in refused.text
    assert (services.data_dir / "wallet.key").read_text() == before
    done = await handler(ctx(f"recover {PHRASE} --force"))
    assert not done.is_error
    assert done.text.startswith(f"Recovered wallet {PHRASE_ADDRESS}")
    assert "Restart ClawRouter" in done.text
    assert load_or_create_wallet(services.data_dir, env={}).address == PHRASE_ADDRESS
    assert list(services.data_dir.glob("wallet.key.bak-*"))  # the old wallet was kept


async def test_wallet_recover_errors(services):
    handler = wallet.command(services).handler
    bad = await handler(ctx("recover not a real phrase at all"))
    assert bad.is_error and "not a valid BIP-39 recovery phrase" in bad.text
    assert "real phrase" not in bad.text  # the words are never echoed
    missing = await handler(ctx("recover"))
    assert missing.is_error and missing.text.startswith("Usage: /wallet recover")
    remote = await handler(ctx(f"recover {PHRASE}", channel="discord"))
    assert remote.is_error and "only allowed for the owner" in remote.text


async def test_wallet_unknown_subcommand(services):
    reply = await wallet.command(services).handler(ctx("solana"))
    assert reply.is_error and reply.text.startswith("Unknown subcommand: solana")
