"""Request bodies as JSON objects, with a nesting limit checked where they are parsed.

orjson itself refuses more than 1024 levels, but code further on (hashing for the cache key,
the standard library's encoder) recurses and would fail on far less. So a body nested deeper
than MAX_DEPTH is a 400 here, and nothing downstream ever sees one. Real OpenAI requests,
tool schemas included, stay well below it.
"""

from __future__ import annotations

import orjson

from ..errors import BadRequest

MAX_DEPTH = 128  # levels of objects and arrays, the body itself being level 1


def parse_object(raw: bytes) -> dict:
    """``raw`` as a JSON object; BadRequest when it is not one or nests deeper than MAX_DEPTH."""
    try:
        body = orjson.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        if "depth" in str(exc) or "recursion" in str(exc):  # orjson's wording varies
            raise _too_deep() from None
        raise BadRequest(f"malformed JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    # a body with at most MAX_DEPTH opening brackets cannot be deeper (two fast byte counts;
    # only bodies with many objects and arrays are walked)
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and _deeper_than(body, MAX_DEPTH):
        raise _too_deep()
    return body


def _too_deep() -> BadRequest:
    return BadRequest(f"the JSON body is nested deeper than {MAX_DEPTH} levels",
                      code="json_too_deep")


def _deeper_than(value: dict, limit: int) -> bool:
    """Whether ``value`` nests more than ``limit`` levels (a level at a time, no recursion)."""
    level: list = [value]
    depth = 1
    while level:
        if depth > limit:
            return True
        below: list = []
        for container in level:
            for item in (container.values() if type(container) is dict else container):
                if type(item) is dict or type(item) is list:
                    below.append(item)
        level = below
        depth += 1
    return False
