"""The ``PluginApi`` a plugin's ``register(api)`` receives, and what it collected.

Registration is synchronous and closes when ``register`` returns: any later ``register_*``
call raises :class:`RegistrationClosed`, so a plugin that registers from a callback finds
out at once instead of losing commands silently (the real host ignores them).
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .api import CommandSpec, ProviderSpec, ServiceSpec

COMMAND_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
# Commands the host itself answers; plugins may not take these names.
HOST_BUILTINS = frozenset({"help", "commands"})


class PluginError(Exception):
    """A plugin could not be loaded or registered something invalid."""


class RegistrationClosed(PluginError):
    """A ``register_*`` call arrived after ``register(api)`` had returned."""


def command_key(name: str) -> str:
    """How command names are compared: case-insensitive, ``-`` and ``_`` alike."""
    return name.strip().lower().replace("-", "_")


@dataclass
class Registrations:
    """Everything one plugin registered."""

    commands: list[CommandSpec] = field(default_factory=list)
    providers: list[ProviderSpec] = field(default_factory=list)
    services: list[ServiceSpec] = field(default_factory=list)


class RecordingApi:
    """The concrete plugin API: validates and records registrations until closed."""

    def __init__(
        self,
        *,
        plugin_id: str,
        name: str,
        version: str,
        config: dict[str, Any],
        plugin_config: dict[str, Any],
        registration_mode: str = "full",
        logger: logging.Logger | None = None,
    ) -> None:
        self.id = plugin_id
        self.name = name
        self.version = version
        self.config = config
        self.plugin_config = plugin_config
        self.registration_mode = registration_mode
        self.logger = logger or logging.getLogger(f"clawrouter.plugin.{plugin_id}")
        self.registered = Registrations()
        self._closed = False

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise RegistrationClosed(
                f"plugin {self.id!r}: {what} after register() returned; "
                "register everything synchronously inside register(api)"
            )

    def register_command(self, spec: CommandSpec) -> None:
        """Add a chat command. Names: lowercase ``[a-z][a-z0-9_-]*``, unique, not a host built-in."""
        self._check_open(f"register_command({getattr(spec, 'name', '?')!r})")
        name = spec.name.lower()
        if not COMMAND_NAME.match(name):
            raise PluginError(f"plugin {self.id!r}: invalid command name {spec.name!r}")
        if command_key(name) in HOST_BUILTINS:
            raise PluginError(f"plugin {self.id!r}: command name {spec.name!r} is reserved")
        if not spec.description.strip():
            raise PluginError(f"plugin {self.id!r}: command {spec.name!r} needs a description")
        if any(command_key(c.name) == command_key(name) for c in self.registered.commands):
            raise PluginError(f"plugin {self.id!r}: command {spec.name!r} registered twice")
        self.registered.commands.append(spec)

    def register_provider(self, spec: ProviderSpec) -> None:
        """Add an LLM provider (its id is the part of a model ref before the first ``/``)."""
        self._check_open(f"register_provider({getattr(spec, 'id', '?')!r})")
        if not spec.id or "/" in spec.id:
            raise PluginError(f"plugin {self.id!r}: invalid provider id {spec.id!r}")
        if any(p.id == spec.id for p in self.registered.providers):
            raise PluginError(f"plugin {self.id!r}: provider {spec.id!r} registered twice")
        self.registered.providers.append(spec)

    def register_service(self, spec: ServiceSpec) -> None:
        """Add a background service the host starts once and stops once."""
        self._check_open(f"register_service({getattr(spec, 'id', '?')!r})")
        if any(s.id == spec.id for s in self.registered.services):
            raise PluginError(f"plugin {self.id!r}: service {spec.id!r} registered twice")
        self.registered.services.append(spec)

    def close(self) -> None:
        """Refuse every later registration."""
        self._closed = True


def run_register(register: Callable[[Any], Any], api: RecordingApi) -> Registrations:
    """Call ``register(api)`` synchronously, then close the API. Async registers are refused."""
    if inspect.iscoroutinefunction(register):
        raise PluginError(f"plugin {api.id!r}: register must be synchronous")
    try:
        result = register(api)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise PluginError(f"plugin {api.id!r}: register must be synchronous")
    finally:
        api.close()
    return api.registered
