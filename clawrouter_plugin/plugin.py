"""ClawRouter's plugin entry point: ``register(api)``.

Registers, synchronously: the chat commands (their handlers reach the running services
lazily), the ``blockrun`` provider (completions go through the same pipeline as the proxy, in
process, with the conversation's session id), and the ``clawrouter-proxy`` service, which
starts the proxy and installs the chat-command intercepts on its pipeline.
``CLAWROUTER_DISABLED=1`` registers nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from .config import PluginConfig, validate_plugin_config
from .errors import ClawRouterError
from .host.api import (
    CommandResult,
    CommandSpec,
    ProviderRequest,
    ProviderSpec,
    ServiceContext,
    ServiceSpec,
)

if TYPE_CHECKING:
    from .proxy.intercept import ChatCommand
    from .proxy.pipeline import Intercept
    from .proxy.server import ProxyHandle
    from .services import Services

PROVIDER_ID = "blockrun"
SERVICE_ID = "clawrouter-proxy"
log = logging.getLogger("clawrouter.plugin")


class ServicesHolder:
    """The running proxy's services, reached lazily: commands are registered before it starts."""

    def __init__(self) -> None:
        self.handle: ProxyHandle | None = None

    @property
    def current(self) -> Services:
        """The in-process services, or a clear error when there are none."""
        handle = self.handle
        if handle is None:
            raise ClawRouterError("ClawRouter is not running yet (its proxy service has not started)")
        if handle.services is None:
            raise ClawRouterError(
                f"this needs ClawRouter's in-process proxy, but the one already running at "
                f"{handle.base_url} (another process) is in use; run the command there")
        return handle.services

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.current, name)


def disabled() -> bool:
    """Whether $CLAWROUTER_DISABLED turns the plugin off."""
    return os.environ.get("CLAWROUTER_DISABLED", "").strip().lower() in ("1", "true", "yes")


def _intercept(spec: CommandSpec, services: Services) -> Intercept:
    """A pipeline intercept that answers ``/name args`` with the command's own handler (the
    arguments cleaned and capped as in a chat, the sender's rights decided by the dispatcher:
    a message relayed from a chat channel is not authorised unless the config says so).
    Stored images come back as ``MEDIA:/absolute/path`` lines, which chat hosts attach."""
    from .host.dispatch import clean_args, command_context, run_command

    async def intercept(command: ChatCommand, session_id: str) -> str:
        args = clean_args(command.args)
        ctx = command_context(spec.name, args, policy=services.config.commands,
                              channel=command.channel.lower() or "http",
                              sender_id=command.channel or "proxy", authorized=True,
                              relayed=command.relayed, session_id=session_id)
        return chat_reply(await run_command(spec, ctx, log))

    return intercept


def chat_reply(result: CommandResult) -> str:
    """A command's result as chat text: a stored file as a ``MEDIA:`` line of its own instead
    of its local URL (a phone cannot open localhost, and hosts attach ``MEDIA:`` files)."""
    paths = dict(zip(result.media_urls, result.media_paths))
    text = result.text or ""
    lines = [line for line in text.splitlines() if not paths.get(line.strip())]
    others = [url for url in result.media_urls if not paths.get(url) and url not in text]
    media = [f"MEDIA:{path}" for path in paths.values() if path]
    return "\n".join([*lines, *others, *media]).strip()


def install_intercepts(services: Services) -> None:
    """Answer the chat commands typed into a chat completion (part of
    :func:`setup_services`, used by the plugin's service and by ``clawrouter serve``)."""
    from commands import INTERCEPTED, all_commands

    for spec in all_commands(services):
        if spec.name in INTERCEPTED:
            services.pipeline.intercepts[spec.name] = _intercept(spec, services)


def install_commands(services: Services) -> None:
    """Give the proxy's command endpoint (``POST /v1/clawrouter/commands/{name}``) the chat
    commands, bound to ``services``."""
    from commands import all_commands

    from .host.command_runner import CommandRunner

    services.commands = CommandRunner(all_commands(services))


def setup_services(services: Services) -> None:
    """The ``start_proxy`` setup hook of the plugin's service and ``clawrouter serve``: the
    chat-completions intercepts and the command endpoint."""
    install_intercepts(services)
    install_commands(services)


def _provider(holder: ServicesHolder, config: PluginConfig) -> ProviderSpec:
    from .state.sessions import header_session_id

    async def complete(request: ProviderRequest) -> Any:
        handle = holder.handle
        if handle is None:
            raise ClawRouterError("ClawRouter is not running yet (its proxy service has not started)")
        body = dict(request.body)
        headers = {"x-session-id": request.session_id}
        services = handle.services
        if services is None:  # another process owns the port: talk to it over HTTP
            from .host.openai_http import http_completion

            return await http_completion(f"{handle.base_url}/v1/chat/completions", body, headers,
                                         read_timeout=config.upstream.request_timeout_seconds)
        preferred = await services.sessions.preference(header_session_id(request.session_id))
        if preferred:
            body["model"] = preferred
        # The host may cancel a call (its user stopped it). Shielded, the pipeline still
        # finishes, so an answer already being paid for is cached and recorded, not lost.
        reply = await asyncio.shield(services.pipeline.chat(body, headers=headers))
        return reply.text_deltas() if request.stream else await reply.json()

    from .catalog import load_catalog
    from .host.openclaw_setup import model_definitions

    return ProviderSpec(id=PROVIDER_ID, label="BlockRun", complete=complete, aliases=("br",),
                        models=tuple(model_definitions(load_catalog())))


def _service(holder: ServicesHolder, config: PluginConfig) -> ServiceSpec:
    async def start(_ctx: ServiceContext) -> None:
        from .proxy.server import start_proxy

        holder.handle = await start_proxy(config=config, setup=setup_services)
        log.info("ClawRouter proxy at %s%s", holder.handle.base_url,
                 " (reused)" if holder.handle.reused else "")

    async def stop(_ctx: ServiceContext) -> None:
        handle, holder.handle = holder.handle, None
        if handle is not None:
            await handle.close()

    return ServiceSpec(id=SERVICE_ID, start=start, stop=stop)


def register(api: Any) -> None:
    """Register ClawRouter's commands, provider and proxy service (synchronously)."""
    if disabled():
        api.logger.info("ClawRouter is disabled (CLAWROUTER_DISABLED); nothing registered")
        return
    from commands import all_commands

    config = validate_plugin_config(dict(api.plugin_config or {}),
                                    f"plugins.entries.{api.id}.config")
    holder = ServicesHolder()
    for spec in all_commands(holder):
        api.register_command(spec)
    api.register_provider(_provider(holder, config))
    api.register_service(_service(holder, config))
