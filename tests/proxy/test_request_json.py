"""The body parser's nesting limit, at its boundary."""

from __future__ import annotations

import json

import pytest

from clawrouter_plugin.errors import BadRequest
from clawrouter_plugin.proxy.request_json import MAX_DEPTH, parse_object


def nested(levels: int, opener: str = "[") -> bytes:
    """A JSON object whose deepest value sits ``levels`` levels down (the object is level 1)."""
    closer = {"[": "]", "{": "}"}[opener]
    inner = "".join(opener if opener == "[" else '{"k":' for _ in range(levels - 1))
    tail = closer * (levels - 1)
    return ('{"x":' + inner + "1" + tail + "}").encode()


@pytest.mark.parametrize("opener", ["[", "{"])
def test_the_limit_is_exact(opener):
    assert parse_object(nested(MAX_DEPTH, opener))
    with pytest.raises(BadRequest) as info:
        parse_object(nested(MAX_DEPTH + 1, opener))
    assert info.value.code == "json_too_deep" and info.value.status == 400


def test_many_shallow_containers_are_fine():
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "[{"}]}
                         for _ in range(500)]}
    assert parse_object(json.dumps(body).encode()) == body


@pytest.mark.parametrize("raw", [b"[1]", b"3", b'"x"', b"null"])
def test_only_objects(raw):
    with pytest.raises(BadRequest, match="must be a JSON object"):
        parse_object(raw)


@pytest.mark.parametrize("levels", [1_025, 100_000])
def test_what_orjson_refuses_is_also_too_deep(levels):
    with pytest.raises(BadRequest, match="nested deeper"):
        parse_object(b"{\"x\":" + b"[" * levels + b"]" * levels + b"}")
