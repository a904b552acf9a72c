"""Profiles, tier tables, explicit models, chain filters, costs and the public interface."""

from __future__ import annotations

import json
import random

import pytest

from clawrouter_plugin.catalog import load_catalog
from clawrouter_plugin.errors import BadRequest, ModelNotFound
from clawrouter_plugin.router import TIERS, Router, RoutingConfig, RoutingDecision, route, tier_rank
from clawrouter_plugin.router import router as router_module
from clawrouter_plugin.router.classifier import Explanation

from .conftest import chat

CATALOG = load_catalog()
FREE = CATALOG.free_model
HARD = "Prove that there are infinitely many primes."


def test_tiers_and_rank():
    assert TIERS == ("SIMPLE", "MEDIUM", "COMPLEX", "REASONING")
    assert [tier_rank(t) for t in TIERS] == [0, 1, 2, 3]
    assert tier_rank("DIRECT") == -1


def test_decision_fields_chain_and_dict(router):
    decision = router.route(chat("hi"))
    assert isinstance(decision, RoutingDecision)
    assert decision.chain == (decision.model, *decision.fallbacks)
    data = decision.to_dict()
    assert json.loads(json.dumps(data))["model"] == decision.model
    assert set(data) >= {"profile", "table", "tier", "model", "fallbacks", "confidence", "agentic",
                         "signals", "input_tokens", "output_tokens", "cost_estimate",
                         "baseline_cost", "savings", "score"}
    with pytest.raises(AttributeError):
        decision.tier = "COMPLEX"  # frozen


@pytest.mark.parametrize("profile", ["auto", "eco", "premium", "agentic"])
@pytest.mark.parametrize(("text", "tier"), [("hi", "SIMPLE"), (HARD, "REASONING")])
def test_profiles_use_their_tables(router, profile, text, tier):
    decision = router.route(chat(text), profile)
    assert (decision.profile, decision.table, decision.tier) == (profile, profile, tier)
    assert decision.model == router.settings.tables[profile][tier][0]
    assert decision.agentic is (profile == "agentic")


def test_premium_reports_no_savings_free_costs_nothing(router):
    premium = router.route(chat(HARD), "premium")
    assert premium.savings == 0 and premium.cost_estimate > 0
    free = router.route(chat(HARD), "free")
    assert (free.tier, free.model, free.fallbacks) == ("SIMPLE", FREE, ())
    assert (free.cost_estimate, free.savings) == (0.0, 1.0)


def test_costs_and_savings(router):
    decision = router.route(chat("hi", max_tokens=1000))
    model = CATALOG.chat[decision.model]
    assert decision.output_tokens == 1000
    assert decision.cost_estimate == pytest.approx(model.cost(decision.input_tokens, 1000))
    assert decision.baseline_cost == pytest.approx(
        CATALOG.chat["anthropic/claude-opus-4.6"].cost(decision.input_tokens, 1000))
    assert decision.savings == pytest.approx(1 - decision.cost_estimate / decision.baseline_cost)
    cost, baseline, savings = router.cost("anthropic/claude-opus-4.6", 1000, 1000)
    assert cost == baseline and savings == 0
    assert router.cost("opus", 10, 10)[0] == cost / 100  # aliases resolve
    with pytest.raises(ModelNotFound):
        router.cost("no/such-model", 1, 1)


def test_output_tokens_prefers_max_completion_tokens(router):
    assert router.route(chat("hi", max_completion_tokens=77, max_tokens=5)).output_tokens == 77
    assert router.route(chat("hi")).output_tokens == router.caps.ceiling("SIMPLE")


def test_explicit_model(router):
    decision = router.route(chat("hi"), "anthropic/claude-sonnet-4.6")
    assert (decision.profile, decision.table, decision.tier) == ("direct", "direct", "DIRECT")
    assert decision.chain == ("anthropic/claude-sonnet-4.6", FREE)
    assert router.route(chat("hi"), "sonnet").model == "anthropic/claude-sonnet-4.6"
    assert router.route(chat("hi", tools=True), "sonnet").chain == ("anthropic/claude-sonnet-4.6",)
    excluded = frozenset({"anthropic/claude-sonnet-4.6", FREE})
    assert router.route(chat("hi"), "sonnet", excluded=excluded).chain == (
        "anthropic/claude-sonnet-4.6",)
    assert router.route(chat("hi"), FREE).chain == (FREE,)


def test_unknown_model_suggests_close_names(router):
    with pytest.raises(ModelNotFound) as info:
        router.route(chat("hi"), "gtp-4o")
    assert 'Unknown model "gtp-4o". Did you mean: openai/gpt-4o' in info.value.message
    assert info.value.status == 404


@pytest.mark.parametrize("profile", ["auto", "eco", "premium", "agentic"])
@pytest.mark.parametrize("text", ["hi", "Explain DNS.", "Design a URL shortener at scale.", HARD])
def test_tools_only_get_tool_capable_models(router, profile, text):
    decision = router.route(chat(text, tools=True), profile)
    assert decision.chain and all(CATALOG.chat[m].tools for m in decision.chain)
    assert FREE not in decision.chain
    assert "tools" in decision.signals
    if profile == "auto":
        assert decision.agentic and decision.table == "agentic"


@pytest.mark.parametrize("text", ["hi", "Explain DNS.", HARD])
def test_free_profile_with_tools_stays_free_and_drops_the_tools(router, text):
    decision = router.route(chat(text, tools=True), "free", min_tier="REASONING")
    assert decision.chain == (FREE,) and decision.cost_estimate == 0
    assert "tools dropped: the free model cannot call tools" in decision.signals
    excluded = router.route(chat(text, tools=True), "free", excluded=frozenset({FREE}))
    assert excluded.chain == (FREE,)  # nothing else may answer for $0


def test_free_profile_refuses_what_the_free_model_cannot_read(router):
    image = {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}
    with pytest.raises(BadRequest, match="cannot read images") as info:
        router.route(image, "free")
    assert info.value.code == "free_model_unsuitable"
    with pytest.raises(BadRequest, match="too long for the free model"):
        router.route(chat("Summarize this.\n" + "lorem ipsum dolor " * 33_000), "free")


def test_unreliable_tool_models_go_last(router):
    decision = router.route(chat("Design a URL shortener at scale.", tools=True), "eco")
    chain = list(decision.chain)
    unreliable = set(router.settings.unreliable_tool_models)
    assert chain[-1] in unreliable or not unreliable.intersection(chain)
    assert chain[0] not in unreliable


def test_vision_requests_get_vision_models(router):
    body = {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}
    for profile in ("auto", "eco", "premium"):
        decision = router.route(body, profile)
        assert "vision" in decision.signals
        assert all(CATALOG.chat[m].vision for m in decision.chain), (profile, decision.chain)


def test_context_window_filter(router):
    body = chat("Summarize this.\n" + "lorem ipsum dolor " * 33_000)  # ~150k tokens
    decision = router.route(body)
    need = 1.1 * (decision.input_tokens + decision.output_tokens)
    assert decision.input_tokens > 140_000
    assert all(CATALOG.chat[m].context_window >= need for m in decision.chain)
    for profile in ("eco", "premium", "agentic"):
        chain = router.route(body, profile).chain
        assert chain and all(CATALOG.chat[m].context_window >= need for m in chain), profile


def test_impossible_context_keeps_the_widest_models(router):
    decision = router.route(chat("x " * 2_400_000))
    widest = max(m.context_window for m in CATALOG.chat.values())
    assert decision.chain and CATALOG.chat[decision.model].context_window == widest or (
        any("widest kept" in s for s in decision.signals))


def test_exclusions(router):
    full = router.route(chat(HARD)).chain
    excluded = frozenset(full[:2])
    decision = router.route(chat(HARD), excluded=excluded)
    assert not excluded.intersection(decision.chain)
    everything = frozenset(router.settings.tables["auto"]["REASONING"]) | {FREE}
    fallback = router.route(chat(HARD), excluded=everything)
    assert fallback.chain  # never empty
    assert any("exclusions ignored" in s for s in fallback.signals)
    assert FREE not in router.route(chat("hi"), excluded=frozenset({FREE})).chain


def test_chain_has_no_duplicates_and_ends_with_the_free_model(router):
    for text in ("hi", HARD, "Design a URL shortener at scale."):
        for profile in ("auto", "eco", "premium", "agentic"):
            chain = router.route(chat(text), profile).chain
            assert len(chain) == len(set(chain))
            assert FREE in (chain[0], chain[-1])


def test_min_tier_pins_the_session(router):
    decision = router.route(chat("thanks!"), min_tier="COMPLEX")
    assert decision.tier == "COMPLEX" and "pinned ≥ COMPLEX" in decision.signals
    assert router.route(chat(HARD), min_tier="MEDIUM").tier == "REASONING"
    with pytest.raises(ValueError):
        router.route(chat("hi"), min_tier="HUGE")


def test_agentic_detection_and_mode(router):
    for text in ("build the project then run tests", "fix the bug and make sure it works"):
        decision = router.route(chat(text))
        assert decision.agentic and decision.table == "agentic"
    assert not router.route(chat("How do I fix a merge conflict in git?")).agentic
    forced = Router(RoutingConfig.model_validate({"overrides": {"agenticMode": True}}))
    assert forced.route(chat("hi")).table == "agentic"
    assert forced.route(chat("hi"), "eco").table == "eco"


def test_tool_loop_is_agentic(router):
    body = {"messages": [
        {"role": "user", "content": "Run the tests."},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function",
         "function": {"name": "shell", "arguments": "{\"cmd\": \"pytest\"}"}}]},
        {"role": "tool", "tool_call_id": "1", "content": "1 failed"}]}
    assert router.route(body).agentic


def test_custom_tier_tables():
    config = RoutingConfig.model_validate({
        "tiers": {"simple": {"primary": "mini", "fallback": ["haiku"]}},
        "premiumTiers": {"REASONING": {"primary": "openai/o3"}}})
    router = Router(config)
    assert router.route(chat("hi")).chain[:2] == ("openai/gpt-4o-mini",
                                                  "anthropic/claude-haiku-4.5")
    assert router.route(chat(HARD), "premium").model == "openai/o3"
    assert router.route(chat(HARD)).model == Router().route(chat(HARD)).model  # others kept


def test_module_level_route():
    assert route(chat("hi")).tier == "SIMPLE"
    assert route(chat(HARD), "eco").table == "eco"


@pytest.mark.parametrize("body", [
    [], {"messages": []}, {"messages": "hi"}, {"messages": ["hi"]},
    {"messages": [{"role": "user", "content": "hi"}], "tools": {"x": 1}},
])
def test_malformed_bodies(router, body):
    with pytest.raises(BadRequest):
        router.route(body)


_ODD_VALUES = [None, True, 0, -3, 2.5, "", "hi", "Prove it step by step.", [], {}, ["x"], {"a": 1},
               [{"type": "text", "text": 5}], [{"type": "image_url"}, "part"], "日本語の説明",
               "```py\nx = 1\n```", 10**30, float("nan")]
_KEYS = ["role", "content", "tool_calls", "name", "function", "arguments"]


def _odd_message(rng: random.Random) -> object:
    if rng.random() < 0.1:
        return rng.choice(_ODD_VALUES)
    message = {"role": rng.choice(["user", "system", "developer", "assistant", "tool", 7, None])}
    for key in rng.sample(_KEYS, rng.randint(0, 3)):
        message[key] = rng.choice(_ODD_VALUES)
    if rng.random() < 0.2:
        message["tool_calls"] = [{"function": {"arguments": rng.choice(_ODD_VALUES)}},
                                 rng.choice(_ODD_VALUES)]
    return message


def test_any_json_body_gives_a_decision_or_bad_request(router):
    """Odd but JSON-shaped bodies never raise anything but BadRequest (compiled code checks
    argument types at run time, so a wrong annotation would surface here as a TypeError)."""
    rng = random.Random(4021)
    decisions = 0
    for _ in range(3000):
        body = {"messages": [_odd_message(rng) for _ in range(rng.randint(0, 4))]}
        for key in ("tools", "max_tokens", "max_completion_tokens"):
            if rng.random() < 0.3:
                body[key] = rng.choice(_ODD_VALUES + [[{"type": "function"}]])
        profile = rng.choice(["auto", "eco", "premium", "free", "agentic", "gpt", None, ""])
        try:
            decision = router.route(body, profile)
        except BadRequest:
            continue
        decisions += 1
        assert decision.model in CATALOG.chat
    assert decisions > 1000  # most odd bodies are still routable


def test_content_parts_and_odd_contents(router):
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Prove that"},
                                                      {"type": "text", "text": "primes are "
                                                       "infinite."}]}]}
    assert router.route(body).tier == "REASONING"
    assert router.route({"messages": [{"role": "user", "content": None}]}).tier == "SIMPLE"
    assert router.route({"messages": [{"role": "system", "content": "Be brief."}]}).model


def capped(**profiles) -> Router:
    return Router(RoutingConfig.model_validate(
        {"profiles": {name: {"maxTier": tier} for name, tier in profiles.items()}}))


def test_max_tier_caps_the_profile_and_says_so():
    router = capped(auto="MEDIUM")
    decision = router.route(chat(HARD))
    assert decision.tier == "MEDIUM"
    assert "capped at MEDIUM (maxTier)" in decision.signals
    assert decision.model == router.settings.tables["auto"]["MEDIUM"][0]
    assert router.route(chat("hi")).tier == "SIMPLE"  # below the cap: untouched
    assert not any("capped" in s for s in router.route(chat("hi")).signals)
    assert router.route(chat(HARD), "eco").tier == "REASONING"  # other profiles uncapped


def test_max_tier_applies_to_the_profile_asked_even_on_the_agentic_table():
    decision = capped(auto="SIMPLE").route(chat(HARD, tools=True))
    assert (decision.table, decision.tier) == ("agentic", "SIMPLE")
    assert "capped at SIMPLE (maxTier)" in decision.signals
    assert capped(agentic="COMPLEX").route(chat(HARD), "agentic").tier == "COMPLEX"


def test_max_tier_wins_over_a_session_pin():
    """The cap is the user's explicit configuration; a pin (from an earlier, harder turn) may
    raise the tier only up to it."""
    router = capped(auto="MEDIUM")
    decision = router.route(chat("thanks!"), min_tier="REASONING")
    assert decision.tier == "MEDIUM"
    assert "pinned ≥ REASONING" in decision.signals
    assert decision.signals.index("capped at MEDIUM (maxTier)") > decision.signals.index(
        "pinned ≥ REASONING")
    assert router.route(chat("thanks!"), min_tier="MEDIUM").tier == "MEDIUM"


def test_max_tier_leaves_explicit_models_and_the_free_profile_alone():
    router = capped(auto="SIMPLE", premium="SIMPLE")
    assert router.route(chat(HARD), "sonnet").tier == "DIRECT"
    assert router.route(chat(HARD), "free").chain == (FREE,)


def test_decision_has_an_optional_explanation_field_last():
    assert RoutingDecision._fields[-1] == "explanation"
    assert set(RoutingDecision._field_defaults) == {"explanation"}
    empty = RoutingDecision._field_defaults["explanation"]
    assert (empty.contributions, empty.signals) == ((), ())
    decision = route(chat(HARD))
    assert isinstance(decision.contributions, tuple)
    assert decision.to_dict()["contributions"] == [list(p) for p in decision.contributions]


@pytest.mark.skipif(not router_module.__file__.endswith(".py"),
                    reason="a compiled Router's classifier cannot be replaced from Python")
def test_decision_carries_the_classifiers_explanation():
    """Router.route passes the classification's explanation on, its own signals after it
    (the compiled module runs the same source: test_compiled.py)."""
    from clawrouter_plugin.router.features import read_request

    router = Router()
    view = read_request(chat(HARD), 0, router.settings.history_turns)
    own = router.classifier.classify(view)
    assert router.route(chat(HARD)).contributions == own.contributions
    verdict = router.classifier.classify
    weights = (("ask: 'prove'", 1.25), ("ask: 'primes'", 0.5))

    def with_weights(view, policy=None):
        return verdict(view, policy)._replace(
            explanation=Explanation.fixed(weights, ("ask: 'prove' +1.25",)))

    router.classifier.classify = with_weights
    decision = router.route({**chat(HARD),
                             "tools": [{"type": "function", "function": {"name": "f"}}]})
    assert decision.contributions == weights
    assert decision.signals == ("ask: 'prove' +1.25", "tools")
    assert decision.to_dict()["contributions"] == [list(pair) for pair in weights]
    assert router.route(chat(HARD), "sonnet").contributions == ()


@pytest.mark.skipif(not router_module.__file__.endswith(".py"),
                    reason="a compiled Classifier's methods cannot be replaced from Python")
def test_the_explanation_is_worked_out_once_and_only_when_read(monkeypatch):
    """route() does not explain its decision (the proxy only logs it); reading ``signals`` or
    ``contributions`` explains it once, with the same result as explaining at once."""
    from clawrouter_plugin.router import classifier as classifier_module

    explain = classifier_module.Classifier.explain
    calls = []

    def counted(self, *args):
        calls.append(args)
        return explain(self, *args)

    monkeypatch.setattr(classifier_module.Classifier, "explain", counted)
    router = Router()
    decision = router.route(chat(HARD))
    assert calls == []
    signals = decision.signals
    assert len(calls) == 1
    assert decision.contributions and decision.signals == signals
    assert len(calls) == 1
    f, column = calls[0]
    contributions, eager = explain(router.classifier, f, column)
    assert decision.contributions == contributions
    assert signals[:len(eager)] == tuple(eager)
