"""Dispatch rules: commands vs model turns, argument hygiene, auth, errors, /help, history."""

from __future__ import annotations

import asyncio
import logging

import pytest

from clawrouter_plugin.errors import UpstreamError
from clawrouter_plugin.host.dispatch import AUTH_REQUIRED, MAX_ARGS_CHARS, clean_args, parse_command
from clawrouter_plugin.host.host import Conversation, Host

from .conftest import manifest


@pytest.fixture
def host(tiny) -> Host:
    host = Host({"marker": True})
    host.load(manifest(), tiny.register)
    return host


def conv(**kw) -> Conversation:
    return Conversation(session_id="s-1", model="tiny/echo-model", **kw)


@pytest.mark.parametrize("text, name, args", [
    ("/stats", "stats", None),
    ("  /stats 7  ", "stats", "7"),
    ("/Stats\tclear --yes", "Stats", "clear --yes"),
    ("/imagegen a cat\non a mat", "imagegen", "a cat\non a mat"),
])
def test_parse_command(text, name, args):
    parsed = parse_command(text)
    assert (parsed.name, parsed.args) == (name, args)


@pytest.mark.parametrize("text", ["hello /stats", "/stats? please", "/ stats", "/9x", "stats", ""])
def test_not_a_command(text):
    assert parse_command(text) is None


def test_clean_args_drops_control_characters_but_keeps_tab_and_newline():
    assert clean_args("a\x00b\x1b[31mc\x7f\td\ne\r") == "ab[31mc\td\ne"
    assert len(clean_args("x" * 10_000)) == MAX_ARGS_CHARS
    assert clean_args(" \x01 ") is None


@pytest.mark.parametrize("text", ["/echo hi", "/ECHO hi", "/Echo hi"])
async def test_names_match_case_insensitively(host, text):
    reply = await host.dispatch(text, conv())
    assert reply.command == "echo" and reply.text.startswith("echo:'hi'")


async def test_dash_and_underscore_are_equal(host):
    for text in ("/secret-thing", "/secret_thing", "/SECRET-THING"):
        assert (await host.dispatch(text, conv())).text == "the secret"


async def test_context_carries_session_body_and_cleaned_args(host):
    reply = await host.dispatch("/echo  a\x07b  ", conv())
    assert reply.text == "echo:'ab' body:/echo ab sid:s-1"


async def test_args_are_capped(host):
    reply = await host.dispatch("/echo " + "y" * 5000, conv())
    capped = "y" * MAX_ARGS_CHARS
    assert reply.text == f"echo:'{capped}' body:/echo {capped} sid:s-1"


async def test_command_without_args_does_not_match_a_message_with_args(host, tiny):
    reply = await host.dispatch("/ping everyone", conv())
    assert reply.command is None
    assert reply.text == "you said: /ping everyone"
    assert tiny.requests[-1].body["messages"][-1]["content"] == "/ping everyone"
    assert (await host.dispatch("/ping", conv())).text == "pong"


async def test_unknown_slash_text_goes_to_the_model_unchanged(host, tiny):
    reply = await host.dispatch("/imagegen a cat", conv())
    assert reply.text == "you said: /imagegen a cat" and reply.command is None


async def test_failing_handler_gives_a_short_reason_and_logs_the_trace(host, caplog):
    with caplog.at_level(logging.ERROR):
        reply = await host.dispatch("/boom", conv())
    assert reply.is_error
    assert reply.text == "⚠️ Command failed: internal error (KeyError)"
    assert "deadbeef" not in reply.text and "Traceback" not in reply.text
    assert "Traceback" in caplog.text and "command /boom failed" in caplog.text


async def test_require_auth(host):
    denied = await host.dispatch("/secret-thing", conv(authorized=False))
    assert denied.is_error and denied.text == AUTH_REQUIRED
    open_to_all = await host.dispatch("/ping", conv(authorized=False))
    assert open_to_all.text == "pong"


async def test_help_lists_commands_with_descriptions(host):
    reply = await host.dispatch("/HELP", conv())
    assert reply.command == "help"
    assert reply.text.splitlines() == [
        "Commands:", "  /help [command] — this list, or how to use one command",
        "  /Secret_Thing — Needs auth", "  /boom — Always fails", "  /echo — Echo the args",
        "  /ping — Pong", "Anything else is sent to the model."]
    assert (await host.dispatch("/commands", conv())).command == "help"


async def test_help_for_one_command(host):
    from clawrouter_plugin.host.api import CommandResult, CommandSpec

    assert (await host.dispatch("/help /secret-thing", conv())).text == "/Secret_Thing — Needs auth"
    assert (await host.dispatch("/help nope", conv())).text == "No command /nope. /help lists them."
    spec = CommandSpec("usage_demo", "Has usage", lambda ctx: CommandResult("x"), usage="/usage_demo <n>")
    host.commands["usage_demo"] = spec
    assert (await host.dispatch("/help usage-demo", conv())).text == \
        "/usage_demo — Has usage\n\n/usage_demo <n>"


async def test_model_turns_keep_history_and_the_session(host, tiny):
    c = conv()
    assert (await host.dispatch("hello", c)).text == "you said: hello"
    assert (await host.dispatch("again", c)).text == "you said: again"
    request = tiny.requests[-1]
    assert request.session_id == "s-1" and request.body["model"] == "echo-model"
    assert [m["role"] for m in request.body["messages"]] == ["user", "assistant", "user"]
    assert c.history[-1] == {"role": "assistant", "content": "you said: again"}


async def test_streaming_turn_calls_on_delta(host, tiny):
    parts: list[str] = []
    reply = await host.dispatch("one two", conv(), on_delta=parts.append)
    assert parts == ["you ", "said: ", "one ", "two "] and reply.text == "".join(parts)
    assert tiny.requests[-1].stream and tiny.requests[-1].body["stream"] is True


async def test_model_ref_is_split_on_the_first_slash_and_aliases_work(host, tiny):
    await host.dispatch("hi", Conversation(model="tn/anthropic/claude-sonnet-4.6"))
    assert tiny.requests[-1].body["model"] == "anthropic/claude-sonnet-4.6"


async def test_unknown_provider(host):
    reply = await host.dispatch("hi", Conversation(model="nope/x"))
    assert reply.is_error and "No provider for model 'nope/x'" in reply.text


async def test_provider_error_is_a_clean_reply_and_history_stays_consistent(host, tiny):
    c = conv()
    tiny.provider_error = UpstreamError("cannot reach https://blockrun.ai/api")
    reply = await host.dispatch("hello", c)
    assert reply.is_error and reply.text == "⚠️ cannot reach https://blockrun.ai/api"
    assert c.history == []
    tiny.provider_error = None
    await host.dispatch("hello", c)
    assert [m["role"] for m in c.history] == ["user", "assistant"]


async def test_cancelling_a_turn_leaves_history_clean(tiny):
    started = asyncio.Event()

    def register(api):
        from clawrouter_plugin.host.api import ProviderSpec

        async def complete(request):
            async def forever():
                yield "partial "
                started.set()
                await asyncio.sleep(30)
                yield "never"
            return forever()
        api.register_provider(ProviderSpec(id="slow", label="Slow", complete=complete))

    host = Host({})
    host.load(manifest("slow"), register)
    c = Conversation(model="slow/m")
    task = asyncio.ensure_future(host.dispatch("hi", c, on_delta=lambda d: None))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert c.history == []
