"""RoutingConfig: defaults, merging, aliases and validation errors that name the key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from clawrouter_plugin.config import load_config
from clawrouter_plugin.errors import ConfigError
from clawrouter_plugin.router import TIERS, RoutingConfig
from clawrouter_plugin.router.settings import KEYWORD_DIMS, PENALTY_PROFILES


def test_defaults_are_complete():
    settings = RoutingConfig().settings()
    assert set(settings.tables) == {"auto", "eco", "premium", "agentic", "free"}
    assert all(set(table) == set(TIERS) for table in settings.tables.values())
    assert set(settings.saturation) == set(KEYWORD_DIMS)
    assert all(settings.keywords[dim] for dim in KEYWORD_DIMS)
    assert set(settings.penalties) == set(PENALTY_PROFILES)
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


def test_classifier_scoring_and_penalty_overrides():
    settings = RoutingConfig.model_validate({
        "classifier": {"historyWeight": 0.1},
        "scoring": {"saturation": {"code": 10}},
        "penalties": {"eco": {"underRouting": 0.5}},
    }).settings()
    default = RoutingConfig().settings()
    assert settings.history_weight == 0.1 and settings.system_weight == default.system_weight
    assert settings.saturation["code"] == 10
    assert settings.saturation["math"] == default.saturation["math"]
    assert settings.penalties["eco"] == (0.5, 0.0)  # overRouting defaults to 0
    assert settings.penalties["auto"] == default.penalties["auto"]


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
    ({"scoring": {"saturation": {"reasonng": 1}}}, "scoring.saturation.reasonng"),
    ({"scoring": {"saturation": {"code": 0}}}, "code must be greater than 0"),
    ({"scoring": {"weights": {"code": 1}}}, "scoring.weights"),  # the keyword scorer is gone
    ({"penalties": {"cheap": {"underRouting": 1}}}, "penalties.cheap"),
    ({"penalties": {"auto": {"overRouting": 1}}}, "penalties.auto.underRouting"),
    ({"classifier": {"historyWeight": 2}}, "classifier.historyWeight"),
    ({"scoring": {"keywords": {"code": [" "]}}}, "scoring.keywords.code: empty keyword"),
    ({"scoring": {"keywords": {"code": ["ab*"]}}}, "at least 3 letters"),
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
                    "        scoring:\n          saturation:\n            reasonng: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert "routing.scoring.saturation.reasonng" in info.value.message


def test_plugin_config_file_overrides_apply(tmp_path):
    path = tmp_path / "openclaw.yaml"
    path.write_text("plugins:\n  - id: clawrouter\n    config:\n      routing:\n"
                    "        overrides: {agenticMode: true, largeContextTokens: 1234}\n"
                    "        tiers: {SIMPLE: {primary: mini}}\n")
    settings = load_config(str(path)).plugin.routing.settings()
    assert settings.agentic_mode and settings.max_tokens_force_complex == 1234
    assert settings.tables["auto"]["SIMPLE"] == ("openai/gpt-4o-mini",)
