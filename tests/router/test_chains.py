"""Chains for long inputs and JSON output: capacity and capability filters, never a tier raise."""

from __future__ import annotations

import pytest

from clawrouter_plugin.catalog import load_catalog
from clawrouter_plugin.router import TIERS, Router, RoutingConfig

from .conftest import chat

CATALOG = load_catalog()
TABLES = ("auto", "eco", "premium", "agentic")
TRIVIAL_ASKS = ("ok, thanks", "yes or no?", "What is the title of this document?")
JSON_OBJECT = {"type": "json_object"}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "city", "schema": {
    "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}


def long_input(ask: str, tokens: int) -> dict:
    """A user message of about ``tokens`` tokens of pasted text followed by a short ask."""
    return chat("Here is the document:\n\n" + "the river ran past the mill " * (tokens // 7)
                + "\n\n" + ask)


def need(decision) -> float:
    return 1.1 * (decision.input_tokens + decision.output_tokens)


@pytest.mark.parametrize("ask", TRIVIAL_ASKS)
def test_a_trivial_ask_over_a_long_input_is_not_raised_to_complex(router, ask):
    decision = router.route(long_input(ask, 150_000))
    assert decision.input_tokens > 140_000
    assert decision.tier in ("SIMPLE", "MEDIUM"), decision.signals
    assert not any(s.startswith("large-context") for s in decision.signals)
    assert all(CATALOG.chat[m].context_window >= need(decision) for m in decision.chain)
    # a cheap model of the tier's own table holds it: no reach to dearer models
    assert decision.model in router.settings.tables["auto"][decision.tier]
    assert CATALOG.chat[decision.model].input_price <= 0.6


@pytest.mark.parametrize("tokens", [150_000, 300_000, 600_000])
@pytest.mark.parametrize("table", TABLES)
def test_every_chain_holds_the_input_in_every_table_and_tier(router, table, tokens):
    body = long_input("ok, thanks", tokens)
    tools = chat("x", tools=True)["tools"]
    for tier in TIERS:
        for extra in ({}, {"response_format": JSON_OBJECT}, {"tools": tools}):
            decision = router.route({**body, **extra}, table, min_tier=tier)
            assert decision.tier == tier
            assert decision.chain, (table, tier, extra)
            too_small = [m for m in decision.chain
                         if CATALOG.chat[m].context_window < need(decision)]
            assert not too_small, (table, tier, tokens, extra, decision.signals)


def test_when_no_model_of_the_tier_fits_the_chain_reaches_into_higher_tiers():
    """The tier's own models (128k windows) cannot hold 150k tokens: the chain takes the next
    tiers' models that can, cheapest first, rather than failing or leaving the table."""
    router = Router(RoutingConfig.model_validate({"tiers": {
        "SIMPLE": {"primary": "openai/gpt-4o-mini", "fallback": ["deepseek/deepseek-chat"]},
        "MEDIUM": {"primary": "xai/grok-3-mini", "fallback": ["anthropic/claude-haiku-4.5"]},
        "COMPLEX": {"primary": "openai/gpt-5.4", "fallback": ["google/gemini-2.5-pro"]},
        "REASONING": {"primary": "xai/grok-4-1-fast-reasoning"},  # 131k: does not fit either
    }}))
    decision = router.route(long_input("ok, thanks", 150_000))
    assert decision.tier == "SIMPLE"
    higher = ("anthropic/claude-haiku-4.5", "google/gemini-2.5-pro", "openai/gpt-5.4")
    paid = [m for m in decision.chain if not CATALOG.chat[m].is_free]
    assert paid == sorted(higher, key=lambda m: CATALOG.chat[m].cost(decision.input_tokens,
                                                                      decision.output_tokens))
    assert any(s.startswith("context: no SIMPLE model fits") for s in decision.signals)


def test_the_top_tier_with_no_fitting_model_takes_the_cheapest_catalog_models(router):
    decision = router.route(long_input("ok, thanks", 150_000), "eco", min_tier="REASONING")
    assert decision.chain
    assert all(CATALOG.chat[m].context_window >= need(decision) for m in decision.chain)
    assert not set(decision.chain) & set(router.settings.tables["eco"]["REASONING"])


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("fmt", [JSON_OBJECT, JSON_SCHEMA])
def test_a_greeting_in_json_mode_is_simple_and_gets_json_capable_models(router, table, fmt):
    decision = router.route(chat("hi", response_format=fmt), table)
    assert decision.tier == "SIMPLE", decision.signals
    capable = "json_schema" if fmt["type"] == "json_schema" else "json"
    assert decision.chain
    assert all(getattr(CATALOG.chat[m], capable) for m in decision.chain), decision.chain
    assert not any("≥" in s for s in decision.signals)


def test_json_schema_drops_models_that_only_do_json_object(router):
    plain = router.route(chat("What is the capital of France?"))
    assert "deepseek/deepseek-chat" in plain.chain
    json_object = router.route(chat("What is the capital of France?", response_format=JSON_OBJECT))
    assert "deepseek/deepseek-chat" in json_object.chain
    schema = router.route(chat("What is the capital of France?", response_format=JSON_SCHEMA))
    assert "deepseek/deepseek-chat" not in schema.chain
    assert schema.tier == json_object.tier == plain.tier == "SIMPLE"


@pytest.mark.parametrize("fmt", [{"type": "text"}, {"type": "nonsense"}, "json", None, 5])
def test_other_response_formats_do_not_filter(router, fmt):
    assert router.route(chat("hi", response_format=fmt)).chain == router.route(chat("hi")).chain


def test_json_mode_reaches_json_capable_models_when_the_tier_has_none():
    router = Router(RoutingConfig.model_validate({"tiers": {
        "SIMPLE": {"primary": "minimax/minimax-m2.5", "fallback": ["openai/o1-mini"]}}}))
    decision = router.route(chat("hi", response_format=JSON_OBJECT))
    assert decision.chain and all(CATALOG.chat[m].json for m in decision.chain)
    assert any(s.startswith("json:") for s in decision.signals), decision.signals
    plain = router.route(chat("hi"))
    assert plain.model == "minimax/minimax-m2.5"


def test_json_mode_in_a_long_tool_request_keeps_every_filter(router):
    body = {**long_input("List the people named in it.", 300_000),
            "response_format": JSON_SCHEMA, "tools": chat("x", tools=True)["tools"]}
    decision = router.route(body)
    for model in decision.chain:
        entry = CATALOG.chat[model]
        assert entry.json_schema and entry.tools and entry.context_window >= need(decision)


def test_a_prompt_asking_for_json_text_is_not_floored(router):
    decision = router.route(chat("hi", system="Always answer in JSON."))
    assert decision.tier == "SIMPLE"
    assert "structured output" in decision.signals
    assert not any("≥" in s for s in decision.signals)


def test_the_free_profile_in_json_mode_stays_free(router):
    decision = router.route(chat("hi", response_format=JSON_SCHEMA), "free")
    assert decision.chain == (CATALOG.free_model,) and decision.cost_estimate == 0


def test_a_free_model_without_json_output_is_kept_off_paid_json_chains():
    import dataclasses

    free = CATALOG.free_model
    plain_free = dataclasses.replace(CATALOG.chat[free], json=False, json_schema=False)
    router = Router(catalog=dataclasses.replace(CATALOG, chat={**CATALOG.chat, free: plain_free}))
    assert free in router.route(chat("hi")).chain
    assert free not in router.route(chat("hi", response_format=JSON_OBJECT)).chain
    assert free not in router.route(chat("hi", response_format=JSON_OBJECT),
                                    "anthropic/claude-haiku-4.5").chain
    # the free profile never pays: it keeps its model and says the format may be ignored
    decision = router.route(chat("hi", response_format=JSON_OBJECT), "free")
    assert decision.chain == (free,)
    assert "json_object: the free model may not honour this response_format" in decision.signals
