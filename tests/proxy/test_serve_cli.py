"""`clawrouter serve` as a user runs it: a real process, health, reuse, clean SIGTERM."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5) as resp:
            return json.load(resp)
    except OSError:
        return None


def test_serve_health_reuse_and_sigterm(tmp_path):
    port = _free_port()
    env = {**os.environ, "BLOCKRUN_WALLET_KEY": "0x" + secrets.token_hex(32),
           "OPENCLAW_CONFIG": str(tmp_path / "absent.yaml"), "HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "clawrouter_plugin", "serve", "--port", str(port),
           "--api-base", "http://127.0.0.1:9/api", "--data-dir", str(tmp_path / "data")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        health = None
        while health is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            health = _health(port)
        assert health is not None and health["status"] == "ok"
        assert env["BLOCKRUN_WALLET_KEY"][2:] not in json.dumps(health)
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
        assert again.returncode == 0 and "already running" in again.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert env["BLOCKRUN_WALLET_KEY"][2:] not in out + err


def test_serve_reports_a_foreign_port_owner(tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "clawrouter_plugin", "serve", "--port", str(port),
             "--data-dir", str(tmp_path)],
            env={**os.environ, "OPENCLAW_CONFIG": str(tmp_path / "absent.yaml")},
            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "not clawrouter" in result.stderr and "Traceback" not in result.stderr
