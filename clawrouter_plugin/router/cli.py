"""``clawrouter route``: show routing decisions for a prompt or for a JSONL batch (no network).

``--explain`` adds why: the classifier's features that weighed most toward the chosen tier,
with their weights, and every signal (tools, vision, pins, caps, chain filters) on its own line.
The fields of a ``--jsonl`` record are an interface; ``--explain`` adds ``contributions``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from typing import TextIO

import orjson

from ..config import load_config
from ..errors import ClawRouterError
from .router import Router, RoutingDecision


def route_command(args: argparse.Namespace) -> int:
    """Entry point of ``clawrouter route``; returns the exit code."""
    loaded = load_config(args.config)
    router = Router(loaded.plugin.routing, caps=loaded.plugin.output_caps())
    profiles = [router.resolve(name) for name in args.profile or ["auto"]]
    excluded = frozenset(router.catalog.resolve(m) for m in loaded.plugin.exclude_models)
    if args.jsonl:
        return _route_jsonl(router, args.jsonl, profiles, excluded, sys.stdout, args.explain)
    if not args.prompt:
        raise ClawRouterError('give a prompt (clawrouter route "...") or --jsonl FILE')
    messages = [{"role": "system", "content": args.system}] if args.system else []
    messages.append({"role": "user", "content": args.prompt})
    show = explain if args.explain else _describe
    blocks = [show(router.route({"messages": messages}, p, excluded=excluded), p)
              for p in profiles]
    print("\n\n".join(blocks))
    return 0


def _head(d: RoutingDecision, asked: str) -> list[str]:
    return [
        f"{asked}: {d.tier} -> {d.model}"
        + (f"  (confidence {d.confidence:.2f}, score {d.score:.2f})" if d.tier != "DIRECT" else ""),
        f"  fallbacks  {', '.join(d.fallbacks) or '-'}",
        f"  table      {d.table}{' (agentic)' if d.agentic else ''}",
    ]


def _costs(d: RoutingDecision) -> list[str]:
    savings = f", saves {d.savings:.1%}" if d.profile != "premium" else ""
    return [
        f"  tokens     {d.input_tokens} in / {d.output_tokens} out",
        f"  cost       ${d.cost_estimate:.6f} (baseline ${d.baseline_cost:.6f}{savings})",
    ]


def _describe(d: RoutingDecision, asked: str) -> str:
    return "\n".join([*_head(d, asked), f"  signals    {'; '.join(d.signals) or '-'}",
                      *_costs(d)])


def explain(d: RoutingDecision, asked: str) -> str:
    """The decision for profile ``asked``, then its features with their weights (largest first,
    as the classifier ranks them) and its signals, one per line."""
    features = [f"    {weight:+.3f}  {label}" for label, weight in d.contributions]
    return "\n".join([
        *_head(d, asked), *_costs(d),
        "  features (weight toward the chosen tier)",
        *(features or ["    - (none reported by the classifier)"]),
        "  signals",
        *([f"    {signal}" for signal in d.signals] or ["    -"]),
    ])


def _lines(path: str) -> Iterable[str]:
    if path == "-":
        yield from sys.stdin
        return
    try:
        with open(path, encoding="utf-8") as handle:
            yield from handle
    except (OSError, UnicodeDecodeError) as exc:
        raise ClawRouterError(f"cannot read {path}: {exc}") from None


def _route_jsonl(router: Router, path: str, profiles: list[str], excluded: frozenset[str],
                 out: TextIO, with_contributions: bool = False) -> int:
    failed = False
    for line in _lines(path):
        if not line.strip():
            continue
        item_id, body, error = _parse(line)
        for profile in profiles:
            if error is None:
                started = time.perf_counter_ns()
                try:
                    decision = router.route(body, profile, excluded=excluded)
                except ClawRouterError as exc:
                    record = {"id": item_id, "profile": profile, "error": exc.message}
                else:
                    elapsed = (time.perf_counter_ns() - started) / 1000
                    record = _record(item_id, profile, decision, elapsed)
                    if with_contributions:
                        record["contributions"] = [list(p) for p in decision.contributions]
            else:
                record = {"id": item_id, "profile": profile, "error": error}
            failed = failed or "error" in record
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
    return 1 if failed else 0


def _parse(line: str) -> tuple[object, dict, str | None]:
    """(id, body, error) of one JSONL line."""
    try:
        item = orjson.loads(line)  # unlike json, bounded nesting depth: never a stack overflow
    except orjson.JSONDecodeError as exc:
        return None, {}, f"not valid JSON: {exc.msg} (column {exc.colno})"
    if not isinstance(item, dict):
        return None, {}, "each line must be a JSON object with 'id' and 'body'"
    body = item.get("body")
    if not isinstance(body, dict):
        return item.get("id"), {}, "missing 'body' (a chat-completions request object)"
    return item.get("id"), body, None


def _record(item_id: object, profile: str, d: RoutingDecision, elapsed_us: float) -> dict:
    return {
        "id": item_id, "profile": profile, "tier": d.tier, "model": d.model,
        "fallbacks": list(d.fallbacks), "agentic": d.agentic, "confidence": d.confidence,
        "signals": list(d.signals), "cost_estimate": d.cost_estimate, "savings": d.savings,
        "route_us": round(elapsed_us, 1),
    }
