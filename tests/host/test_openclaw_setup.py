"""clawrouter openclaw-config: the provider block, and --write merging into a sample file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from clawrouter_plugin.catalog import load_catalog
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


def run(*args: str, env_extra: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    env.pop("BLOCKRUN_PROXY_PORT", None)
    return subprocess.run([sys.executable, "-m", "clawrouter_plugin", "openclaw-config", *args],
                          capture_output=True, text=True, timeout=60, env=env, cwd=cwd)


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home), "OPENCLAW_CONFIG": str(tmp_path / "none.yaml")}


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
                      "contextWindow": 200000, "maxTokens": 64000}
    assert rows["br-sonnet"] == {**sonnet, "id": "br-sonnet",
                                 "name": "br-sonnet → anthropic/claude-sonnet-4.6"}
    assert rows["free"]["input"] == ["text"] and rows["free"]["cost"]["input"] == 0
    assert rows["router"]["name"] == "router → auto"
    for row in rows.values():
        assert set(row) == {"id", "name", "reasoning", "input", "cost", "contextWindow", "maxTokens"}


def test_print(home):
    result = run("--port", "8555", env_extra=home)
    assert result.returncode == 0, result.stderr
    block = json.loads(result.stdout)["models"]["providers"]["blockrun"]
    assert block["baseUrl"] == "http://127.0.0.1:8555/v1"
    assert block["api"] == "openai-completions" and block["apiKey"] == API_KEY_PLACEHOLDER
    assert any(m["id"] == "auto" for m in block["models"])
    default = json.loads(run(env_extra=home).stdout)["models"]["providers"]["blockrun"]
    assert default["baseUrl"] == "http://127.0.0.1:8402/v1"


def test_write_merges_into_a_sample_file_with_a_backup(tmp_path, home):
    path = tmp_path / "openclaw.json"
    path.write_text(json.dumps(SAMPLE, indent=4))
    os.chmod(path, 0o640)
    original = path.read_text()
    result = run("--write", "--file", str(path), "--port", "8403", env_extra=home)
    assert result.returncode == 0, result.stderr
    assert "models.providers.blockrun" in result.stdout and "Previous version kept as" in result.stdout
    data = json.loads(path.read_text())
    block = data["models"]["providers"]["blockrun"]
    assert block["baseUrl"] == "http://127.0.0.1:8403/v1" and len(block["models"]) > 100
    assert block["headers"] == {"x": "1"}  # the user's extra keys survive
    assert data["models"]["providers"]["openai"]["apiKey"] == "sk-keep-me"
    assert data["agents"]["defaults"]["model"]["primary"] == "openai/gpt-4o"  # not overridden
    assert data["gateway"] == SAMPLE["gateway"] and data["plugins"] == SAMPLE["plugins"]
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    backups = list(tmp_path.glob("openclaw.json.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == original
    again = run("--write", "--file", str(path), "--port", "8403", env_extra=home)
    assert "already up to date" in again.stdout
    assert len(list(tmp_path.glob("openclaw.json.bak-*"))) == 1
    assert not list(tmp_path.glob(".openclaw.json.*.tmp"))


def test_write_creates_the_default_file_under_home(home):
    result = run("--write", env_extra=home)
    assert result.returncode == 0, result.stderr
    path = os.path.join(home["HOME"], ".openclaw", "openclaw.json")
    data = json.load(open(path))
    assert data["agents"]["defaults"]["model"]["primary"] == "blockrun/auto"
    assert "blockrun" in data["models"]["providers"]


@pytest.mark.parametrize("content, problem", [
    ('{\n  // my settings\n  "models": {},\n}\n', "not plain JSON"),
    ('[1, 2]', "top level is not a JSON object"),
    ('{"models": {"providers": []}}', "models.providers is not an object"),
])
def test_write_refuses_files_it_cannot_handle(tmp_path, home, content, problem):
    path = tmp_path / "openclaw.json"
    path.write_text(content)
    result = run("--write", "--file", str(path), env_extra=home)
    assert result.returncode == 2 and problem in result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_text() == content
    assert not list(tmp_path.glob("openclaw.json.bak-*"))
