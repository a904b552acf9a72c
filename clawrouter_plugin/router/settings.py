"""Effective routing settings: the packaged defaults merged with the user's overrides."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml
from pydantic.alias_generators import to_camel, to_snake

from ..catalog import FAST_SAFE_LOADER

if TYPE_CHECKING:
    from .config import RoutingConfig

TIERS = ("SIMPLE", "MEDIUM", "COMPLEX", "REASONING")
# dimensions scored from keyword lists
KEYWORD_DIMS = (
    "reasoning", "math", "algorithmic", "code", "engineering", "design", "analysis", "constraints",
    "simple", "lookup", "creative", "writing", "explain", "domain",
    "agent_action", "agent_object", "agent_verify", "agent_sequence",
)
# profiles whose tier is chosen cost-aware (each has penalties; "free" is always SIMPLE)
PENALTY_PROFILES = ("auto", "eco", "premium", "agentic")
# which tier table each profile uses (field name in RoutingConfig)
TABLE_FIELDS = {
    "auto": "tiers", "eco": "eco_tiers", "premium": "premium_tiers",
    "agentic": "agentic_tiers", "free": "free_tiers",
}


@dataclass(frozen=True)
class Settings:
    """Everything the router needs, fully resolved (no optional values)."""

    tables: dict[str, dict[str, tuple[str, ...]]]  # table -> tier -> (primary, *fallbacks)
    penalties: dict[str, tuple[float, float]]  # profile -> (under-routing, over-routing)
    saturation: dict[str, float]
    keywords: dict[str, tuple[str, ...]]  # dimension -> keywords of every language
    history_weight: float
    history_turns: int
    system_weight: float
    material_weight: float
    agentic_mode: bool
    unreliable_tool_models: tuple[str, ...]
    max_tiers: dict[str, str]  # profile -> the highest tier it may choose (capped profiles only)


def _read(name: str) -> Any:
    text = resources.files("clawrouter_plugin").joinpath(f"data/{name}").read_text("utf-8")
    return yaml.load(text, Loader=FAST_SAFE_LOADER)


@lru_cache(maxsize=1)
def default_config() -> RoutingConfig:
    """The packaged defaults (routing.yaml + keywords.yaml), validated like user input."""
    from .config import RoutingConfig

    raw = _read("routing.yaml")
    raw.setdefault("scoring", {})["keywords"] = _read("keywords.yaml")
    config = RoutingConfig.model_validate(raw, context={"defaults": True})
    missing = [f"{section}.{to_camel(dim)}" for section, dims in (
        ("scoring.saturation", KEYWORD_DIMS),
        ("scoring.keywords", KEYWORD_DIMS)) for dim in dims
        if getattr(_path(config, section), dim) is None]
    if missing:
        raise ValueError(f"routing defaults incomplete: {', '.join(missing)}")
    return config


def _path(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, to_snake(part))
    return obj


def _section(override: Any, default: Any) -> dict[str, Any]:
    """Per-key merge of two pydantic sections (None means "not set")."""
    merged = default.model_dump()
    merged.update(override.model_dump(exclude_none=True))
    return merged


def _tables(user: RoutingConfig, defaults: RoutingConfig) -> dict[str, dict[str, tuple[str, ...]]]:
    tables = {}
    for table, field in TABLE_FIELDS.items():
        merged = dict(getattr(defaults, field) or {})
        merged.update(getattr(user, field) or {})
        missing = [tier for tier in TIERS if tier not in merged]
        if missing:
            raise ValueError(f"{to_camel(field)}: missing tiers {', '.join(missing)}")
        tables[table] = {
            tier: tuple(dict.fromkeys((merged[tier].primary, *merged[tier].fallback)))
            for tier in TIERS
        }
    return tables


def _penalties(user: RoutingConfig, defaults: RoutingConfig) -> dict[str, tuple[float, float]]:
    merged = dict(defaults.penalties or {})
    merged.update(user.penalties or {})
    missing = [profile for profile in PENALTY_PROFILES if profile not in merged]
    if missing:
        raise ValueError(f"penalties: missing profiles {', '.join(missing)}")
    return {profile: (merged[profile].under_routing, merged[profile].over_routing)
            for profile in PENALTY_PROFILES}


def _keywords(user: RoutingConfig, defaults: RoutingConfig) -> dict[str, tuple[str, ...]]:
    result = {}
    for dim in KEYWORD_DIMS:
        base = getattr(defaults.scoring.keywords, dim)
        override = getattr(user.scoring.keywords, dim)
        if isinstance(override, list):
            by_language: dict[str, list[str]] = {"custom": override}
        else:
            by_language = dict(base) if isinstance(base, dict) else {"custom": list(base)}
            by_language.update(override or {})
        words = [w for lang in by_language.values() for w in lang]
        words += getattr(user.scoring.extra_keywords, dim) or []
        for word in words:
            if not word.strip(" *"):
                raise ValueError(f"scoring.keywords.{to_camel(dim)}: empty keyword")
            if word.endswith("*") and len(word.rstrip("*").strip()) < 3:
                raise ValueError(f"scoring.keywords.{to_camel(dim)}: stem {word!r} needs at "
                                 "least 3 letters before the *")
        result[dim] = tuple(dict.fromkeys(w.strip() for w in words))
    return result


def build_settings(user: RoutingConfig, *, is_default: bool = False) -> Settings:
    """Merge ``user`` onto the packaged defaults; errors name the offending key."""
    defaults = user if is_default else default_config()
    saturation = _section(user.scoring.saturation, defaults.scoring.saturation)
    classifier = _section(user.classifier, defaults.classifier)
    overrides = _section(user.overrides, defaults.overrides)
    return Settings(
        tables=_tables(user, defaults),
        penalties=_penalties(user, defaults),
        saturation=saturation,
        keywords=_keywords(user, defaults),
        history_weight=classifier["history_weight"],
        history_turns=classifier["history_turns"],
        system_weight=classifier["system_weight"],
        material_weight=classifier["material_weight"],
        agentic_mode=overrides["agentic_mode"],
        unreliable_tool_models=tuple(overrides["unreliable_tool_models"]),
        max_tiers=_max_tiers(user, defaults),
    )


def _max_tiers(user: RoutingConfig, defaults: RoutingConfig) -> dict[str, str]:
    """profile -> maxTier for the capped profiles: the user's value, else the packaged one."""
    caps = {}
    for profile in type(user.profiles).model_fields:
        tier = getattr(user.profiles, profile).max_tier
        if tier is None:
            tier = getattr(defaults.profiles, profile).max_tier
        if tier is not None:
            caps[profile] = tier
    return caps
