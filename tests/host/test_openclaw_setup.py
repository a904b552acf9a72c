"""clawrouter openclaw-config: the provider block, and --write merging into a sample file."""

from __future__ import annotations

import json
import os

import pytest

from clawrouter_plugin.catalog import load_catalog
from clawrouter_plugin.cli import main
from clawrouter_plugin.host.openclaw_setup import API_KEY_PLACEHOLDER, model_definitions

SAMPLE = {
    "gateway": {"port": 18789},
    "models": {"providers": {
        "openai": {"baseUrl": "https://api.openai.com/v1", "apiKey": "sk-keep-me"},
        "blockrun": {"baseUrl": "http://127.0.0.1:1111/v1", "models": [], "headers": {"x": "1"}},
    }},
    "agents": {"defaults": {"model": {"primary": "openai/gpt-4o"}}},
    "plugins": {"entries": {"other": {"enabled": True}}},
}


def run(capsys, *args: str) -> tuple[int, str, str]:
    """``clawrouter openclaw-config ARGS`` in process: (exit code, stdout, stderr)."""
    code = main(["openclaw-config", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def home(openclaw_home):
    return openclaw_home


def test_model_rows_cover_profiles_models_and_aliases():
    catalog = load_catalog()
    rows = {row["id"]: row for row in model_definitions(catalog)}
    assert len(rows) == len(catalog.profiles) + len(catalog.chat) + len(
        set(catalog.aliases) - set(catalog.profiles) - set(catalog.chat))
    assert list(rows)[:5] == ["auto", "eco", "premium", "free", "agentic"]
    sonnet = rows["anthropic/claude-sonnet-4.6"]
    assert sonnet == {"id": "anthropic/claude-sonnet-4.6", "name": "anthropic/claude-sonnet-4.6",
                      "reasoning": True, "input": ["text", "image"],
                      "cost": {"input": 3.0, "output": 15.0, "cacheRead": 0, "cacheWrite": 0},
                      "contextWindow": 200000, "maxTokens": 8192}
    assert rows["br-sonnet"] == {**sonnet, "id": "br-sonnet",
                                 "name": "br-sonnet → anthropic/claude-sonnet-4.6"}
    assert rows["free"]["input"] == ["text"] and rows["free"]["cost"]["input"] == 0
    assert rows["router"]["name"] == "router → auto"
    for row in rows.values():
        assert set(row) == {"id", "name", "reasoning", "input", "cost", "contextWindow", "maxTokens"}


def test_print(home, capsys):
    code, out, err = run(capsys, "--port", "8555")
    assert code == 0, err
    block = json.loads(out)["models"]["providers"]["blockrun"]
    assert block["baseUrl"] == "http://127.0.0.1:8555/v1"
    assert block["api"] == "openai-completions" and block["apiKey"] == API_KEY_PLACEHOLDER
    assert any(m["id"] == "auto" for m in block["models"])
    default = json.loads(run(capsys)[1])["models"]["providers"]["blockrun"]
    assert default["baseUrl"] == "http://127.0.0.1:8402/v1"


def test_write_merges_into_a_sample_file_with_a_backup(tmp_path, home, capsys):
    path = tmp_path / "openclaw.json"
    path.write_text(json.dumps(SAMPLE, indent=4))
    os.chmod(path, 0o640)
    original = path.read_text()
    code, out, err = run(capsys, "--write", "--file", str(path), "--port", "8403")
    assert code == 0, err
    assert "models.providers.blockrun" in out and "Previous version kept as" in out
    data = json.loads(path.read_text())
    block = data["models"]["providers"]["blockrun"]
    assert block["baseUrl"] == "http://127.0.0.1:8403/v1" and len(block["models"]) > 100
    assert block["headers"] == {"x": "1"}  # the user's extra keys survive
    assert data["models"]["providers"]["openai"]["apiKey"] == "sk-keep-me"
    assert data["agents"]["defaults"]["model"]["primary"] == "openai/gpt-4o"  # not overridden
    assert data["gateway"] == SAMPLE["gateway"]
    assert data["plugins"]["entries"]["other"] == {"enabled": True}
    assert data["plugins"]["entries"]["blockrun"]["config"]["port"] == 8403
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    backups = list(tmp_path.glob("openclaw.json.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == original
    assert "already up to date" in run(capsys, "--write", "--file", str(path), "--port", "8403")[1]
    assert len(list(tmp_path.glob("openclaw.json.bak-*"))) == 1
    assert not list(tmp_path.glob(".openclaw.json.*.tmp"))


def test_write_creates_the_default_file_under_home(home, capsys):
    code, _, err = run(capsys, "--write")
    assert code == 0, err
    data = json.loads((home / ".openclaw" / "openclaw.json").read_text())
    assert data["agents"]["defaults"]["model"]["primary"] == "blockrun/auto"
    assert "blockrun" in data["models"]["providers"]


@pytest.mark.parametrize("content, problem", [
    ('{\n  // my settings\n  "models": {},\n}\n', "not plain JSON"),
    ('[1, 2]', "top level is not a JSON object"),
    ('{"models": {"providers": []}}', "models.providers is not an object"),
])
def test_write_refuses_files_it_cannot_handle(tmp_path, home, capsys, content, problem):
    path = tmp_path / "openclaw.json"
    path.write_text(content)
    code, _, err = run(capsys, "--write", "--file", str(path))
    assert code == 2 and problem in err
    assert "Traceback" not in err
    assert path.read_text() == content
    assert not list(tmp_path.glob("openclaw.json.bak-*"))
