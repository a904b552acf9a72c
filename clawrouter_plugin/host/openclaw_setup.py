"""``clawrouter openclaw-config``: what a real OpenClaw install needs.

OpenClaw reaches ClawRouter over HTTP: ``models.providers.blockrun`` points its
``openai-completions`` client at the local proxy. The block lists every model id the proxy
accepts: the routing profiles, the catalog's chat models and the aliases (each alias row copies
its target's metadata). A row's ``maxTokens`` is what one turn needs (4096, or 8192 for
reasoning models and the profiles), not the model's maximum: OpenClaw sends it as
``max_completion_tokens`` and the upstream prices a request by its output cap.

``--write`` merges the block into ``~/.openclaw/openclaw.json`` (or ``--file``) atomically,
keeping a backup, and refuses files that are not plain JSON. It also enables the OpenClaw
plugin ``blockrun`` (``openclaw/`` in this repository: the chat commands) with a
``proxyCommand`` that starts this proxy, and installs the plugin with ``openclaw plugins
install --link --force --accept-capabilities`` when ``openclaw`` is on PATH (else it prints
the command to run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..catalog import Catalog, ChatModel, load_catalog
from ..config import DEFAULT_PORT, PLUGIN_ID, load_config, with_overrides
from ..errors import ConfigError
from .openclaw_plugin import PLUGIN_DIR

PROVIDER_ID = "blockrun"
API_KEY_PLACEHOLDER = "x402-proxy-handles-auth"
PRIMARY_MODEL = f"{PROVIDER_ID}/auto"
DEFAULT_FILE = "~/.openclaw/openclaw.json"
TURN_TOKENS = 4096  # output tokens a turn needs; a row never asks for more than its model gives
REASONING_TURN_TOKENS = 8192  # reasoning models think before answering; profiles may pick one
INSTALL_TIMEOUT_SECONDS = 180


def turn_tokens(model: ChatModel) -> int:
    """The ``maxTokens`` of ``model``'s row: what one turn needs, within the model's maximum."""
    return min(model.max_output, REASONING_TURN_TOKENS if model.reasoning else TURN_TOKENS)


def _cost(input_price: float, output_price: float) -> dict[str, float]:
    return {"input": input_price, "output": output_price, "cacheRead": 0, "cacheWrite": 0}


def model_definitions(catalog: Catalog) -> list[dict[str, Any]]:
    """OpenClaw model rows: profiles, then catalog chat models, then aliases."""
    widest = max(m.context_window for m in catalog.chat.values())
    rows: dict[str, dict[str, Any]] = {}
    for name, text in catalog.profiles.items():
        free = name == "free"
        target = catalog.chat[catalog.free_model] if free else None
        rows[name] = {
            "id": name, "name": f"{name} — {text}", "reasoning": not free,
            "input": ["text"] if free else ["text", "image"], "cost": _cost(0, 0),
            "contextWindow": target.context_window if target else widest,
            "maxTokens": turn_tokens(target) if target else REASONING_TURN_TOKENS,
        }
    for model in catalog.chat.values():
        rows[model.id] = {
            "id": model.id, "name": model.id, "reasoning": model.reasoning,
            "input": ["text", "image"] if model.vision else ["text"],
            "cost": _cost(model.input_price, model.output_price),
            "contextWindow": model.context_window, "maxTokens": turn_tokens(model),
        }
    for alias, target in catalog.aliases.items():
        if alias not in rows:
            rows[alias] = {**rows[target], "id": alias, "name": f"{alias} → {target}"}
    return list(rows.values())


def provider_block(catalog: Catalog, port: int) -> dict[str, Any]:
    """``models.providers.blockrun`` for a proxy on 127.0.0.1:``port``."""
    return {
        "baseUrl": f"http://127.0.0.1:{port}/v1",
        "api": "openai-completions",
        "apiKey": API_KEY_PLACEHOLDER,
        "models": model_definitions(catalog),
    }


def proxy_command() -> list[str]:
    """How the OpenClaw plugin starts this proxy: this Python running ``clawrouter serve``."""
    return [sys.executable, "-m", "clawrouter_plugin", "serve"]


def merge_plugin(config: dict[str, Any], port: int) -> list[str]:
    """Enable the ``blockrun`` plugin entry in ``config`` in place, with a ``proxyCommand``
    (unless one is set) and the proxy's port; returns what changed, in words."""
    changes = []
    entries = _object(_object(config, "plugins"), "entries", "plugins.")
    entry = _object(entries, PLUGIN_ID, "plugins.entries.")
    settings = _object(entry, "config", f"plugins.entries.{PLUGIN_ID}.")
    where = f"plugins.entries.{PLUGIN_ID}"
    if entry.get("enabled") is not True:
        entry["enabled"] = True
        changes.append(f"{where}.enabled = true")
    if not settings.get("proxyCommand"):
        settings["proxyCommand"] = proxy_command()
        changes.append(f"{where}.config.proxyCommand = {' '.join(settings['proxyCommand'])}")
    if settings.get("port", DEFAULT_PORT) != port:
        settings["port"] = port
        changes.append(f"{where}.config.port = {port}")
    return changes


def plugin_installed(config: dict[str, Any]) -> bool:
    """Whether OpenClaw loads the plugin from this repository (``plugins.load.paths``)."""
    plugins = config.get("plugins")
    load = plugins.get("load") if isinstance(plugins, dict) else None
    paths = load.get("paths") if isinstance(load, dict) else None
    return isinstance(paths, list) and str(PLUGIN_DIR) in paths


def install_command() -> list[str]:
    """The command that installs (links) the OpenClaw plugin of this repository. On a fresh
    OpenClaw home, 2026.9.6 refuses a local plugin without ``--force`` (not from ClawHub) and
    ``--accept-capabilities`` ("requires capability consent")."""
    return ["openclaw", "plugins", "install", "--link", "--force", "--accept-capabilities",
            str(PLUGIN_DIR)]


def install_plugin(path: Path) -> None:
    """Install the plugin into the OpenClaw whose config is ``path``, or say how to."""
    command = install_command()
    if not (PLUGIN_DIR / "openclaw.plugin.json").is_file():
        print(f"The OpenClaw plugin folder {PLUGIN_DIR} is missing (it ships with the "
              "clawrouter repository); the chat commands need it.")
        return
    executable = shutil.which("openclaw")
    if executable is None:
        print("Install the chat-command plugin (openclaw is not on PATH here):")
        print(f"  {' '.join(command)}")
        return
    print(f"Installing the plugin: {' '.join(command)}")
    env = {**os.environ, "OPENCLAW_CONFIG_PATH": str(path)}
    try:
        done = subprocess.run([executable, *command[1:]], env=env, capture_output=True,
                              text=True, timeout=INSTALL_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"`{' '.join(command)}` failed ({exc}); run it yourself") from None
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"`{' '.join(command)}` exited with {done.returncode} "
                          f"({last[0]}); run it yourself")
    print("  installed and enabled")


def merge(config: dict[str, Any], block: dict[str, Any]) -> list[str]:
    """Put ``block`` into ``config`` in place; returns what changed, in words."""
    changes = []
    models = _object(config, "models")
    providers = _object(models, "providers", "models.")
    existing = providers.get(PROVIDER_ID)
    merged = {**(existing if isinstance(existing, dict) else {}), **block}
    if merged != existing:
        providers[PROVIDER_ID] = merged
        changes.append(f"models.providers.{PROVIDER_ID} ({len(block['models'])} models, "
                       f"{block['baseUrl']})")
    defaults = _object(_object(config, "agents"), "defaults", "agents.")
    model = _object(defaults, "model", "agents.defaults.")
    if not model.get("primary"):
        model["primary"] = PRIMARY_MODEL
        changes.append(f"agents.defaults.model.primary = {PRIMARY_MODEL}")
    return changes


def _object(parent: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
    value = parent.setdefault(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}{key} is not an object; fix it by hand before writing")
    return value


def read_json_config(path: Path) -> dict[str, Any]:
    """The OpenClaw config at ``path`` ({} if missing). Anything but a plain JSON object is refused."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"{path} is not plain JSON ({exc}); it may use JSON5 (comments, trailing commas, "
            "unquoted keys), which this tool will not rewrite. It was left untouched: run "
            "`clawrouter openclaw-config` and paste the block under models.providers by hand"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level is not a JSON object; left untouched")
    return data


def write_atomically(path: Path, data: dict[str, Any]) -> Path | None:
    """Replace ``path`` with ``data`` (temp file + rename); returns the backup made, if any."""
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    mode = 0o600
    if path.exists():
        mode = path.stat().st_mode & 0o777
        backup = _free_name(path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}"))
        shutil.copy2(path, backup)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return backup


def _free_name(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        candidate, n = path.with_name(f"{path.name}-{n}"), n + 1
    return candidate


def default_file() -> Path:
    """$OPENCLAW_CONFIG_PATH, else ~/.openclaw/openclaw.json."""
    return Path(os.environ.get("OPENCLAW_CONFIG_PATH") or DEFAULT_FILE).expanduser()


def openclaw_config_command(args: argparse.Namespace) -> int:
    """Print the provider block, or merge it into OpenClaw's config with --write."""
    plugin = with_overrides(load_config(args.config).plugin, port=args.port)
    if plugin.port == 0:
        raise ConfigError("OpenClaw needs a fixed port: pass --port or set port in the config")
    block = provider_block(load_catalog(), plugin.port)
    if not args.write:
        if args.file:
            raise ConfigError("--file is only used with --write")
        print(json.dumps({"models": {"providers": {PROVIDER_ID: block}}}, indent=2,
                         ensure_ascii=False))
        return 0
    path = Path(args.file).expanduser() if args.file else default_file()
    config = read_json_config(path)
    changes = merge(config, block) + merge_plugin(config, plugin.port)
    if not changes:
        print(f"{path}: already up to date")
    else:
        backup = write_atomically(path, config)
        print(f"Updated {path}:")
        for change in changes:
            print(f"  • {change}")
        if backup:
            print(f"Previous version kept as {backup}")
    if not plugin_installed(config):
        install_plugin(path)
    if changes:
        print(f"Restart the OpenClaw gateway; it starts the proxy on port {plugin.port} when "
              "nothing answers there (or run `clawrouter serve` yourself).")
    return 0
