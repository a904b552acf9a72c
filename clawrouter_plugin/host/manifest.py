"""Plugin manifests (``plugin.yaml``): read before any plugin code runs.

A manifest names the plugin (``id``, ``name``, ``version``, ``description``), its entry point
(``module:attribute``, the attribute being ``register(api)``), the providers and commands it
owns, and a JSON Schema for its config. ClawRouter's own manifest has generated parts (the
schema, the command list and the version); regenerate them with
``python -m clawrouter_plugin.host.manifest --write`` (``--check`` fails when out of date).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .registry import PluginError

MANIFEST_NAME = "plugin.yaml"
HEADER = (
    "# ClawRouter plugin manifest, read by the host before any plugin code runs.\n"
    "# version, commands and configSchema are generated: after changing the config model or\n"
    "# the commands run `python -m clawrouter_plugin.host.manifest --write`.\n"
)


@dataclass(frozen=True)
class Manifest:
    """A validated plugin manifest."""

    id: str
    name: str
    version: str
    description: str
    entry: str
    providers: tuple[str, ...] = ()
    commands: tuple[dict[str, str], ...] = ()
    config_schema: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def load_entry(self) -> Callable[[Any], Any]:
        """Import the entry point and return its ``register`` callable."""
        module_name, _, attr = self.entry.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise PluginError(f"plugin {self.id!r}: cannot load entry {self.entry!r}: {exc}") from None
        register = getattr(target, "register", target)
        if not callable(register):
            raise PluginError(f"plugin {self.id!r}: entry {self.entry!r} has no register(api)")
        return register


def parse_manifest(raw: Any, path: Path | None = None) -> Manifest:
    """Validate a manifest mapping; a missing or wrong field is a :class:`PluginError`."""
    where = str(path) if path else "manifest"
    if not isinstance(raw, dict):
        raise PluginError(f"{where}: the manifest must be a mapping")
    for key in ("id", "entry"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise PluginError(f"{where}: '{key}' is required")
    if ":" not in raw["entry"]:
        raise PluginError(f"{where}: 'entry' must look like 'module:attribute'")
    schema = raw.get("configSchema")
    if not isinstance(schema, dict):
        raise PluginError(f"{where}: 'configSchema' (a JSON Schema object) is required")
    commands = raw.get("commands") or []
    if not isinstance(commands, list) or not all(
        isinstance(c, dict) and isinstance(c.get("name"), str) for c in commands
    ):
        raise PluginError(f"{where}: 'commands' must be a list of {{name, description}}")
    return Manifest(
        id=raw["id"],
        name=str(raw.get("name") or raw["id"]),
        version=str(raw.get("version") or "0"),
        description=str(raw.get("description") or ""),
        entry=raw["entry"],
        providers=tuple(str(p) for p in raw.get("providers") or ()),
        commands=tuple({"name": c["name"], "description": str(c.get("description", ""))}
                       for c in commands),
        config_schema=schema,
        path=path,
    )


def load_manifest(path: Path) -> Manifest:
    """Read and validate ``path``."""
    try:
        raw = yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise PluginError(f"{path}: cannot read manifest: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise PluginError(f"{path}: manifest is not valid YAML: {exc}") from None
    return parse_manifest(raw, path)


def manifest_for_module(module_name: str) -> Manifest:
    """The manifest shipped in the top-level package of ``module_name``."""
    package = module_name.split(".")[0]
    try:
        ref = resources.files(package).joinpath(MANIFEST_NAME)
        text = ref.read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError, OSError) as exc:
        raise PluginError(f"package {package!r} has no {MANIFEST_NAME}: {exc}") from None
    try:
        return parse_manifest(yaml.safe_load(text), Path(str(ref)))
    except yaml.YAMLError as exc:
        raise PluginError(f"{package}/{MANIFEST_NAME}: not valid YAML: {exc}") from None


def builtin_manifest_path() -> Path:
    """ClawRouter's own manifest, next to this package's ``__init__.py``."""
    return Path(__file__).resolve().parent.parent / MANIFEST_NAME


def generated_manifest(current: dict[str, Any]) -> dict[str, Any]:
    """``current`` with its generated parts rebuilt from the code."""
    from .. import __version__
    from ..config import PluginConfig
    from .registry import RecordingApi, run_register

    manifest = parse_manifest(current)
    api = RecordingApi(plugin_id=manifest.id, name=manifest.name, version=__version__,
                       config={}, plugin_config={}, registration_mode="discovery")
    registered = run_register(manifest.load_entry(), api)
    updated = dict(current)
    updated["version"] = __version__
    updated["providers"] = [p.id for p in registered.providers]
    updated["commands"] = [{"name": c.name, "description": c.description}
                           for c in registered.commands]
    updated["configSchema"] = PluginConfig.model_json_schema(by_alias=True)
    return updated


def render(manifest: dict[str, Any]) -> str:
    """The manifest file's text."""
    return HEADER + yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=100)


def main(argv: list[str] | None = None) -> int:
    """``python -m clawrouter_plugin.host.manifest [--write|--check]``."""
    parser = argparse.ArgumentParser(prog="python -m clawrouter_plugin.host.manifest")
    parser.add_argument("--write", action="store_true", help="rewrite plugin.yaml in place")
    parser.add_argument("--check", action="store_true", help="exit 1 if plugin.yaml is stale")
    args = parser.parse_args(argv)
    path = builtin_manifest_path()
    current_text = path.read_text("utf-8")
    text = render(generated_manifest(yaml.safe_load(current_text)))
    return sync_generated(path, text, current_text, write=args.write, check=args.check)


def sync_generated(path: Path, text: str, current: str | None, *, write: bool,
                   check: bool) -> int:
    """What the generators' ``--write`` / ``--check`` / print modes do with a generated file:
    rewrite it when it differs, say whether it is stale (exit 1), or print it."""
    if write:
        if text != current:
            path.write_text(text, "utf-8")
        print(f"{path}: {'updated' if text != current else 'up to date'}")
        return 0
    if check:
        print(f"{path}: {'up to date' if text == current else 'STALE (run with --write)'}")
        return 0 if text == current else 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
