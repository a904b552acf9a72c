"""Per-request state the proxy keeps between requests: response cache, in-flight dedup,
session pins, spend budgets and model exclusions. ``stores`` holds the interfaces of what a
team's processes share; each has a local module and a ``redis_*`` one (``backends`` picks)."""
