"""plugin.yaml: valid, in sync with the config model and the registered commands."""

from __future__ import annotations

import pytest
import yaml

from clawrouter_plugin import __version__
from clawrouter_plugin.config import PluginConfig
from clawrouter_plugin.host.manifest import (
    builtin_manifest_path,
    generated_manifest,
    load_manifest,
    main,
    parse_manifest,
    render,
)
from clawrouter_plugin.host.registry import PluginError, RecordingApi, run_register

REGENERATE = "python -m clawrouter_plugin.host.manifest --write"


def test_manifest_is_in_sync_with_the_code():
    path = builtin_manifest_path()
    text = path.read_text("utf-8")
    assert render(generated_manifest(yaml.safe_load(text))) == text, f"stale: run `{REGENERATE}`"


def test_manifest_fields():
    manifest = load_manifest(builtin_manifest_path())
    assert manifest.id == "blockrun" and manifest.version == __version__
    assert manifest.entry == "clawrouter_plugin:register"
    assert manifest.providers == ("blockrun",)
    assert manifest.config_schema == PluginConfig.model_json_schema(by_alias=True)
    names = [c["name"] for c in manifest.commands]
    assert names == ["model", "stats", "wallet", "exclude", "imagegen", "img2img"]


def test_registered_commands_match_the_manifest(monkeypatch):
    monkeypatch.delenv("CLAWROUTER_DISABLED", raising=False)
    manifest = load_manifest(builtin_manifest_path())
    api = RecordingApi(plugin_id="blockrun", name="ClawRouter", version=__version__,
                       config={}, plugin_config={})
    registered = run_register(manifest.load_entry(), api)
    assert [{"name": c.name, "description": c.description} for c in registered.commands] \
        == list(manifest.commands)
    assert [p.id for p in registered.providers] == ["blockrun"]
    assert [s.id for s in registered.services] == ["clawrouter-proxy"]


def test_check_mode_reports_up_to_date(capsys):
    assert main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


@pytest.mark.parametrize("raw, problem", [
    ([], "must be a mapping"),
    ({"entry": "m:r", "configSchema": {}}, "'id' is required"),
    ({"id": "x", "entry": "module", "configSchema": {}}, "module:attribute"),
    ({"id": "x", "entry": "m:r"}, "'configSchema'"),
    ({"id": "x", "entry": "m:r", "configSchema": {}, "commands": ["stats"]}, "'commands'"),
])
def test_invalid_manifests(raw, problem):
    with pytest.raises(PluginError, match=problem):
        parse_manifest(raw)


def test_unloadable_entry():
    manifest = parse_manifest({"id": "x", "entry": "no_such_module_xyz:register",
                               "configSchema": {}})
    with pytest.raises(PluginError, match="cannot load entry"):
        manifest.load_entry()
