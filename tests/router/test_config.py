"""RoutingConfig: defaults, merging, aliases and validation errors that name the key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from clawrouter_plugin.config import load_config
from clawrouter_plugin.errors import ConfigError
from clawrouter_plugin.router import TIERS, RoutingConfig
from clawrouter_plugin.router.settings import KEYWORD_DIMS, STRUCTURAL_DIMS


def test_defaults_are_complete():
    settings = RoutingConfig().settings()
    assert set(settings.tables) == {"auto", "eco", "premium", "agentic", "free"}
    assert all(set(table) == set(TIERS) for table in settings.tables.values())
    assert set(settings.weights) == set(KEYWORD_DIMS + STRUCTURAL_DIMS)
    assert all(settings.keywords[dim] for dim in KEYWORD_DIMS)
    assert settings.boundaries[0] < settings.boundaries[1] < settings.boundaries[2]
    assert settings.max_tokens_force_complex == 100_000
    assert settings.structured_output_min_tier == "MEDIUM"
    assert settings.agentic_mode is False


def test_every_default_keyword_list_covers_ten_languages():
    from clawrouter_plugin.router.settings import default_config

    keywords = default_config().scoring.keywords
    for dim in KEYWORD_DIMS:
        assert set(getattr(keywords, dim)) == {"en", "zh", "ja", "ru", "de", "es", "pt", "fr",
                                               "ko", "ar"}, dim


def test_camel_and_snake_case_keys():
    camel = RoutingConfig.model_validate({"overrides": {"maxTokensForceComplex": 5,
                                                        "agenticMode": True}})
    snake = RoutingConfig.model_validate({"overrides": {"max_tokens_force_complex": 5,
                                                        "agentic_mode": True}})
    alias = RoutingConfig.model_validate({"overrides": {"largeContextTokens": 5}})
    assert camel.settings().max_tokens_force_complex == 5 == snake.settings().max_tokens_force_complex
    assert alias.settings().max_tokens_force_complex == 5
    assert camel.settings().agentic_mode and snake.settings().agentic_mode


def test_tier_overrides_merge_per_tier_and_resolve_aliases():
    config = RoutingConfig.model_validate({"ecoTiers": {"medium": {"primary": "flash",
                                                                   "fallback": ["deepseek"]}}})
    settings = config.settings()
    assert settings.tables["eco"]["MEDIUM"] == ("google/gemini-2.5-flash", "deepseek/deepseek-chat")
    default = RoutingConfig().settings()
    assert settings.tables["eco"]["SIMPLE"] == default.tables["eco"]["SIMPLE"]
    assert settings.tables["auto"] == default.tables["auto"]


def test_classifier_and_scoring_overrides():
    settings = RoutingConfig.model_validate({
        "classifier": {"ambiguousDefaultTier": "up", "historyWeight": 0.1, "agenticThreshold": 0.9},
        "scoring": {"steepness": 3, "confidenceThreshold": 0.2, "weights": {"code": 0.9},
                    "saturation": {"code": 10}},
    }).settings()
    assert settings.ambiguous_default_tier == "up"
    assert (settings.history_weight, settings.agentic_threshold) == (0.1, 0.9)
    assert (settings.steepness, settings.confidence_threshold) == (3, 0.2)
    assert settings.weights["code"] == 0.9 and settings.saturation["code"] == 10
    assert settings.weights["math"] == RoutingConfig().settings().weights["math"]


def _error(raw: dict) -> str:
    with pytest.raises(ValidationError) as info:
        RoutingConfig.model_validate(raw)
    return str(info.value)


@pytest.mark.parametrize(("raw", "expected"), [
    ({"tiers": {"SIMPLE": {"primary": "gtp-4o"}}}, "tiers.SIMPLE.primary"),
    ({"tiers": {"SIMPLE": {"primary": "gtp-4o"}}}, "did you mean openai/gpt-4o"),
    ({"agenticTiers": {"COMPLEX": {"primary": "auto"}}}, "is a routing profile"),
    ({"premiumTiers": {"HARD": {"primary": "openai/o3"}}}, "premiumTiers.HARD"),
    ({"tiers": {"SIMPLE": {"fallback": ["openai/o3"]}}}, "primary"),
    ({"scoring": {"weights": {"reasonng": 1}}}, "scoring.weights.reasonng"),
    ({"scoring": {"tierBoundaries": {"simpleMedium": 0.9}}}, "scoring.tierBoundaries"),
    ({"scoring": {"saturation": {"code": 0}}}, "code must be greater than 0"),
    ({"scoring": {"confidenceThreshold": 2}}, "scoring.confidenceThreshold"),
    ({"scoring": {"keywords": {"code": [" "]}}}, "scoring.keywords.code: empty keyword"),
    ({"scoring": {"keywords": {"code": ["ab*"]}}}, "at least 3 letters"),
    ({"classifier": {"ambiguousDefaultTier": "LARGE"}}, "classifier.ambiguousDefaultTier"),
    ({"overrides": {"structuredOutputMinTier": "HUGE"}}, "overrides.structuredOutputMinTier"),
    ({"overrides": {"maxTokensForceComplex": 0}}, "maxTokensForceComplex"),
    ({"overrides": {"unreliableToolModels": ["nope/x"]}}, "unknown model 'nope/x'"),
    ({"classifer": {}}, "classifer"),
])
def test_errors_name_the_key(raw, expected):
    assert expected in _error(raw)


def test_plugin_config_file_errors_name_the_routing_key(tmp_path):
    path = tmp_path / "openclaw.yaml"
    path.write_text("plugins:\n  - id: clawrouter\n    config:\n      routing:\n"
                    "        scoring:\n          weights:\n            reasonng: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert "routing.scoring.weights.reasonng" in info.value.message


def test_plugin_config_file_overrides_apply(tmp_path):
    path = tmp_path / "openclaw.yaml"
    path.write_text("plugins:\n  - id: clawrouter\n    config:\n      routing:\n"
                    "        overrides: {agenticMode: true, largeContextTokens: 1234}\n"
                    "        tiers: {SIMPLE: {primary: mini}}\n")
    settings = load_config(str(path)).plugin.routing.settings()
    assert settings.agentic_mode and settings.max_tokens_force_complex == 1234
    assert settings.tables["auto"]["SIMPLE"] == ("openai/gpt-4o-mini",)
