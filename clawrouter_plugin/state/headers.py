"""Case-insensitive header lookup that works for plain dicts and multidicts alike."""

from __future__ import annotations

from collections.abc import Mapping


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` (give it lower-case), whatever the mapping's key case."""
    value = headers.get(name)
    if value is not None or hasattr(headers, "getone"):  # multidicts are case-insensitive already
        return value
    for key, val in headers.items():
        if key.lower() == name:
            return val
    return None
