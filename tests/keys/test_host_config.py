"""`server.host` and `server.requireKeys`: which addresses need API keys, and what is refused."""

from __future__ import annotations

import pytest

from clawrouter_plugin.config import PluginConfig, validate_plugin_config, with_overrides
from clawrouter_plugin.errors import ConfigError


@pytest.mark.parametrize("host,required", [
    ("127.0.0.1", False), ("127.0.0.2", False), ("::1", False), ("localhost", False),
    ("0.0.0.0", True), ("::", True), ("10.0.0.5", True), ("192.168.1.20", True),
    ("proxy.team.internal", True),
])
def test_anything_but_loopback_requires_keys(host, required):
    server = validate_plugin_config({"server": {"host": host}}).server
    assert server.keys_required is required and server.loopback is not required
    forced = validate_plugin_config({"server": {"host": host, "requireKeys": True}}).server
    assert forced.keys_required


def test_the_default_is_loopback_without_keys():
    server = PluginConfig().server
    assert server.host == "127.0.0.1" and not server.require_keys and not server.keys_required


@pytest.mark.parametrize("host", ["", "http://0.0.0.0", "0.0.0.0:8402", "a b", "-x", "x" * 300,
                                  "bad_host"])
def test_a_bad_host_is_refused_with_its_key_named(host):
    with pytest.raises(ConfigError, match=r"server\.host"):
        validate_plugin_config({"server": {"host": host}})
    with pytest.raises(ConfigError, match="--host"):
        with_overrides(PluginConfig(), host=host)


def test_host_override_keeps_the_other_server_settings():
    plugin = validate_plugin_config({"server": {"maxConnections": 7, "requireKeys": True}})
    server = with_overrides(plugin, host="0.0.0.0").server
    assert (server.host, server.max_connections, server.require_keys) == ("0.0.0.0", 7, True)
