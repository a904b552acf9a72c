"""The plugin API: what a plugin's ``register(api)`` receives and the specs it registers.

A Python analog of the OpenClaw host's plugin surface: commands, providers and services.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class CommandContext:
    """What a command handler gets: its arguments and who is asking, in which conversation.

    Build it with :func:`clawrouter_plugin.host.dispatch.command_context` where a sender's
    rights have to be decided (the HTTP chat path, a host's command call).
    """

    args: str | None
    command_body: str
    channel: str = "terminal"
    sender_id: str = "local"
    is_authorized_sender: bool = True
    session_id: str = "default"
    config: dict[str, Any] = field(default_factory=dict)
    sender_is_owner: bool = False
    relayed: bool = False  # the message came through a chat channel from another device
    local_files: bool = True  # the command may read files on this machine (image inputs)


@dataclass(frozen=True)
class CommandResult:
    """A command's reply."""

    text: str | None = None
    is_error: bool = False
    media_urls: tuple[str, ...] = ()
    continue_agent: bool = False
    media_paths: tuple[str, ...] = ()  # media_urls[i]'s stored file (absolute), '' if none


CommandHandler = Callable[[CommandContext], Awaitable[CommandResult]]


@dataclass(frozen=True)
class CommandSpec:
    """A chat command: ``/name args``. ``name`` has no slash."""

    name: str
    description: str
    handler: CommandHandler
    accepts_args: bool = False
    require_auth: bool = True
    usage: str | None = None


@dataclass(frozen=True)
class ProviderRequest:
    """A completion request the host sends to a provider (an OpenAI chat-completions body)."""

    body: dict[str, Any]
    session_id: str
    stream: bool = False


@dataclass(frozen=True)
class ProviderSpec:
    """An LLM provider: ``complete`` answers a chat-completions body in process.

    ``complete`` returns the completion JSON, or when ``request.stream`` is true an async
    iterator of text deltas.
    """

    id: str
    label: str
    complete: Callable[[ProviderRequest], Awaitable[dict[str, Any] | AsyncIterator[str]]]
    base_url: str | None = None
    api: str = "openai-completions"
    aliases: tuple[str, ...] = ()
    models: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ServiceContext:
    """What a service's start/stop get: the whole host config, a state directory, a logger."""

    config: dict[str, Any]
    state_dir: str
    logger: Any


@dataclass(frozen=True)
class ServiceSpec:
    """A background service the host starts once and stops once (start/stop may be async)."""

    id: str
    start: Callable[[ServiceContext], Any]
    stop: Callable[[ServiceContext], Any] | None = None


class PluginLogger(Protocol):
    def debug(self, msg: str, *args: Any) -> None: ...
    def info(self, msg: str, *args: Any) -> None: ...
    def warning(self, msg: str, *args: Any) -> None: ...
    def error(self, msg: str, *args: Any) -> None: ...


class PluginApi(Protocol):
    """What ``register(api)`` receives. Registration closes when ``register`` returns.

    ``registration_mode`` is "full" when the host will start services, "discovery" when it
    only wants to know what the plugin registers (e.g. to regenerate the manifest).
    """

    id: str
    name: str
    version: str
    registration_mode: str
    config: dict[str, Any]
    plugin_config: dict[str, Any]
    logger: PluginLogger

    def register_command(self, spec: CommandSpec) -> None: ...
    def register_provider(self, spec: ProviderSpec) -> None: ...
    def register_service(self, spec: ServiceSpec) -> None: ...
