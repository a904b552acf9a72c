"""Chat commands as a user types them: odd unicode, odd numbers, secrets pasted in the wrong
place, long session ids, and commands that reach the proxy's intercepts."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from clawrouter_plugin.errors import BadRequest
from clawrouter_plugin.host.dispatch import MAX_ARGS_CHARS, parse_command
from clawrouter_plugin.host.host import Conversation
from clawrouter_plugin.plugin import install_intercepts
from clawrouter_plugin.proxy.intercept import ChatCommand
from clawrouter_plugin.state.sessions import session_id
from commands import exclude, model, stats, wallet

from .services import ctx, make_services
from .test_commands import PHRASE
from .test_provider import host, plugin_config  # noqa: F401  (fixtures)

ZWSP, BOM, RLM = "\u200b", "\ufeff", "\u200f"


@pytest.fixture
def services(tmp_path):
    return make_services(tmp_path / "data")


# ---- dispatch ----------------------------------------------------------------------------

@pytest.mark.parametrize("text", [f"{BOM}/model eco", f"{ZWSP} /model eco{ZWSP}",
                                  f"{RLM}/model eco{RLM}\n"])
def test_invisible_characters_around_a_command_do_not_hide_it(text):
    parsed = parse_command(text)
    assert parsed is not None and (parsed.name, parsed.args) == ("model", "eco")


# ---- /model ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [f"eco{ZWSP}", f"{RLM}eco", f"{BOM}eco "])
async def test_model_name_with_invisible_characters_at_the_ends(services, name):
    reply = await model.command(services).handler(ctx(name))
    assert not reply.is_error, reply.text
    assert await services.sessions.preference("s-1") == "eco"


async def test_model_switch_drops_the_pin_of_a_long_session_id(services):
    long_id = "agent:main:" + "x" * 200  # the pipeline pins such ids under a hash of them
    pin_key = session_id({"x-session-id": long_id}, {})
    assert pin_key != long_id
    await services.sessions.pin(pin_key, "openai/gpt-5.2", "COMPLEX", "auto")
    reply = await model.command(services).handler(ctx("eco", session_id=long_id))
    assert not reply.is_error
    assert await services.sessions.get(pin_key) is None


async def test_model_choice_of_a_long_session_id_routes_the_next_turn(host):  # noqa: F811
    conv = Conversation(session_id="agent:main:" + "y" * 200)
    await host.dispatch("/model br-haiku", conv)
    reply = await host.dispatch("hello", conv)
    assert reply.text.startswith("Echo from anthropic/claude-haiku-4.5:"), reply.text


# ---- /stats ------------------------------------------------------------------------------

@pytest.mark.parametrize("args", ["²", "1²", "⑦"])
async def test_stats_digit_like_days_are_a_usage_error(services, args):
    reply = await stats.command(services).handler(ctx(args))
    assert reply.is_error and reply.text.startswith("Usage:")


async def test_stats_other_script_digits_are_days(services):
    reply = await stats.command(services).handler(ctx("٣"))  # Arabic-Indic 3
    assert not reply.is_error and "Period:           last 3 days" in reply.text


# ---- /wallet -----------------------------------------------------------------------------

@pytest.mark.parametrize("pasted", [
    "0x" + "ab" * 32,                      # a private key without a sub-command
    PHRASE,                                # a recovery phrase without "recover"
    "import " + "0x" + "cd" * 32,          # a sub-command that does not exist
])
async def test_wallet_never_echoes_a_pasted_secret(services, pasted):
    reply = await wallet.command(services).handler(ctx(pasted))
    assert reply.is_error and "Usage:" in reply.text
    for word in pasted.split():
        if word != "import":
            assert word not in reply.text


@pytest.mark.parametrize("args, expected", [
    ("status now", "/wallet status takes no arguments"),
    ("export now", "/wallet export takes no arguments"),
])
async def test_wallet_known_subcommand_with_extra_words(services, args, expected):
    reply = await wallet.command(services).handler(ctx(args))
    assert reply.is_error and reply.text.startswith(expected)
    assert "Private key" not in reply.text


# ---- /exclude ----------------------------------------------------------------------------

@pytest.mark.parametrize("args, expected", [
    ("list all", "/exclude list takes no arguments"),
    ("clear grok", "/exclude clear takes no arguments"),
])
async def test_exclude_known_subcommand_with_extra_words(services, args, expected):
    await services.exclusions.add("grok")
    reply = await exclude.command(services).handler(ctx(args))
    assert reply.is_error and reply.text.startswith(expected)
    assert await services.exclusions.all() == {"xai/grok-3"}


async def test_exclude_every_model_then_remove_twice(services):
    handler = exclude.command(services).handler
    for model_id in services.catalog.chat:
        assert not (await handler(ctx(f"add {model_id}"))).is_error
    assert await services.exclusions.all() == frozenset(services.catalog.chat)
    assert not (await handler(ctx("remove grok"))).is_error
    again = await handler(ctx("remove grok"))
    assert again.is_error and "was not in the exclude list" in again.text
    assert "xai/grok-3" not in await services.exclusions.all()


# ---- the /imagegen intercept on the proxy path -------------------------------------------

async def test_intercepted_command_args_are_cleaned_and_capped(tmp_path):
    prompts: list[str] = []

    async def generate(*, prompt, **_kw):
        prompts.append(prompt)
        raise BadRequest("no images in this test")

    services = make_services(tmp_path / "data", pipeline=SimpleNamespace(intercepts={}),
                             images=SimpleNamespace(generate=generate))
    install_intercepts(services)
    command = ChatCommand("imagegen", "a\x00 cat\x1b " + "z" * 100_000)
    reply = await services.pipeline.intercepts["imagegen"](command, "s")
    assert "no images in this test" in reply
    assert prompts and "\x00" not in prompts[0] and "\x1b" not in prompts[0]
    assert prompts[0].startswith("a cat ") and len(prompts[0]) <= MAX_ARGS_CHARS
