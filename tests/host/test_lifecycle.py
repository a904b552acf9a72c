"""Plugin loading, config validation, the closed API and the services lifecycle."""

from __future__ import annotations

import asyncio
import logging

import pytest

from clawrouter_plugin.errors import ClawRouterError, ConfigError
from clawrouter_plugin.host.api import CommandResult, CommandSpec, ServiceSpec
from clawrouter_plugin.host.host import Host
from clawrouter_plugin.host.registry import PluginError, RegistrationClosed

from .conftest import manifest


async def _noop(ctx):
    return CommandResult("ok")


def test_register_collects_everything(tiny):
    host = Host({})
    host.load(manifest(), tiny.register)
    assert sorted(host.commands) == ["boom", "echo", "ping", "secret_thing"]
    assert host.providers["tiny"] is host.providers["tn"]
    assert "tiny" in host.plugins


def test_api_is_closed_after_register(tiny):
    host = Host({})
    host.load(manifest(), tiny.register)
    with pytest.raises(RegistrationClosed, match="after register"):
        tiny.api.register_command(CommandSpec("late", "Too late", _noop))
    with pytest.raises(RegistrationClosed):
        tiny.api.register_service(ServiceSpec("late", start=lambda ctx: None))
    assert "late" not in host.commands


def test_async_register_is_refused():
    async def register(api):
        api.register_command(CommandSpec("x", "x", _noop))

    host = Host({})
    with pytest.raises(PluginError, match="synchronous"):
        host.load(manifest(), register)
    assert not host.commands and not host.plugins


def test_register_returning_awaitable_is_refused():
    def register(api):
        return asyncio.sleep(0)

    with pytest.raises(PluginError, match="synchronous"):
        Host({}).load(manifest(), register)


@pytest.mark.parametrize("name, problem", [
    ("9lives", "invalid command name"), ("has space", "invalid command name"),
    ("help", "reserved"), ("Commands", "reserved"),
])
def test_bad_command_names(name, problem):
    def register(api):
        api.register_command(CommandSpec(name, "desc", _noop))

    with pytest.raises(PluginError, match=problem):
        Host({}).load(manifest(), register)


def test_failed_register_registers_nothing():
    def register(api):
        api.register_command(CommandSpec("fine", "ok", _noop))
        api.register_command(CommandSpec("fine", "again", _noop))

    host = Host({})
    with pytest.raises(PluginError, match="registered twice"):
        host.load(manifest(), register)
    assert not host.commands and not host.plugins


def test_two_plugins_cannot_claim_the_same_command(tiny):
    host = Host({})
    host.load(manifest("one"), tiny.register)

    def other(api):
        api.register_command(CommandSpec("ECHO", "mine", _noop))

    with pytest.raises(PluginError, match="already registered by another plugin: ECHO"):
        host.load(manifest("two"), other)
    assert "two" not in host.plugins


def test_config_is_validated_before_register(tiny):
    config = {"plugins": {"entries": {"tiny": {"config": {"greeting": 5, "typo": 1}}}}}
    with pytest.raises(ConfigError) as err:
        Host(config).load(manifest(), tiny.register)
    assert "plugins.entries.tiny.config.greeting: expected string" in err.value.message
    assert "plugins.entries.tiny.config.typo: unknown key" in err.value.message
    assert tiny.api is None  # register never ran


async def test_plugin_config_and_whole_config_reach_the_plugin(tiny):
    config = {"plugins": [{"id": "tiny", "config": {"greeting": "hi"}}], "other": 1}
    host = Host(config)
    host.load(manifest(), tiny.register)
    assert tiny.api.plugin_config == {"greeting": "hi"}
    assert tiny.api.config is config
    from clawrouter_plugin.host.host import Conversation
    assert (await host.dispatch("/ping", Conversation())).text == "pong hi"


@pytest.mark.parametrize("plugins, reason", [
    ({"enabled": False}, "plugins.enabled is false"),
    ({"allow": ["other"]}, "not in plugins.allow"),
    ({"deny": ["tiny"]}, "listed in plugins.deny"),
    ({"entries": {"tiny": {"enabled": False}}}, "its entry has enabled: false"),
])
def test_disabled_reasons(plugins, reason):
    assert Host({"plugins": plugins}).disabled_reason("tiny") == reason
    assert Host({}).disabled_reason("tiny") is None


async def test_services_start_in_order_and_stop_once_in_reverse(tiny):
    host = Host({})
    host.load(manifest(), tiny.register)
    async with host:
        assert tiny.events == ["start first", "start second"]
        await host.start()  # idempotent
    await host.stop()  # already stopped: nothing runs twice
    assert tiny.events == ["start first", "start second", "stop second", "stop first"]


async def test_a_failing_start_stops_what_started(tiny, caplog):
    host = Host({})
    host.load(manifest(), tiny.register)

    def broken(api):
        def start(ctx):
            raise RuntimeError("socket exploded")
        api.register_service(ServiceSpec("broken", start=start,
                                         stop=lambda ctx: tiny.events.append("stop broken")))

    host.load(manifest("other"), broken)
    with pytest.raises(ClawRouterError, match=r"service broken failed to start: internal error \(RuntimeError\)"):
        await host.start()
    assert tiny.events == ["start first", "start second", "stop second", "stop first"]
    assert "socket exploded" in caplog.text  # the details are in the log only


async def test_a_failing_stop_is_logged_and_the_rest_still_stop(tiny, caplog):
    host = Host({})

    def register(api):
        def stop(ctx):
            raise OSError("disk gone")
        api.register_service(ServiceSpec("flaky", start=lambda ctx: None, stop=stop))

    host.load(manifest("flaky"), register)
    host.load(manifest(), tiny.register)
    await host.start()
    with caplog.at_level(logging.ERROR):
        await host.stop()
    assert tiny.events[-2:] == ["stop second", "stop first"]
    assert "service flaky failed to stop" in caplog.text


async def test_no_loading_after_start(tiny):
    host = Host({})
    await host.start()
    with pytest.raises(PluginError, match="already started"):
        host.load(manifest(), tiny.register)
    await host.stop()
