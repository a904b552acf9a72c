"""clawrouter: route every LLM request to the cheapest capable model, pay per request with x402."""

__version__ = "0.1.0"
