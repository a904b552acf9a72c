"""The classifier: every dimension, matching rules, context weights, floors and confidence."""

from __future__ import annotations

import pytest

from clawrouter_plugin.router import Router, RoutingConfig
from clawrouter_plugin.router.keywords import KeywordMatcher, normalize

from .conftest import chat


def fired(decision, label: str) -> bool:
    return any(s.startswith(label + " (") or s == label for s in decision.signals)


@pytest.mark.parametrize(("dimension", "text"), [
    ("reasoning", "Prove that the sum of two odd numbers is even."),
    ("reasoning", "请证明这个结论。"),
    ("reasoning", "Докажите, что это верно."),
    ("math", "Compute the integral of x over the interval."),
    ("math", "Найди вероятность этого события."),
    ("algorithmic", "What is the time complexity of heapsort?"),
    ("code", "Why does my python script fail?"),
    ("code", "Erkläre diese Funktion."),
    ("engineering", "How does sharding work in MongoDB?"),
    ("engineering", "分布式系统的一致性是什么？"),
    ("design", "Design a parking lot."),
    ("analysis", "List the trade-offs."),
    ("constraints", "Keep it to at most three items."),
    ("simple", "hello there"),
    ("simple", "مرحبا"),
    ("lookup", "What is a monad?"),
    ("creative", "Write a poem about rain."),
    ("writing", "Draft an email to my team."),
    ("explain", "Explain how DNS works."),
    ("explain", "REST와 GraphQL의 차이점을 설명해 주세요."),
    ("domain", "How do quantum computers factor numbers?"),
    ("agent-action", "Deploy it."),
    ("agent-object", "Look at the repo."),
    ("agent-verify", "Make sure it works."),
    ("agent-sequence", "Do this, then that."),
])
def test_each_keyword_dimension_fires(router, dimension, text):
    assert fired(router.route(chat(text)), dimension)


@pytest.mark.parametrize(("text", "trap"), [
    ("What's the default port for PostgreSQL?", "def"),
    ("Which text editor do you like?", "edit"),
    ("Is this jacket waterproof?", "proof"),
    ("How do I check my credit score?", "edit"),
    ("Is the complete list ready?", "let"),
])
def test_keywords_match_whole_words_only(router, text, trap):
    decision = router.route(chat(text))
    words = [w for s in decision.signals if "(" in s
             for w in s.split("(", 1)[1].rstrip(")").split(", ")]
    assert trap not in words
    assert decision.tier == "SIMPLE"


def test_each_distinct_keyword_counts_once(router):
    once = router.route(chat("Prove it."))
    repeated = router.route(chat("Prove prove prove prove it."))
    assert repeated.score == pytest.approx(once.score, abs=0.05)


def test_a_keyword_listed_twice_counts_once():
    matcher = KeywordMatcher({"reasoning": ["theorem", "Theorem", "theorem"]})
    assert matcher.scan(normalize("a theorem")) == [("reasoning", "theorem")]


def test_stems_match_word_starts_only():
    matcher = KeywordMatcher({"reasoning": ["доказ*", "optimi*"]})
    assert matcher.scan(normalize("Доказательство теоремы")) == [("reasoning", "доказ*")]
    assert matcher.scan(normalize("Bitte optimiere den Code")) == [("reasoning", "optimi*")]
    assert matcher.scan(normalize("это недоказуемо")) == []
    # stems are for inflected languages: plain-ASCII English text does not try them
    assert matcher.scan(normalize("please optimise it")) == []


def test_phrases_and_punctuation_are_normalised():
    matcher = KeywordMatcher({"reasoning": ["step by step", "what's"]})
    found = {word for _, word in matcher.scan(normalize("Think step-by-step: WHAT'S next?"))}
    assert found == {"step by step", "what's"}


def test_cjk_and_korean_match_as_substrings_arabic_ignores_diacritics():
    matcher = KeywordMatcher({"reasoning": ["证明", "증명", "أثبت"]})
    assert matcher.scan(normalize("请证明它")) == [("reasoning", "证明")]
    assert matcher.scan(normalize("증명하시오")) == [("reasoning", "증명")]
    assert matcher.scan(normalize("أَثْبِتْ ذلك")) == [("reasoning", "أثبت")]


def test_short_arabic_terms_need_whole_words():
    matcher = KeywordMatcher({"agent_sequence": ["ثم"]})
    assert matcher.scan(normalize("افعل هذا ثم ذاك")) == [("agent_sequence", "ثم")]
    assert matcher.scan(normalize("ما ثمن هذا")) == []


def test_full_width_question_marks_count(router):
    decision = router.route(chat("这是什么？为什么？怎么用？有什么区别？"))
    assert "several questions" in decision.signals


def test_earlier_turns_count_with_lower_weight(router):
    follow_up = "And what happens when one region goes offline?"
    alone = router.route(chat(follow_up))
    with_history = router.route(chat(follow_up, history=[
        ("We run a multi-region distributed database with sharding, replication and a "
        "consensus protocol for leader election.")]))
    assert with_history.score > alone.score
    assert any(s.startswith("context (") for s in with_history.signals)
    in_instruction = router.route(chat(follow_up + " We run a multi-region distributed database "
                                       "with sharding, replication and a consensus protocol "
                                       "for leader election."))
    assert in_instruction.score > with_history.score


def test_system_prompt_counts_with_lower_weight(router):
    system = "You are an expert in distributed systems, sharding, replication and consensus."
    plain = router.route(chat("Tell me about it."))
    with_system = router.route(chat("Tell me about it.", system=system))
    assert plain.score < with_system.score < plain.score + 0.2


def test_long_paste_with_trivial_instruction_stays_cheap(router):
    paste = ("The autoscaler adjusts replicas of the deployment based on latency, throughput and "
             "the consistency of the distributed cache across every partition. ") * 60
    decision = router.route(chat(paste + "\n\nSummarize this in one line."))
    assert decision.tier == "SIMPLE"


def test_keyword_stuffing_around_trivial_questions(router):
    assert router.route(chat("prove theorem derive step by step what is 2+2")).tier == "SIMPLE"
    assert router.route(chat("Rigorous step-by-step derivation please: capital of Italy?")
                        ).tier == "SIMPLE"


def test_short_but_hard(router):
    assert router.route(chat("Is P=NP? Sketch why a proof is hard.")).tier == "REASONING"


def test_creative_requests_damp_topic_words(router):
    decision = router.route(chat("Write a short poem about a mathematician's unfinished proof."))
    assert decision.tier == "MEDIUM"


def test_reasoning_needs_formal_evidence(router):
    design = router.route(chat(
        "Design a globally distributed, multi-region event-sourcing platform: sharding, "
        "replication, consensus, failover, exactly-once delivery, schema evolution, and the "
        "trade-offs of each choice at a scale of a million writes per second."))
    assert design.tier == "COMPLEX"


@pytest.mark.parametrize("body", [
    chat("List three fruits.", system="Respond only in YAML."),
    chat("List three fruits.", system="Output must follow this JSON schema."),
    chat("List three fruits, as JSON."),
    chat("Give me three fruits in YAML format."),
    chat("三种水果，以JSON格式输出。"),
])
def test_structured_output_is_noted_but_sets_no_floor(router, body):
    decision = router.route(body)
    assert decision.tier == "SIMPLE", decision.signals
    assert "structured output" in decision.signals
    assert not any("≥" in s for s in decision.signals)


def test_mentioning_json_is_not_asking_for_it(router):
    assert router.route(chat("What is JSON?")).tier == "SIMPLE"
    assert "structured output" not in router.route(chat("What is JSON?")).signals


def test_a_long_input_raises_no_tier(router):
    decision = router.route(chat("Summarize this in one line:\n" + "word " * 90_000))
    assert decision.input_tokens > 100_000
    assert not any(s.startswith("large-context") for s in decision.signals)
    assert decision.tier in ("SIMPLE", "MEDIUM"), decision.signals


def test_confidence_is_a_sigmoid_of_the_margin(router):
    clear = router.route(chat("hi"))
    assert 0.9 < clear.confidence <= 1.0
    for text in ("Explain how DNS works.", "Design a URL shortener.", "Prove Fermat's little theorem."):
        assert 0.5 <= router.route(chat(text)).confidence <= 1.0


def test_ambiguous_requests_can_use_a_default_tier():
    config = RoutingConfig.model_validate({"scoring": {"confidenceThreshold": 1.0},
                                           "classifier": {"ambiguousDefaultTier": "MEDIUM"}})
    decision = Router(config).route(chat("hi"))
    assert decision.tier == "MEDIUM"
    assert "ambiguous -> MEDIUM" in decision.signals


def test_ambiguous_up_moves_to_the_next_tier_near_the_upper_boundary():
    config = RoutingConfig.model_validate({
        "scoring": {"confidenceThreshold": 0.99, "tierBoundaries": {"simpleMedium": 0.0}},
        "classifier": {"ambiguousDefaultTier": "up"}})
    router = Router(config)
    assert router.route(chat("Write a haiku about tea, please, in the style of Basho")).tier in (
        "MEDIUM", "SIMPLE")
    assert router.route(chat("hi")).tier == "SIMPLE"  # far from the boundary: stays


def test_weights_keywords_and_boundaries_are_configurable():
    prompt = chat("Prove that there are infinitely many primes.")
    assert Router().route(prompt).tier == "REASONING"
    no_reasoning = RoutingConfig.model_validate({"scoring": {"weights": {"reasoning": 0,
                                                                         "math": 0}}})
    assert Router(no_reasoning).route(prompt).tier != "REASONING"
    replaced = RoutingConfig.model_validate({"scoring": {"keywords": {"simple": ["banana"]}}})
    assert not fired(Router(replaced).route(chat("hello")), "simple")
    assert fired(Router(replaced).route(chat("banana")), "simple")
    extended = RoutingConfig.model_validate({"scoring": {"extraKeywords": {
        "engineering": ["frobnicator"]}}})
    assert fired(Router(extended).route(chat("Tune the frobnicator.")), "engineering")
    per_language = RoutingConfig.model_validate({"scoring": {"keywords": {"simple": {
        "en": ["banana"]}}}})
    assert fired(Router(per_language).route(chat("hola")), "simple")  # es list kept
    assert not fired(Router(per_language).route(chat("hello")), "simple")
    high = RoutingConfig.model_validate({"scoring": {"tierBoundaries": {
        "simpleMedium": 0.5, "mediumComplex": 0.8, "complexReasoning": 2.0}}})
    assert Router(high).route(chat("Explain how DNS works.")).tier == "SIMPLE"
