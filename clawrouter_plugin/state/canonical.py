"""Canonical JSON bytes for hashing: sorted keys, compact, UTF-8."""

from __future__ import annotations

import json
from typing import Any

import orjson

_FALLBACK = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> bytes:
    """``value`` as compact JSON with sorted keys; equal values give equal bytes."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # e.g. lone surrogates, which orjson refuses: the slower exact path
        return _FALLBACK.encode(value).encode("utf-8", "surrogatepass")
