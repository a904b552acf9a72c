"""The output cap: clamped per tier (general ceiling for explicit models), priced per model."""

from __future__ import annotations

import pytest

from clawrouter_plugin.catalog import load_catalog
from clawrouter_plugin.config import PluginConfig, validate_plugin_config
from clawrouter_plugin.errors import ConfigError
from clawrouter_plugin.router import Router
from clawrouter_plugin.router.output_cap import DEFAULT_TIER_OUTPUT_TOKENS, OutputCaps

from .conftest import chat

CATALOG = load_catalog()
HARD = "Prove that there are infinitely many primes."


@pytest.mark.parametrize(("text", "tier"), [("hi", "SIMPLE"), (HARD, "REASONING")])
def test_a_huge_cap_is_clamped_to_the_tier_ceiling_and_priced_there(router, text, tier):
    decision = router.route(chat(text, max_completion_tokens=128_000))
    ceiling = DEFAULT_TIER_OUTPUT_TOKENS[tier]
    assert (decision.tier, decision.output_tokens) == (tier, ceiling)
    model = CATALOG.chat[decision.model]
    assert decision.cost_estimate == pytest.approx(
        model.cost(decision.input_tokens, min(ceiling, model.max_output)))
    assert decision.baseline_cost == pytest.approx(
        CATALOG.baseline.cost(decision.input_tokens, min(ceiling, CATALOG.baseline.max_output)))


def test_explicit_models_use_the_general_ceiling_and_a_smaller_cap_is_kept(router):
    direct = router.route(chat("hi", max_tokens=128_000), "openai/gpt-4o-mini")
    assert (direct.tier, direct.output_tokens) == ("DIRECT", 8192)
    assert router.route(chat("hi", max_tokens=300), "openai/gpt-4o-mini").output_tokens == 300
    assert router.route(chat("hi", max_completion_tokens=300)).output_tokens == 300
    assert router.route(chat("hi"), "openai/gpt-4o-mini").output_tokens == 8192  # none set


def test_the_openclaw_hello_turn_costs_cents_not_dollars(router):
    """A 47,000-character system prompt (~12k tokens), tools, the model row's 128000 cap."""
    body = chat("hello", system="x" * 47_000, tools=True, max_completion_tokens=128_000)
    mini = router.route(body, "openai/gpt-4o-mini")
    flash = router.route(body, "google/gemini-2.5-flash")
    assert mini.cost_estimate == pytest.approx(0.0067, abs=0.0003)
    assert flash.cost_estimate == pytest.approx(0.024, abs=0.001)
    assert router.route(body).cost_estimate < 0.01  # routed: the SIMPLE ceiling is lower still


def test_a_model_is_priced_at_most_at_its_own_max_output(router):
    kimi = CATALOG.chat["moonshot/kimi-k2.5"]
    assert kimi.max_output == 8192
    assert router.cost(kimi.id, 1000, 16_384)[0] == pytest.approx(kimi.cost(1000, 8192))
    assert kimi.output_limit(16_384) == 8192 and kimi.output_limit(100) == 100


def test_custom_ceilings():
    router = Router(caps=OutputCaps(general=1000, tiers={"SIMPLE": 50}))
    assert router.route(chat("hi", max_tokens=999)).output_tokens == 50
    assert router.route(chat(HARD, max_tokens=5000)).output_tokens == 1000  # tier not listed
    assert router.route(chat("hi"), "openai/gpt-4o-mini").output_tokens == 1000


def test_config_keys():
    config = PluginConfig.model_validate(
        {"maxOutputTokens": 4000, "tierOutputTokens": {"simple": 1024}})
    caps = config.output_caps()
    assert caps.ceiling("SIMPLE") == 1024 and caps.ceiling("DIRECT") == 4000
    assert caps.ceiling("REASONING") == DEFAULT_TIER_OUTPUT_TOKENS["REASONING"]  # default kept
    assert PluginConfig().output_caps() == OutputCaps(8192, dict(DEFAULT_TIER_OUTPUT_TOKENS))
    for bad in ({"maxOutputTokens": 0}, {"tierOutputTokens": {"HUGE": 5}},
                {"tierOutputTokens": {"SIMPLE": True}}, {"maxOutputTokens": "lots"}):
        with pytest.raises(ConfigError):
            validate_plugin_config(bad)
