"""``clawrouter openclaw-config``: the provider block a real OpenClaw install needs.

OpenClaw reaches ClawRouter over HTTP: ``models.providers.blockrun`` points its
``openai-completions`` client at the local proxy. The block lists every model id the proxy
accepts: the routing profiles, the catalog's chat models and the aliases (each alias row copies
its target's metadata). ``--write`` merges the block into ``~/.openclaw/openclaw.json``
(or ``--file``) atomically, keeping a backup, and refuses files that are not plain JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ..catalog import Catalog, load_catalog
from ..config import load_config, with_overrides
from ..errors import ConfigError

PROVIDER_ID = "blockrun"
API_KEY_PLACEHOLDER = "x402-proxy-handles-auth"
PRIMARY_MODEL = f"{PROVIDER_ID}/auto"
DEFAULT_FILE = "~/.openclaw/openclaw.json"


def _cost(input_price: float, output_price: float) -> dict[str, float]:
    return {"input": input_price, "output": output_price, "cacheRead": 0, "cacheWrite": 0}


def model_definitions(catalog: Catalog) -> list[dict[str, Any]]:
    """OpenClaw model rows: profiles, then catalog chat models, then aliases."""
    widest = max(m.context_window for m in catalog.chat.values())
    longest = max(m.max_output for m in catalog.chat.values())
    rows: dict[str, dict[str, Any]] = {}
    for name, text in catalog.profiles.items():
        free = name == "free"
        target = catalog.chat[catalog.free_model] if free else None
        rows[name] = {
            "id": name, "name": f"{name} — {text}", "reasoning": not free,
            "input": ["text"] if free else ["text", "image"], "cost": _cost(0, 0),
            "contextWindow": target.context_window if target else widest,
            "maxTokens": target.max_output if target else longest,
        }
    for model in catalog.chat.values():
        rows[model.id] = {
            "id": model.id, "name": model.id, "reasoning": model.reasoning,
            "input": ["text", "image"] if model.vision else ["text"],
            "cost": _cost(model.input_price, model.output_price),
            "contextWindow": model.context_window, "maxTokens": model.max_output,
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
    changes = merge(config, block)
    if not changes:
        print(f"{path}: already up to date")
        return 0
    backup = write_atomically(path, config)
    print(f"Updated {path}:")
    for change in changes:
        print(f"  • {change}")
    if backup:
        print(f"Previous version kept as {backup}")
    print(f"Start the proxy with `clawrouter serve --port {plugin.port}`, then restart OpenClaw.")
    return 0
