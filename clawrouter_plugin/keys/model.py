"""One API key as the proxy knows it: never the secret itself, only its id and limits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApiKey:
    """A caller of a shared proxy. ``id`` is public (shown in /stats and usage records); the
    secret is only ever stored hashed. Budgets are in USD; None means no limit of that kind."""

    id: str
    name: str
    daily_usd: float | None = None  # per UTC day, across every process of the team
    run_usd: float | None = None  # per session (conversation), like maxCostPerRun
    created: float = 0.0  # Unix time
    revoked: bool = False
