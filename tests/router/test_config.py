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
    assert settings.agentic_mode is False
    assert settings.max_tiers == {}  # no profile is capped by default
    assert not hasattr(settings, "max_tokens_force_complex")
    assert not hasattr(settings, "structured_output_min_tier")


def test_every_default_keyword_list_covers_ten_languages():
    from clawrouter_plugin.router.settings import default_config

    keywords = default_config().scoring.keywords
    for dim in KEYWORD_DIMS:
        assert set(getattr(keywords, dim)) == {"en", "zh", "ja", "ru", "de", "es", "pt", "fr",
                                               "ko", "ar"}, dim


def test_camel_and_snake_case_keys():
    camel = RoutingConfig.model_validate({"overrides": {"agenticMode": True},
                                          "profiles": {"eco": {"maxTier": "COMPLEX"}}})
    snake = RoutingConfig.model_validate({"overrides": {"agentic_mode": True},
                                          "profiles": {"eco": {"max_tier": "COMPLEX"}}})
    assert camel.settings().agentic_mode and snake.settings().agentic_mode
    assert camel.settings().max_tiers == {"eco": "COMPLEX"} == snake.settings().max_tiers


@pytest.mark.parametrize("key", ["maxTokensForceComplex", "max_tokens_force_complex",
                                 "largeContextTokens", "large_context_tokens",
                                 "structuredOutputMinTier", "structured_output_min_tier"])
def test_removed_override_keys_are_accepted_with_a_deprecation_warning(key, caplog):
    """Configs written for the old overrides still load; the value is ignored and the log says
    so, naming the key and what replaced it."""
    value = "COMPLEX" if "tier" in key.lower() else 1234
    with caplog.at_level("WARNING", logger="clawrouter.config"):
        config = RoutingConfig.model_validate({"overrides": {key: value, "agenticMode": True}})
    assert config.settings().agentic_mode  # the rest of the section still applies
    warned = [r.getMessage() for r in caplog.records if r.name == "clawrouter.config"]
    assert len(warned) == 1 and "routing.overrides." in warned[0] and "deprecated" in warned[0]
    assert ("context window" if "tier" not in key.lower() else "response_format") in warned[0]


def test_removed_override_keys_no_longer_change_the_tier():
    from clawrouter_plugin.router import Router

    router = Router(RoutingConfig.model_validate({"overrides": {
        "maxTokensForceComplex": 50, "structuredOutputMinTier": "COMPLEX"}}))
    body = {"messages": [{"role": "system", "content": "Reply in JSON."},
                         {"role": "user", "content": "hello " * 300}]}
    decision = router.route(body)
    assert decision.tier == Router().route(body).tier == "SIMPLE", decision.signals
    assert not any("large-context" in s or "≥" in s for s in decision.signals)


@pytest.mark.parametrize(("raw", "expected"), [
    ({"profiles": {"auto": {"maxTier": "HUGE"}}}, "routing.profiles.auto.maxTier"),
    ({"profiles": {"auto": {"maxTier": 2}}}, "routing.profiles.auto.maxTier"),
    ({"profiles": {"turbo": {"maxTier": "SIMPLE"}}}, "routing.profiles.turbo"),
    ({"profiles": {"auto": {"maxTeir": "SIMPLE"}}}, "routing.profiles.auto.maxTeir"),
])
def test_max_tier_errors_name_the_key(tmp_path, raw, expected):
    import yaml

    path = tmp_path / "openclaw.yaml"
    path.write_text(yaml.safe_dump({"plugins": {"entries": {"blockrun": {"config": {
        "routing": raw}}}}}))
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert expected in info.value.message


def test_max_tier_names_are_case_insensitive():
    config = RoutingConfig.model_validate({"profiles": {"auto": {"maxTier": "medium"}}})
    assert config.settings().max_tiers == {"auto": "MEDIUM"}


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
    ({"classifier": {"ambiguousDefaultTier": "LARGE"}}, "classifier.ambiguousDefaultTier"),
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
                    "        profiles: {auto: {maxTier: COMPLEX}}\n"
                    "        tiers: {SIMPLE: {primary: mini}}\n")
    settings = load_config(str(path)).plugin.routing.settings()
    assert settings.agentic_mode and settings.max_tiers == {"auto": "COMPLEX"}
    assert settings.tables["auto"]["SIMPLE"] == ("openai/gpt-4o-mini",)
