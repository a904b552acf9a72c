"""clawrouter: route every LLM request to the cheapest capable model, pay per request with x402."""

__version__ = "0.1.0"


def register(api: object) -> None:
    """The plugin entry point: see :mod:`clawrouter_plugin.plugin` (imported only when called)."""
    from .plugin import register as _register

    _register(api)
