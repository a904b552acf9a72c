"""``openclaw/openclaw.plugin.json``: the manifest of the OpenClaw plugin in this repository.

OpenClaw reads it before loading ``openclaw/index.js`` and validates the plugin's settings
(``plugins.entries.blockrun.config`` in ``openclaw.json``) against its ``configSchema``. The
schema is generated from the same pydantic model as ``plugin.yaml``'s, so one config section
is valid in both hosts. Regenerate after changing the config model::

    python -m clawrouter_plugin.host.openclaw_plugin --write   # rewrite the file
    python -m clawrouter_plugin.host.openclaw_plugin --check   # exit 1 when it is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .manifest import sync_generated

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "openclaw"
MANIFEST = PLUGIN_DIR / "openclaw.plugin.json"
DESCRIPTION = ("ClawRouter's chat commands (/stats, /wallet, /exclude, /imagegen, /img2img) "
               "for the local clawrouter proxy, which routes each request to the cheapest "
               "capable model and pays for it with x402 USDC on Base")


def manifest() -> dict[str, Any]:
    """The manifest, with ``configSchema`` generated from :class:`PluginConfig`."""
    from .. import __version__
    from ..config import PLUGIN_ID, PluginConfig

    return {
        "id": PLUGIN_ID,
        "name": "ClawRouter (BlockRun)",
        "description": DESCRIPTION,
        "version": __version__,
        "activation": {"onStartup": True},
        "configSchema": PluginConfig.model_json_schema(by_alias=True),
    }


def render(data: dict[str, Any]) -> str:
    """The file's text (stable: two-space JSON, a final newline)."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m clawrouter_plugin.host.openclaw_plugin [--write|--check]``."""
    parser = argparse.ArgumentParser(prog="python -m clawrouter_plugin.host.openclaw_plugin")
    parser.add_argument("--write", action="store_true", help="rewrite openclaw.plugin.json")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render(manifest())
    try:
        current = MANIFEST.read_text("utf-8")
    except FileNotFoundError:
        current = None
    return sync_generated(MANIFEST, text, current, write=args.write, check=args.check)

if __name__ == "__main__":
    sys.exit(main())
