"""``clawrouter chat`` end to end: a subprocess fed through stdin, paying the x402 test upstream."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import yaml

from .test_provider import CLOSED_RPC, free_port


async def run_chat(lines: list[str], *args: str, env: dict, timeout: float = 90) -> tuple[int, str, str]:
    """Run the chat as a subprocess; the test upstream keeps serving on this event loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "clawrouter_plugin", "chat", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env)
    try:
        out, err = await asyncio.wait_for(
            proc.communicate("\n".join(lines).encode() + b"\n"), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode(), err.decode()


def environment(tmp_path, key: str | None) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("BLOCKRUN_WALLET_KEY", "CLAWROUTER_HOME", "BLOCKRUN_PROXY_PORT",
                        "CLAWROUTER_DISABLED", "OPENCLAW_CONFIG")}
    env["HOME"] = str(tmp_path / "home")
    if key:
        env["BLOCKRUN_WALLET_KEY"] = key
    return env


def write_config(tmp_path) -> str:
    path = tmp_path / "openclaw.yaml"
    path.write_text(yaml.safe_dump({"plugins": {"entries": {"blockrun": {"config": {
        "payment": {"rpcUrl": CLOSED_RPC}}}}}}))
    return str(path)


async def test_scripted_chat_session(x402_upstream, funded_wallet_key, tmp_path):
    data = tmp_path / "data"
    code, out, err = await run_chat(
        ["what is the capital of France?", "/model eco", "what is the capital of Spain?",
         "/stats 1", "/imagegen a small red square", "/exit", "never sent"],
        "--api-base", x402_upstream.url, "--data-dir", str(data),
        "--config", write_config(tmp_path), env=environment(tmp_path, funded_wallet_key))
    assert code == 0, out + err
    assert "Traceback" not in out + err
    first = re.search(r"^Echo from (\S+): what is the capital of France\?$", out, re.MULTILINE)
    assert first, out
    assert "This conversation now uses blockrun/eco" in out
    second = re.search(r"^Echo from (\S+): what is the capital of Spain\?$", out, re.MULTILINE)
    assert second, out
    assert second.group(1) != first.group(1)  # /model eco changed the routing
    answered = [r.json() for r in x402_upstream.requests
                if r.path == "/v1/chat/completions" and r.status == 200]
    assert [(a["model"], a["stream"]) for a in answered] == [
        (first.group(1), True), (second.group(1), True)]
    assert "Total Requests:   2" in out  # /stats counted both requests of this run
    image = re.search(r"http://localhost:(\d+)/images/(\S+)", out)
    assert image, out
    assert (data / "images" / image.group(2)).is_file()
    assert "never sent" not in out


async def test_unreachable_upstream_gives_a_clean_error(funded_wallet_key, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/api"
    config = tmp_path / "openclaw.yaml"
    config.write_text(yaml.safe_dump({"plugins": {"entries": {"blockrun": {"config": {
        "payment": {"rpcUrl": CLOSED_RPC}, "upstream": {"maxAttempts": 1}}}}}}))
    code, out, err = await run_chat(
        ["hello?", "/help"], "--api-base", dead, "--data-dir", str(tmp_path / "d"),
        "--config", str(config), env=environment(tmp_path, funded_wallet_key))
    assert code == 1
    assert out.startswith("⚠️ ") and "Traceback" not in out + err
    assert "/stats — " in out and "/help [command] — " in out  # the chat kept going


async def test_bad_config_is_a_clean_error(tmp_path, funded_wallet_key):
    config = tmp_path / "openclaw.yaml"
    config.write_text("plugins:\n  entries:\n    clawrouter:\n      config: {portt: 1}\n")
    code, _, err = await run_chat(["hello"], "--config", str(config),
                                    "--data-dir", str(tmp_path / "d"),
                                    env=environment(tmp_path, funded_wallet_key))
    assert code == 2 and "portt" in err and "Traceback" not in err
