"""Routing configuration: what a user may override under ``routing:`` in openclaw.yaml.

Every field is optional; anything left out keeps the packaged default from
``data/routing.yaml`` and ``data/keywords.yaml``. :meth:`RoutingConfig.settings` merges the
overrides onto those defaults and returns the effective :class:`~.settings.Settings`.
Merge rules: tier tables are replaced per tier; penalties per profile; saturation, classifier,
overrides and ``profiles.<profile>`` per key; ``scoring.keywords.<dim>`` replaces a dimension (a
list) or some languages of it (a ``{language: list}`` mapping); ``scoring.extraKeywords.<dim>``
adds words.
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from ..catalog import load_catalog
from ..config_section import ConfigSection
from .settings import KEYWORD_DIMS, TIERS, Settings, build_settings
from .tables import suggest

TierName = Literal["SIMPLE", "MEDIUM", "COMPLEX", "REASONING"]
log = logging.getLogger("clawrouter.config")


def _check_model(name: str) -> str:
    """A catalog chat model id (aliases resolved); a clear error otherwise."""
    catalog = load_catalog()
    resolved = catalog.resolve(name)
    if resolved in catalog.chat:
        return resolved
    close = suggest(resolved, catalog)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    if catalog.is_profile(resolved):
        raise ValueError(f"{name!r} is a routing profile, not a model")
    raise ValueError(f"unknown model {name!r} (not in the catalog){hint}")


class TierEntry(ConfigSection):
    """One tier of a tier table: the first model to try and the fallbacks, in order."""

    primary: str
    fallback: list[str] = Field(default_factory=list)

    @field_validator("primary")
    @classmethod
    def _primary_known(cls, value: str) -> str:
        return _check_model(value)

    @field_validator("fallback")
    @classmethod
    def _fallback_known(cls, value: list[str]) -> list[str]:
        return [_check_model(name) for name in value]


TierTable = dict[TierName, TierEntry]


def _upper_tiers(value: object) -> object:
    if isinstance(value, dict):
        return {k.upper() if isinstance(k, str) else k: v for k, v in value.items()}
    return value


def _dim_model(name: str, dims: tuple[str, ...], annotation: object, doc: str) -> type[ConfigSection]:
    fields = {dim: (annotation, None) for dim in dims}
    model = create_model(name, __base__=ConfigSection, **fields)  # type: ignore[call-overload]
    model.__doc__ = doc
    return model


Saturation = _dim_model("Saturation", KEYWORD_DIMS, float | None,
                        "Distinct keywords at which a keyword dimension reaches 1.0.")
KeywordLists = _dim_model("KeywordLists", KEYWORD_DIMS, list[str] | dict[str, list[str]] | None,
                          "Replacement keyword lists: a list, or {language: list}.")
ExtraKeywords = _dim_model("ExtraKeywords", KEYWORD_DIMS, list[str] | None,
                           "Keywords added to the default lists.")


class ScoringConfig(ConfigSection):
    """Keyword dimensions (features of the classifier): keyword lists and saturation."""

    saturation: Saturation = Field(default_factory=Saturation)  # type: ignore[valid-type]
    keywords: KeywordLists = Field(default_factory=KeywordLists)  # type: ignore[valid-type]
    extra_keywords: ExtraKeywords = Field(default_factory=ExtraKeywords)  # type: ignore[valid-type]

    @field_validator("saturation")
    @classmethod
    def _positive(cls, value: BaseModel) -> BaseModel:
        for dim, number in value.model_dump(exclude_none=True).items():
            if number <= 0:
                raise ValueError(f"{to_camel(dim)} must be greater than 0")
        return value


class ClassifierConfig(ConfigSection):
    """What the classifier reads: earlier turns, and the weight of keywords outside the ask."""

    history_weight: float | None = Field(None, ge=0, le=1)
    history_turns: int | None = Field(None, ge=0, le=20)
    system_weight: float | None = Field(None, ge=0, le=1)
    material_weight: float | None = Field(None, ge=0, le=1)


# Removed overrides still read from older configs: key -> what replaced it (the value is ignored)
REMOVED_OVERRIDES = {
    "max_tokens_force_complex": "a long input no longer raises the tier; the chain keeps to "
                                "models whose context window holds it",
    "structured_output_min_tier": "JSON output no longer sets a tier floor; a request with a "
                                  "JSON response_format goes to models that honour it",
}


class OverridesConfig(ConfigSection):
    """Rules applied after classification."""

    agentic_mode: bool | None = None
    unreliable_tool_models: list[str] | None = None
    # deprecated: accepted (with a warning) so that older configs still load, never used
    max_tokens_force_complex: int | None = Field(
        None,
        ge=1,
        validation_alias=AliasChoices(
            "maxTokensForceComplex", "max_tokens_force_complex", "largeContextTokens",
            "large_context_tokens",
        ),
        json_schema_extra={"deprecated": True},
    )
    structured_output_min_tier: TierName | None = Field(None,
                                                        json_schema_extra={"deprecated": True})

    @field_validator("unreliable_tool_models")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_check_model(name) for name in value]

    @model_validator(mode="after")
    def _warn_removed(self) -> OverridesConfig:
        for field in REMOVED_OVERRIDES.keys() & self.model_fields_set:
            log.warning("routing.overrides.%s is deprecated and ignored: %s", to_camel(field),
                        REMOVED_OVERRIDES[field])
        return self


class ProfileConfig(ConfigSection):
    """Limits of one routing profile."""

    max_tier: TierName | None = None

    @field_validator("max_tier", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class ProfilesConfig(ConfigSection):
    """Settings per routing profile (``free`` has none: it always answers with the free model)."""

    auto: ProfileConfig = Field(default_factory=ProfileConfig)
    eco: ProfileConfig = Field(default_factory=ProfileConfig)
    premium: ProfileConfig = Field(default_factory=ProfileConfig)
    agentic: ProfileConfig = Field(default_factory=ProfileConfig)


class PenaltyEntry(ConfigSection):
    """The cost-aware tier choice of one profile (see router/decision.py): the quality loss
    per tier routed below what a request needs, and the extra loss per tier above it."""

    under_routing: float = Field(ge=0)
    over_routing: float = Field(0.0, ge=0)


ProfileName = Literal["auto", "eco", "premium", "agentic"]


class RoutingConfig(ConfigSection):
    """Overrides for the router: tier tables, penalties and limits per profile, keyword lists,
    classifier and overrides."""

    tiers: TierTable | None = None
    eco_tiers: TierTable | None = None
    premium_tiers: TierTable | None = None
    agentic_tiers: TierTable | None = None
    free_tiers: TierTable | None = None
    penalties: dict[ProfileName, PenaltyEntry] | None = None
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    overrides: OverridesConfig = Field(default_factory=OverridesConfig)
    profiles: ProfilesConfig = Field(default_factory=ProfilesConfig)

    _settings: Settings | None = None

    @field_validator("tiers", "eco_tiers", "premium_tiers", "agentic_tiers", "free_tiers",
                     mode="before")
    @classmethod
    def _tier_names(cls, value: object) -> object:
        return _upper_tiers(value)

    @model_validator(mode="after")
    def _coherent(self, info: ValidationInfo) -> RoutingConfig:
        is_default = bool(info.context and info.context.get("defaults"))
        self._settings = build_settings(self, is_default=is_default)
        return self

    def settings(self) -> Settings:
        """The effective settings: packaged defaults with these overrides applied."""
        if self._settings is None:
            self._settings = build_settings(self)
        return self._settings


__all__ = ["TIERS", "RoutingConfig", "TierEntry"]
