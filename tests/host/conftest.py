"""Helpers for host tests: a manifest and a tiny in-test plugin with recording handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from clawrouter_plugin.host.api import (
    CommandContext,
    CommandResult,
    CommandSpec,
    ProviderRequest,
    ProviderSpec,
    ServiceSpec,
)
from clawrouter_plugin.host.manifest import Manifest


def manifest(plugin_id: str = "tiny", schema: dict | None = None) -> Manifest:
    return Manifest(id=plugin_id, name=plugin_id.title(), version="1.0", description="test",
                    entry="unused:register",
                    config_schema=schema or {"type": "object", "additionalProperties": False,
                                             "properties": {"greeting": {"type": "string"}}})


@dataclass
class TinyPlugin:
    """Registers /echo (args), /ping (no args), /boom (raises), /secret (auth), a provider
    ``tiny`` echoing the last user message, and two services that record start/stop."""

    events: list[str] = field(default_factory=list)
    requests: list[ProviderRequest] = field(default_factory=list)
    api: Any = None
    provider_error: Exception | None = None

    def register(self, api: Any) -> None:
        self.api = api

        async def echo(ctx: CommandContext) -> CommandResult:
            return CommandResult(f"echo:{ctx.args!r} body:{ctx.command_body} sid:{ctx.session_id}")

        async def ping(ctx: CommandContext) -> CommandResult:
            return CommandResult(f"pong {api.plugin_config.get('greeting', '')}".strip())

        async def boom(ctx: CommandContext) -> CommandResult:
            raise KeyError("0xdeadbeef-private-key-material")

        async def secret(ctx: CommandContext) -> CommandResult:
            return CommandResult("the secret")

        api.register_command(CommandSpec("echo", "Echo the args", echo, accepts_args=True,
                                         require_auth=False))
        api.register_command(CommandSpec("ping", "Pong", ping, require_auth=False))
        api.register_command(CommandSpec("boom", "Always fails", boom, require_auth=False))
        api.register_command(CommandSpec("Secret_Thing", "Needs auth", secret))

        async def complete(request: ProviderRequest):
            self.requests.append(request)
            if self.provider_error is not None:
                raise self.provider_error
            text = f"you said: {request.body['messages'][-1]['content']}"
            if not request.stream:
                return {"choices": [{"message": {"role": "assistant", "content": text}}]}

            async def deltas():
                for word in text.split(" "):
                    yield word + " "
            return deltas()

        api.register_provider(ProviderSpec(id="tiny", label="Tiny", complete=complete,
                                           aliases=("tn",)))
        for name in ("first", "second"):
            api.register_service(ServiceSpec(
                id=name,
                start=lambda ctx, n=name: self.events.append(f"start {n}"),
                stop=self._stopper(name)))

    def _stopper(self, name: str):
        async def stop(ctx):
            self.events.append(f"stop {name}")
        return stop


@pytest.fixture
def tiny() -> TinyPlugin:
    return TinyPlugin()
