"""Per-request state the proxy keeps between requests: response cache, in-flight dedup,
session pins, spend budgets and model exclusions. Each module is pure and independently tested."""
