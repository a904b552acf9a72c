"""The plugin id is ``blockrun``: OpenClaw bundles an unrelated plugin called ``clawrouter``.
The old keys are still read, with a deprecation warning."""

from __future__ import annotations

import logging

import pytest
import yaml

from clawrouter_plugin.config import PLUGIN_ID, load_config, plugin_section
from clawrouter_plugin.errors import ConfigError
from clawrouter_plugin.host.host import Host
from clawrouter_plugin.host.manifest import builtin_manifest_path, load_manifest


def write(tmp_path, whole: dict) -> str:
    path = tmp_path / "openclaw.yaml"
    path.write_text(yaml.safe_dump(whole))
    return str(path)


def entries(**by_id) -> dict:
    return {"plugins": {"entries": {key: {"config": value} for key, value in by_id.items()}}}


def deprecations(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]


def test_the_id_is_blockrun_everywhere():
    assert PLUGIN_ID == "blockrun"
    assert load_manifest(builtin_manifest_path()).id == "blockrun"


def test_the_new_key_is_read_without_a_warning(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="clawrouter")
    loaded = load_config(write(tmp_path, entries(blockrun={"maxCostPerRun": 0.5})))
    assert loaded.plugin.max_cost_per_run == 0.5
    assert deprecations(caplog) == []


@pytest.mark.parametrize("whole, where", [
    (entries(clawrouter={"maxCostPerRun": 0.25}), "plugins.entries.clawrouter"),
    ({"plugins": [{"id": "clawrouter", "config": {"maxCostPerRun": 0.25}}]}, "plugins[0].id"),
    ({"plugins": [{"id": "x"}, {"id": "@blockrun/clawrouter", "config": {"maxCostPerRun": 0.25}}]},
     "plugins[1].id"),
])
def test_an_old_key_is_read_with_a_deprecation_warning(tmp_path, caplog, whole, where):
    caplog.set_level(logging.WARNING, logger="clawrouter")
    loaded = load_config(write(tmp_path, whole))
    assert loaded.plugin.max_cost_per_run == 0.25
    [message] = deprecations(caplog)
    assert message.startswith(where) and "'blockrun'" in message


@pytest.mark.parametrize("whole", [
    entries(clawrouter={"maxCostPerRun": 0.25}, blockrun={"maxCostPerRun": 0.5}),
    {"plugins": [{"id": "clawrouter", "config": {"maxCostPerRun": 0.25}},
                 {"id": "blockrun", "config": {"maxCostPerRun": 0.5}}]},
])
def test_the_new_key_wins_over_an_old_one(whole, caplog):
    caplog.set_level(logging.WARNING, logger="clawrouter")
    raw, where = plugin_section(whole)
    assert raw == {"maxCostPerRun": 0.5}
    assert where in ("plugins.entries.blockrun.config", "plugins[1].config")
    assert deprecations(caplog) == []


def test_the_host_loads_its_config_from_an_old_key(caplog):
    caplog.set_level(logging.WARNING, logger="clawrouter")
    host = Host(entries(clawrouter={"maxCostPerRun": 0.25, "bogus": 1}))
    with pytest.raises(ConfigError, match=r"plugins\.entries\.clawrouter\.config\.bogus"):
        host.load_builtin()
    assert deprecations(caplog)


def test_the_host_reads_the_new_key_and_its_enabled_flag():
    assert Host({"plugins": {"entries": {"blockrun": {"enabled": False}}}}).load_builtin() is None
    host = Host(entries(blockrun={"maxCostPerRun": 0.5}))
    assert host.load_builtin().manifest.id == "blockrun"
    assert "stats" in host.commands
