"""clawrouter openclaw-config: per-turn maxTokens, the blockrun plugin entry, and how the
plugin gets installed (the real `openclaw` install runs in test_gateway_e2e.py)."""

from __future__ import annotations

import json
import os
import sys

import pytest

from clawrouter_plugin.catalog import load_catalog
from clawrouter_plugin.cli import main
from clawrouter_plugin.host.openclaw_plugin import PLUGIN_DIR
from clawrouter_plugin.host.openclaw_setup import model_definitions

CATALOG = load_catalog()


@pytest.fixture
def home(openclaw_home):
    return openclaw_home


def write(capsys, path, *args: str) -> tuple[int, str, dict]:
    code = main(["openclaw-config", "--write", "--file", str(path), *args])
    out = capsys.readouterr().out
    return code, out, json.loads(path.read_text())


def test_rows_ask_for_what_a_turn_needs_not_the_model_maximum():
    rows = {row["id"]: row for row in model_definitions(CATALOG)}
    assert max(row["maxTokens"] for row in rows.values()) == 8192
    for profile in ("auto", "eco", "premium", "agentic"):
        assert rows[profile]["maxTokens"] == 8192
    for model in CATALOG.chat.values():
        expected = min(model.max_output, 8192 if model.reasoning else 4096)
        assert rows[model.id]["maxTokens"] == expected, model.id
    assert rows["openai/gpt-4o-mini"]["maxTokens"] == 4096
    assert rows["free"]["maxTokens"] == min(CATALOG.chat[CATALOG.free_model].max_output, 4096)


def test_write_enables_the_plugin_with_a_proxy_command(tmp_path, home, capsys):
    path = tmp_path / "openclaw.json"
    code, out, data = write(capsys, path)
    assert code == 0
    entry = data["plugins"]["entries"]["blockrun"]
    assert entry["enabled"] is True
    assert entry["config"]["proxyCommand"] == [sys.executable, "-m", "clawrouter_plugin", "serve"]
    assert "port" not in entry["config"]  # the default port needs no setting
    assert "clawrouter" not in data["plugins"]["entries"]  # the id OpenClaw's own plugin has
    command = f"openclaw plugins install --link --force --accept-capabilities {PLUGIN_DIR}"
    assert "openclaw is not on PATH" in out and command in out


def test_write_keeps_the_users_plugin_settings(tmp_path, home, capsys):
    path = tmp_path / "openclaw.json"
    mine = {"proxyCommand": ["/opt/clawrouter/bin/clawrouter", "serve"], "maxCostPerRun": 0.5}
    path.write_text(json.dumps({"plugins": {"entries": {"blockrun": {"enabled": False,
                                                                     "config": mine}}}}))
    code, out, data = write(capsys, path, "--port", "8499")
    assert code == 0
    entry = data["plugins"]["entries"]["blockrun"]
    assert entry["enabled"] is True
    assert entry["config"] == {**mine, "port": 8499}


def test_an_installed_plugin_is_not_installed_again(tmp_path, home, capsys):
    path = tmp_path / "openclaw.json"
    write(capsys, path)
    data = json.loads(path.read_text())
    data["plugins"]["load"] = {"paths": [str(PLUGIN_DIR)]}  # what `openclaw plugins install` adds
    path.write_text(json.dumps(data))
    code, out, _ = write(capsys, path)
    assert code == 0 and "already up to date" in out and "plugins install" not in out


def test_the_plugin_folder_is_complete():
    package = json.loads((PLUGIN_DIR / "package.json").read_text())
    assert package["type"] == "module" and package["openclaw"]["extensions"] == ["./index.js"]
    assert "dependencies" not in package
    assert os.path.isfile(PLUGIN_DIR / "index.js")
