"""A small JSON Schema subset validator for third-party plugin configs.

Supports ``type``, ``properties``, ``required``, ``additionalProperties``, ``enum``,
``items``, ``anyOf``, ``minimum``/``maximum`` and local ``$ref`` (``#/$defs/...``), which
covers what pydantic and hand-written manifests produce. ClawRouter's own config is validated
by its pydantic model instead.
"""

from __future__ import annotations

from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES.get(name, (object,)))


def validate(value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None,
             where: str = "config") -> list[str]:
    """Problems found in ``value``, each as ``"where: message"``; empty when valid."""
    root = root if root is not None else schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return validate(value, target, root, where)
    if "anyOf" in schema:
        options = [validate(value, option, root, where) for option in schema["anyOf"]]
        return [] if any(not problems for problems in options) else options[0]
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        if not any(_is_type(value, name) for name in names):
            return [f"{where}: expected {' or '.join(names)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: must be one of {schema['enum']}"]
    problems: list[str] = []
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{where}: must be >= {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{where}: must be <= {schema['maximum']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"{where}.{key}: required")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                problems += validate(item, properties[key], root, f"{where}.{key}")
            elif extra is False:
                problems.append(f"{where}.{key}: unknown key")
            elif isinstance(extra, dict):
                problems += validate(item, extra, root, f"{where}.{key}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            problems += validate(item, schema["items"], root, f"{where}[{index}]")
    return problems
