"""clawrouter: route every LLM request to the cheapest capable model, pay per request with x402.

Public API (imported lazily, so ``import clawrouter_plugin`` stays cheap)::

    register(api)                      # the plugin entry point
    await start_proxy(wallet_key=..., port=..., api_base=..., data_dir=..., on_routed=...,
                      on_payment=..., on_low_balance=...) -> ProxyHandle
    route(body, profile="auto") -> RoutingDecision
    ResponseCache(max_size=..., default_ttl=..., max_item_size=..., enabled=...)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
USER_AGENT_PREFIX = "clawrouter/"
USER_AGENT = USER_AGENT_PREFIX + __version__  # on every request clawrouter sends

if TYPE_CHECKING:
    from .proxy.server import ProxyHandle, start_proxy
    from .router import Router, RoutingDecision, route
    from .state.cache import ResponseCache

_LAZY = {
    "start_proxy": ".proxy.server",
    "ProxyHandle": ".proxy.server",
    "route": ".router",
    "Router": ".router",
    "RoutingDecision": ".router",
    "ResponseCache": ".state.cache",
}
__all__ = [
    "ProxyHandle", "ResponseCache", "Router", "RoutingDecision", "__version__", "register",
    "route", "start_proxy",
]


def register(api: object) -> None:
    """The plugin entry point: see :mod:`clawrouter_plugin.plugin` (imported only when called)."""
    from .plugin import register as _register

    _register(api)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
