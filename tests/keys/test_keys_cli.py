"""`clawrouter keys create|list|revoke` as a user runs it: real processes, the configured
backend (the data directory, or a real redis-server), the secret printed once, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from clawrouter_plugin.keys.local import LocalKeyStore


def _config(tmp_path: Path, redis_url: str | None) -> Path:
    config: dict = {}
    if redis_url:
        config["state"] = {"backend": "redis", "redisUrl": redis_url}
    path = tmp_path / "openclaw.yaml"
    path.write_text(yaml.safe_dump({"plugins": {"entries": {"blockrun": {"config": config}}}}))
    return path


def _run(tmp_path: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENCLAW_CONFIG": str(config), "HOME": str(tmp_path),
           "CLAWROUTER_HOME": str(tmp_path / "data")}
    return subprocess.run([sys.executable, "-m", "clawrouter_plugin", "keys", *args], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(params=["local", "redis"])
def config(request, tmp_path) -> Path:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return _config(tmp_path, url)


def test_create_list_revoke(tmp_path, config):
    created = _run(tmp_path, config, "create", "--name", "ci bot", "--daily", "2.5",
                   "--per-run", "0.25")
    assert created.returncode == 0, created.stderr
    [secret] = [line for line in created.stdout.splitlines() if line.startswith("cr_")]
    key_id = secret[3:15]
    assert f"created API key {key_id} (ci bot)" in created.stdout
    listed = _run(tmp_path, config, "list")
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if line.startswith(key_id)]
    assert "ci bot" in row and "$2.50" in row and "$0.25" in row and "active" in row
    revoked = _run(tmp_path, config, "revoke", key_id)
    assert revoked.returncode == 0 and f"revoked API key {key_id}" in revoked.stdout
    listed = _run(tmp_path, config, "list")
    assert "revoked" in next(line for line in listed.stdout.splitlines()
                             if line.startswith(key_id))
    for result in (created, listed, revoked):
        assert "Traceback" not in result.stderr
    for result in (listed, revoked):  # the secret is printed by `create` only
        assert secret not in result.stdout + result.stderr


def test_the_local_file_holds_the_hash_not_the_secret(tmp_path):
    config = _config(tmp_path, None)
    created = _run(tmp_path, config, "create", "--name", "alice")
    secret = created.stdout.splitlines()[1]
    path = tmp_path / "data" / "api-keys.json"
    assert secret not in path.read_text() and (path.stat().st_mode & 0o777) == 0o600
    [key] = LocalKeyStore(path)._read_records()
    assert key["name"] == "alice" and len(key["hash"]) == 64


def test_errors_are_clear_and_without_traceback(tmp_path, config):
    unknown = _run(tmp_path, config, "revoke", "0123456789ab")
    assert unknown.returncode == 2
    assert "no API key with id '0123456789ab'" in unknown.stderr
    bad_budget = _run(tmp_path, config, "create", "--name", "x", "--daily", "-3")
    assert bad_budget.returncode == 2 and "not an amount of USD" in bad_budget.stderr
    no_name = _run(tmp_path, config, "create")
    assert no_name.returncode == 2 and "--name" in no_name.stderr
    empty_name = _run(tmp_path, config, "create", "--name", "  ")
    assert empty_name.returncode == 2 and "key name" in empty_name.stderr
    listed = _run(tmp_path, config, "list")
    assert listed.returncode == 0 and "no API keys yet" in listed.stdout
    for result in (unknown, bad_budget, no_name, empty_name, listed):
        assert "Traceback" not in result.stderr


def test_redis_unreachable_is_a_clear_error(tmp_path):
    from tests.support.redis_server import free_port

    config = _config(tmp_path, f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    result = _run(tmp_path, config, "list")
    assert result.returncode == 2 and "cannot reach Redis" in result.stderr
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr
