"""Third-party plugins found through the ``clawrouter.plugins`` entry-point group."""

from __future__ import annotations

import logging
import textwrap

import pytest

from clawrouter_plugin.host.host import Conversation, Host

PLUGIN_CODE = '''
from clawrouter_plugin.host.api import CommandResult, CommandSpec

def register(api):
    async def hello(ctx):
        return CommandResult(f"hello from {api.id}, greeting={api.plugin_config.get('greeting')}")
    api.register_command(CommandSpec("hello", "Say hello", hello, require_auth=False))
'''

MANIFEST = '''
id: {id}
name: Tiny third-party plugin
version: "0.0.1"
entry: {module}:register
configSchema:
  type: object
  additionalProperties: false
  properties:
    greeting: {{type: string}}
'''


def install(root, module: str, plugin_id: str, *, ep_name: str | None = None,
            code: str = PLUGIN_CODE, manifest: bool = True) -> None:
    """A package plus a ``*.dist-info`` declaring its entry point, importable from ``root``."""
    package = root / module
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(code))
    if manifest:
        (package / "plugin.yaml").write_text(MANIFEST.format(id=plugin_id, module=module))
    info = root / f"{module}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(
        f"[clawrouter.plugins]\n{ep_name or plugin_id} = {module}:register\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


async def test_entry_point_plugin_is_loaded_with_its_config(site):
    install(site, "tinyplug_ok", "tiny-hello")
    host = Host({"plugins": {"entries": {"tiny-hello": {"config": {"greeting": "hey"}}}}})
    loaded = host.load_entry_points()
    assert "tiny-hello" in [p.manifest.id for p in loaded]
    reply = await host.dispatch("/hello", Conversation())
    assert reply.text == "hello from tiny-hello, greeting=hey"


def test_broken_third_party_plugins_are_skipped_and_logged(site, caplog):
    install(site, "tinyplug_badcfg", "bad-config")
    install(site, "tinyplug_nomanifest", "no-manifest", manifest=False)
    install(site, "tinyplug_mismatch", "real-id", ep_name="other-id")
    install(site, "tinyplug_crash", "crashes", code="def register(api):\n    raise ValueError('x')\n")
    host = Host({"plugins": {"entries": {"bad-config": {"config": {"greeting": 1}}}}})
    with caplog.at_level(logging.ERROR):
        loaded = host.load_entry_points()
    assert [p.manifest.id for p in loaded] == ["blockrun"]  # ours, installed by pyproject
    assert "hello" not in host.commands
    assert "bad-config failed to load: invalid configuration" in caplog.text
    assert "no-manifest failed to load" in caplog.text and "has no plugin.yaml" in caplog.text
    assert "plugin id mismatch" in caplog.text
    assert "crashes failed to load" in caplog.text


def test_denied_entry_point_plugin_is_not_loaded(site):
    install(site, "tinyplug_denied", "denied")
    host = Host({"plugins": {"deny": ["denied"]}})
    host.load_entry_points()
    assert "denied" not in host.plugins and "hello" not in host.commands
