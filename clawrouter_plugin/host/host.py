"""A small plugin host with the real OpenClaw host's lifecycle and dispatch rules.

``Host`` loads plugins (ClawRouter's own manifest, and third-party ones found through the
``clawrouter.plugins`` / ``openclaw.plugins`` entry-point groups), validates each plugin's
config before calling its synchronous ``register(api)``, starts services in order and stops
them once in reverse order, and answers chat messages: a command goes to its handler,
everything else to the provider of the conversation's model (``provider/model``, split on the
first ``/``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Self

from ..errors import ClawRouterError, ConfigError
from .api import CommandContext, CommandSpec, ProviderSpec, ServiceContext, ServiceSpec
from .dispatch import help_text, parse_command, run_command, short_reason
from .manifest import Manifest, builtin_manifest_path, load_manifest, manifest_for_module
from .registry import (
    HOST_BUILTINS,
    PluginError,
    RecordingApi,
    Registrations,
    command_key,
    run_register,
)
from .schema import validate as validate_schema
from .turns import DEFAULT_MODEL, Conversation, HostReply, model_turn

__all__ = ["DEFAULT_MODEL", "Conversation", "Host", "HostReply", "LoadedPlugin"]

ENTRY_POINT_GROUPS = ("clawrouter.plugins", "openclaw.plugins")

log = logging.getLogger("clawrouter.host")


@dataclass
class LoadedPlugin:
    """A loaded plugin: its manifest and what its ``register`` registered."""

    manifest: Manifest
    registered: Registrations


def _entry(whole: dict[str, Any], ids: tuple[str, ...]) -> dict[str, Any]:
    """``plugins.entries.<id>`` (map shape) or the ``plugins`` list item with that id."""
    plugins = whole.get("plugins")
    if isinstance(plugins, list):
        found = [p for p in plugins if isinstance(p, dict) and p.get("id") in ids]
        return found[0] if found else {}
    if isinstance(plugins, dict) and isinstance(plugins.get("entries"), dict):
        for plugin_id in ids:
            if isinstance(plugins["entries"].get(plugin_id), dict):
                return plugins["entries"][plugin_id]
    return {}


class Host:
    """Loads plugins, runs their services and dispatches chat messages."""

    def __init__(self, config: dict[str, Any] | None = None, *,
                 plugin_configs: dict[str, dict[str, Any]] | None = None,
                 state_dir: Path | str = "~/.openclaw") -> None:
        self.config = config or {}
        self.plugin_configs = plugin_configs or {}
        self.state_dir = Path(state_dir).expanduser()
        self.plugins: dict[str, LoadedPlugin] = {}
        self.commands: dict[str, CommandSpec] = {}
        self.providers: dict[str, ProviderSpec] = {}
        self._services: list[tuple[str, ServiceSpec]] = []
        self._running: list[tuple[ServiceSpec, ServiceContext]] = []
        self._started = False

    # ---- loading -------------------------------------------------------------------------

    def disabled_reason(self, plugin_id: str) -> str | None:
        """Why config turns ``plugin_id`` off (plugins.enabled/allow/deny, entry enabled)."""
        plugins = self.config.get("plugins")
        if isinstance(plugins, dict):
            if plugins.get("enabled") is False:
                return "plugins.enabled is false"
            if plugins.get("allow") and plugin_id not in plugins["allow"]:
                return "not in plugins.allow"
            if plugin_id in (plugins.get("deny") or []):
                return "listed in plugins.deny"
        if _entry(self.config, (plugin_id,)).get("enabled") is False:
            return "its entry has enabled: false"
        return None

    def load(self, manifest: Manifest, register: Callable[[Any], Any] | None = None, *,
             validate: Callable[[dict[str, Any]], Any] | None = None,
             raw_config: dict[str, Any] | None = None) -> LoadedPlugin:
        """Validate the plugin's config, call ``register(api)`` and keep what it registered.

        Raises :class:`PluginError` (or :class:`ConfigError`) and registers nothing on failure.
        """
        if manifest.id in self.plugins:
            raise PluginError(f"plugin {manifest.id!r} is already loaded")
        if self._started:
            raise PluginError(f"plugin {manifest.id!r}: the host has already started")
        raw = self.plugin_configs.get(manifest.id)
        if raw is None:
            raw = raw_config if raw_config is not None else \
                _entry(self.config, (manifest.id,)).get("config") or {}
        where = f"plugins.entries.{manifest.id}.config"
        if validate is not None:
            validate(raw)
        else:
            problems = validate_schema(raw, manifest.config_schema, where=where)
            if problems:
                raise ConfigError("invalid configuration: " + "; ".join(problems))
        api = RecordingApi(plugin_id=manifest.id, name=manifest.name, version=manifest.version,
                           config=self.config, plugin_config=raw)
        registered = run_register(register or manifest.load_entry(), api)
        self._commit(manifest.id, registered)
        plugin = LoadedPlugin(manifest=manifest, registered=registered)
        self.plugins[manifest.id] = plugin
        return plugin

    def _commit(self, plugin_id: str, registered: Registrations) -> None:
        clashes = [c.name for c in registered.commands if command_key(c.name) in self.commands]
        clashes += [p.id for p in registered.providers if p.id in self.providers]
        clashes += [s.id for _, s in self._services if s.id in {x.id for x in registered.services}]
        if clashes:
            raise PluginError(f"plugin {plugin_id!r}: already registered by another plugin: "
                              + ", ".join(clashes))
        for spec in registered.commands:
            self.commands[command_key(spec.name)] = spec
        for provider in registered.providers:
            for name in (provider.id, *provider.aliases):
                self.providers.setdefault(name, provider)
        self._services += [(plugin_id, s) for s in registered.services]

    def load_builtin(self) -> LoadedPlugin | None:
        """Load ClawRouter itself from its manifest; config errors are raised."""
        from ..config import plugin_section, validate_plugin_config

        manifest = load_manifest(builtin_manifest_path())
        reason = self.disabled_reason(manifest.id)
        if reason:
            log.info("plugin %s not loaded: %s", manifest.id, reason)
            return None
        raw, where = ({}, "") if manifest.id in self.plugin_configs else \
            plugin_section(self.config)  # also reads (and warns about) a deprecated id
        return self.load(manifest, validate=lambda config: validate_plugin_config(
            config, where or f"plugins.entries.{manifest.id}.config"), raw_config=raw)

    def load_entry_points(self, groups: tuple[str, ...] = ENTRY_POINT_GROUPS) -> list[LoadedPlugin]:
        """Load every installed third-party plugin; a broken one is logged and skipped."""
        loaded = []
        for group in groups:
            for ep in entry_points(group=group):
                if ep.name in self.plugins:
                    continue
                try:
                    manifest = manifest_for_module(ep.module)
                    if manifest.id != ep.name:
                        raise PluginError(f"plugin id mismatch: entry point {ep.name!r}, "
                                          f"manifest {manifest.id!r}")
                    if self.disabled_reason(manifest.id):
                        continue
                    loaded.append(self.load(manifest, ep.load()))
                except Exception as exc:  # a third-party plugin must not take the host down
                    log.error("plugin %s failed to load: %s", ep.name, exc)
        return loaded

    # ---- services ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every service in registration order; on a failure stop the started ones."""
        if self._started:
            return
        self._started = True
        for plugin_id, spec in self._services:
            ctx = ServiceContext(config=self.config, state_dir=str(self.state_dir),
                                 logger=logging.getLogger(f"clawrouter.plugin.{plugin_id}"))
            try:
                await _settle(spec.start(ctx))
            except Exception as exc:
                log.error("service %s failed to start", spec.id, exc_info=exc)
                await self.stop()
                if isinstance(exc, ClawRouterError):
                    raise
                raise ClawRouterError(f"service {spec.id} failed to start: "
                                      f"{short_reason(exc)}") from None
            self._running.append((spec, ctx))

    async def stop(self) -> None:
        """Stop started services in reverse order, each at most once; errors are logged."""
        while self._running:
            spec, ctx = self._running.pop()
            if spec.stop is None:
                continue
            try:
                await _settle(spec.stop(ctx))
            except Exception as exc:
                log.error("service %s failed to stop", spec.id, exc_info=exc)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # ---- messages ------------------------------------------------------------------------

    async def dispatch(self, text: str, conv: Conversation,
                       on_delta: Callable[[str], None] | None = None) -> HostReply:
        """Answer one chat message: a command, /help, or a model turn (streamed via on_delta)."""
        parsed = parse_command(text)
        if parsed is not None:
            key = command_key(parsed.name)
            if key in HOST_BUILTINS:
                return HostReply(help_text(self.commands.values(), parsed.args), command="help")
            spec = self.commands.get(key)
            if spec is not None and (parsed.args is None or spec.accepts_args):
                ctx = CommandContext(
                    args=parsed.args, command_body=parsed.body, channel=conv.channel,
                    sender_id=conv.sender_id, is_authorized_sender=conv.authorized,
                    session_id=conv.session_id, config=self.config, sender_is_owner=conv.owner)
                result = await run_command(spec, ctx, log)
                return HostReply(result.text or "", result.is_error, tuple(result.media_urls),
                                 command=spec.name)
        return await self.complete(text, conv, on_delta)

    async def complete(self, text: str, conv: Conversation,
                       on_delta: Callable[[str], None] | None = None) -> HostReply:
        """Send ``text`` with the history to the conversation model's provider."""
        provider_id, _, model = conv.model.partition("/")
        provider = self.providers.get(provider_id.lower())
        if provider is None or not model:
            return HostReply(f"⚠️ No provider for model {conv.model!r}.", is_error=True)
        return await model_turn(provider, model, text, conv, on_delta)


async def _settle(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value

