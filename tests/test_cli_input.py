"""The command line and environment as a new user meets them: every mistake is a one-line
error with a non-zero exit code, never a traceback, and leaves the data directory alone."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clawrouter_plugin.cli import main
from clawrouter_plugin.config import api_base_problem

PHRASE = "legal winner thank year wave sausage worth useful legal winner thank yellow"
KEY = "0x" + "11" * 32
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, str]:
    """A clean environment: HOME and the data directory in tmp_path, no config, no key."""
    for name in ("BLOCKRUN_WALLET_KEY", "BLOCKRUN_PROXY_PORT", "OPENCLAW_CONFIG_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLAWROUTER_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("OPENCLAW_CONFIG", str(tmp_path / "absent.yaml"))
    return dict(os.environ)


def _run(env: dict[str, str], *args: str, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "clawrouter_plugin", *args], env=env, cwd=ROOT,
                          stderr=subprocess.PIPE, text=True, timeout=30, **kwargs)


@pytest.mark.parametrize("command", [["serve"], ["chat"], ["openclaw-config"]])
@pytest.mark.parametrize("port", ["70000", "-1", "abc", "65536", "²"])
def test_a_port_out_of_range_is_a_usage_error(env, tmp_path, capsys, command, port):
    with pytest.raises(SystemExit) as exited:
        main([*command, "--port", port])
    assert exited.value.code == 2
    assert "not a port number (0-65535)" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("port", ["abc", "70000", "²", "८०"])
def test_a_bad_port_in_the_environment_is_one_line(env, port):
    env["BLOCKRUN_PROXY_PORT"] = port
    done = _run(env, "openclaw-config")
    assert done.returncode == 2, done.stderr
    assert "BLOCKRUN_PROXY_PORT: not a port number" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("url", [
    "notaurl", "blockrun.ai/api", "ftp://blockrun.ai/api", "https://user:s3cretpw@blockrun.ai/api",
    "http://blockrun.ai/api", "https://blockrun.ai:99999/api", "https://bad host/api", "https://",
])
def test_serve_refuses_a_bad_api_base(env, tmp_path, url):
    result = _run(env, "serve", "--port", "0", "--api-base", url)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("clawrouter: --api-base: ")
    assert result.stderr.count("\n") == 1 and "s3cretpw" not in result.stderr
    assert not (tmp_path / "data").exists()


def test_a_bad_api_base_in_the_config_file_is_refused(env, tmp_path, capsys):
    config = tmp_path / "openclaw.yaml"
    config.write_text("plugins:\n  - id: clawrouter\n    config:\n"
                      "      apiBase: https://me:s3cretpw@blockrun.ai/api\n")
    assert main(["route", "hi", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "apiBase" in err and "user name or password" in err and "s3cretpw" not in err


@pytest.mark.parametrize("url", ["https://blockrun.ai/api", "http://127.0.0.1:9/api",
                                 "http://localhost:8402", "http://[::1]:9/api"])
def test_https_and_local_http_api_bases_are_accepted(url):
    assert api_base_problem(url) is None


@pytest.mark.parametrize("action", ["status", "export"])
def test_wallet_refuses_a_stray_argument_without_echoing_it(env, tmp_path, capsys, action):
    assert main(["wallet", action, PHRASE]) == 2
    captured = capsys.readouterr()
    assert "takes no further argument" in captured.err
    assert "legal" not in captured.out + captured.err
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("key", ["0x1234", "zz" + KEY, PHRASE, KEY[2:] + "00", "0x" + "g" * 64])
def test_a_bad_wallet_key_creates_no_data_directory(env, tmp_path, capsys, monkeypatch, key):
    monkeypatch.setenv("BLOCKRUN_WALLET_KEY", key)
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("clawrouter: $BLOCKRUN_WALLET_KEY is not valid") and key not in err
    assert not (tmp_path / "data").exists()


def test_a_deeply_nested_jsonl_line_is_reported_not_a_crash(env, capsys, monkeypatch):
    good = {"id": 2, "body": {"messages": [{"role": "user", "content": "hi"}]}}
    monkeypatch.setattr(sys, "stdin", io.StringIO("[" * 100_000 + "\n" + json.dumps(good) + "\n"))
    assert main(["route", "--jsonl", "-"]) == 1
    first, second = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert first["error"].startswith("not valid JSON: depth limit exceeded")
    assert second["id"] == 2 and "model" in second


def test_a_broken_pipe_ends_quietly(env, tmp_path):
    lines = tmp_path / "many.jsonl"
    line = json.dumps({"id": 1, "body": {"messages": [{"role": "user", "content": "hello"}]}})
    lines.write_text((line + "\n") * 3000)
    child = subprocess.Popen([sys.executable, "-m", "clawrouter_plugin", "route", "--jsonl",
                              str(lines)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    assert child.stdout.read(1) == b"{"
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=30) == 1
    assert "Traceback" not in err and "Exception ignored" not in err


def test_closed_stdout_is_not_a_crash(env, tmp_path):
    lines = tmp_path / "one.jsonl"
    lines.write_text(json.dumps({"id": 1, "body": {"messages": [{"role": "user",
                                                                  "content": "hi"}]}}) + "\n")
    result = _run(env, "route", "--jsonl", str(lines), stdout=None,
                  preexec_fn=lambda: os.close(1))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_behind_stdout_is_one_line(env):
    with open("/dev/full", "w") as full:
        result = _run(env, "openclaw-config", "--port", "8402", stdout=full)
    assert result.returncode == 1
    assert result.stderr == "clawrouter: cannot write the output: No space left on device\n"
