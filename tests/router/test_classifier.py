"""The learned classifier: features, the shipped model, probabilities, explanations, keyword
dimensions (its multilingual features) and the cost-aware tier choice."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from clawrouter_plugin.router import TIERS, Router, RoutingConfig, ngrams
from clawrouter_plugin.router.classifier import (
    ASK_CHAR,
    ASK_WORD,
    COLUMNS,
    DENSE_NAMES,
    MODEL_FILE,
    TOP_CONTRIBUTIONS,
    Classifier,
    bucket_weights,
    decode_model,
    encode_model,
    packaged_model,
    two_decimals,
)
from clawrouter_plugin.router.decision import Policy
from clawrouter_plugin.router.features import read_request
from clawrouter_plugin.router.keywords import KeywordMatcher, normalize
from clawrouter_plugin.router.weights import ROW, char_sums, key_sums, row_at, stored

from .conftest import chat

MODEL_PATH = Path(__file__).resolve().parents[2] / "clawrouter_plugin" / MODEL_FILE


def view(body: dict):
    return read_request(body, 0, 3)


def test_hashes_are_stable_fnv1a():
    # FNV-1a 32-bit of "a" and "foobar" (published test vectors): weights are indexed by it
    assert ngrams.fold(2166136261, "a") == 0xE40C292C
    assert ngrams.fold(2166136261, "foobar") == 0xBF9CF968
    assert 0 <= ngrams.bucket(ngrams.seed("x"), "hello") < ngrams.BUCKETS


def test_normalisation_and_char_ngrams():
    assert ngrams.normalize("  Design  a URL shortener\nfor 1B URLs ") == (
        "design a url shortener for 0b urls")
    grams: list[int] = []
    ngrams.add_chars(grams, "ab", 2, 3, 7)  # " ab " → " a", "ab", "b ", " ab", "ab "
    assert grams == [ngrams.bucket(7, gram) for gram in (" a", " ab", "ab", "ab ", "b ")]


def test_cjk_text_gets_character_features(router):
    features = router.classifier.featurizer.features(view(chat("请证明根号二是无理数")))
    chars = router.classifier.featurizer.features(view(chat("请证明根号二是无理数")), chars=True).chars
    assert len(chars.keys) >= 20 and features.words.keys  # \w+: the run is one word


def test_the_shipped_model_fits_the_code_and_the_size_limit():
    text = MODEL_PATH.read_text("utf-8")
    assert len(text.encode()) <= 2_000_000
    document = json.loads(text)
    assert document["dense"] == list(DENSE_NAMES) and document["tiers"] == list(TIERS)
    model = packaged_model()
    assert len(model.buckets) > 10_000 and model.buckets == sorted(set(model.buckets))
    assert len(model.rows) == len(model.buckets) * COLUMNS * 2
    assert len(model.lookup) == ngrams.BUCKETS // 4  # 8 bytes per 32 buckets
    assert any(bucket_weights(model, model.buckets[0]))
    used = set(model.buckets)
    unused = next(b for b in range(ngrams.BUCKETS) if b not in used)
    assert bucket_weights(model, unused) == [0.0] * COLUMNS
    assert model.temperature > 0 and 0 < model.agentic_threshold < 1


def test_model_file_round_trip_is_deterministic():
    model = packaged_model()
    buckets = model.buckets[:50]
    weights = [bucket_weights(model, b) for b in buckets]
    args = (model.params, buckets, weights, list(model.bias), model.temperature,
            model.agentic_threshold, {"note": "test"})
    first = encode_model(*args)
    assert encode_model(*args) == first
    again = decode_model(first)
    assert again.buckets == buckets
    for b in buckets:
        for expected, got in zip(bucket_weights(model, b), bucket_weights(again, b), strict=True):
            assert got == pytest.approx(expected, abs=2e-4 * max(1.0, abs(expected)))


def test_packed_weights_find_every_bucket_and_only_those():
    model = packaged_model()
    used = set(model.buckets)
    for n, key in enumerate(model.buckets):
        assert row_at(model.lookup, key) == ROW * n
    # every bucket of a few whole blocks, and the last one, with and without weights
    for key in [*range(0, 4096), *range(ngrams.BUCKETS - 64, ngrams.BUCKETS)]:
        assert (row_at(model.lookup, key) >= 0) == (key in used)


@pytest.mark.parametrize("text", [
    "design a url shortener for 0b urls", "a", "", "请证明根号二是无理数", "ünïcödé straße",
    "emoji 🙂 outside the bmp 𝔸", "lone \ud800 surrogate", "مرحبا كيف حالك", "x" * 3000])
def test_fused_scans_sum_the_buckets_the_training_features_list(text):
    """char_sums hashes and sums in one pass what add_chars lists bucket by bucket."""
    model = packaged_model()
    keys: list[int] = []
    ngrams.add_chars(keys, text, 2, 4, ASK_CHAR)
    assert len(keys) == sum(max(0, len(text) + 2 - n + 1) for n in (2, 3, 4))  # " text "
    expected = [0] * (COLUMNS + 1)
    for key in keys:
        at = row_at(model.lookup, key)
        if at >= 0:
            for column in range(COLUMNS):
                expected[column] += stored(model.rows, at, column)
            expected[COLUMNS] += 1
    assert char_sums(model.lookup, model.rows, text, 2, 4, ASK_CHAR) == expected
    assert key_sums(model.lookup, model.rows, keys) == expected
    assert expected[COLUMNS] > 0 or not text.strip()


@pytest.mark.parametrize("value", [
    0.125, 0.005, 1.005, -0.005, 2.675, -2.675, 0.0, -0.0, 1e-9, -1e-9, 0.015, -0.015, 0.995,
    -0.995, 9.995, 99.99, 0.5, -0.5, -0.1, 5e-324, 123456.785, 1e300, float("inf"), float("nan")])
def test_two_decimals_is_the_formatted_and_the_rounded_value(value):
    text, rounded = two_decimals(value)
    assert text == f"{value:.2f}"
    assert repr(rounded) == repr(round(value, 2))


def test_two_decimals_agrees_with_python_on_many_values():
    rng = random.Random(13)
    for _ in range(20_000):
        value = rng.choice((rng.uniform(-20, 20), rng.randint(-9999, 9999) / 1000 + 5e-4,
                            (rng.randint(-20000, 20000) + 0.5) / 100))
        assert two_decimals(value) == (f"{value:.2f}", round(value, 2)), value


def test_a_model_for_other_features_is_refused():
    document = json.loads(MODEL_PATH.read_text("utf-8"))
    document["dense"] = document["dense"][:-1]
    with pytest.raises(ValueError, match="other features"):
        decode_model(json.dumps(document))


def test_inference_scores_the_vector_training_sees(router):
    """The fast path (bags summed per text) gives the logits of the flat training vector."""
    model = router.classifier.model
    for body in (chat("Prove that the the the sum of two odd numbers is even.",
                      system="Answer briefly.", history=["earlier turn about sharding"]),
                 chat("hi"), chat("设计一个短链接服务")):
        request = view(body)
        fast = router.classifier.logits(router.classifier.featurizer.features(request))
        slow = list(router.classifier.model.bias)
        for key, value in router.classifier.featurizer.flat(request).items():
            for c, weight in enumerate(bucket_weights(model, key)):
                slow[c] += value * weight
        assert fast == pytest.approx(slow, abs=1e-9)


@pytest.mark.parametrize("text", ["hi", "Prove that √2 is irrational.", "设计一个短链接服务",
                                  "Write a Python function that reverses a list."])
def test_probabilities_are_calibrated_softmax_outputs(router, text):
    verdict = router.classifier.classify(view(chat(text)))
    assert len(verdict.probabilities) == 4
    assert math.isclose(sum(verdict.probabilities), 1.0, rel_tol=1e-9)
    assert verdict.confidence == verdict.probabilities[TIERS.index(verdict.tier)]
    assert verdict.confidence == max(verdict.probabilities)  # no policy: the most probable
    expected = sum(i * p for i, p in enumerate(verdict.probabilities))
    assert verdict.score == pytest.approx(expected)
    assert 0.0 <= verdict.agentic_score <= 1.0


def test_contributions_explain_the_chosen_tier(router):
    verdict = router.classifier.classify(view(chat("Prove that there are infinitely many "
                                                   "primes.")))
    assert verdict.tier == "REASONING"
    contributions = verdict.contributions
    assert 0 < len(contributions) <= TOP_CONTRIBUTIONS
    weights = [w for _, w in contributions]
    assert weights == sorted(weights, reverse=True) and weights[0] > 0
    labels = [label for label, _ in contributions]
    assert "keywords: reasoning" in labels
    assert all("collision" not in label for label in labels)
    # signals show the same, readably: "keywords: reasoning +4.64"
    assert verdict.signals[:len(contributions)] == tuple(
        f"{label} {weight:+.2f}" for label, weight in contributions)
    decision = router.route(chat("Prove that there are infinitely many primes."))
    assert decision.signals[0] == verdict.signals[0]


def test_a_repeated_ngram_contributes_once_per_occurrence(router):
    classifier = router.classifier
    request = view(chat("thanks thanks"))
    verdict = classifier.classify(request)
    shown = dict(verdict.contributions)
    assert "ngram 'thanks'" in shown, shown
    features = classifier.featurizer.features(request)
    weights = bucket_weights(classifier.model, ngrams.bucket(ASK_WORD, "thanks"))
    weight = weights[TIERS.index(verdict.tier)]
    assert shown["ngram 'thanks'"] == round(2 * features.words.value * weight, 2)


def test_context_is_featurised_separately_and_shown_as_one_total(router):
    system = ("You are a senior distributed-systems architect. Analyze every design for "
              "scalability, consistency, sharding and failure modes step by step.")
    features = router.classifier.featurizer.features(view(chat("hi", system=system)))
    assert features.system.keys and not set(features.system.keys) & set(features.words.keys)
    verdict = router.classifier.classify(view(chat("ok, thanks", system=system,
                                                   history=["Design a payment system."])))
    labels = {label for label, _ in verdict.contributions}
    assert labels & {"system prompt", "earlier turns"} or len(labels) == TOP_CONTRIBUTIONS


@pytest.mark.parametrize("ask", ["hi", "ok, thanks", "what's 2+2?"])
def test_context_informs_but_does_not_outvote_a_trivial_ask(router, ask):
    system = ("You are an expert mathematician and software architect. Prove every claim, "
              "derive formulas step by step, analyze complexity and design for scale.")
    history = ["Design a globally distributed database with multi-region consensus.",
               "Now prove that the protocol is linearizable."]
    decision = router.route(chat(ask, system=system, history=history))
    assert decision.tier == "SIMPLE", decision.signals


def test_an_acknowledgement_after_a_hard_turn_stays_simple(router):
    hard = ("Design a distributed rate limiter for a multi-region API gateway: compare token "
            "bucket and sliding window, explain consistency trade-offs and failure modes.")
    body = {"messages": [{"role": "user", "content": hard}, {"role": "assistant", "content": "…"},
                         {"role": "user", "content": "thanks!"},
                         {"role": "assistant", "content": "…"}, {"role": "user", "content": "ok"}]}
    decision = router.route(body)
    assert decision.tier == "SIMPLE", decision.signals


def test_a_classifier_uses_the_policy_it_is_given(router):
    request = view(chat("Explain how DNS resolution works, with the caching layers."))
    plain = router.classifier.classify(request)
    cautious = router.classifier.classify(request, Policy((0.0, 0.0, 0.0, 0.0), 100.0, 0.0))
    assert cautious.tier == "REASONING"  # every tier costs the same, under-routing is dear
    assert cautious.probabilities == plain.probabilities
    assert cautious.confidence == plain.probabilities[3]


# --- the cost-aware choice ------------------------------------------------------------------

def test_policy_picks_the_cheapest_tier_when_sure():
    policy = Policy((0.1, 0.2, 0.5, 0.6), under=1.0, over=0.1)
    assert policy.choose([0.97, 0.01, 0.01, 0.01]) == 0
    assert policy.choose([0.01, 0.01, 0.01, 0.97]) == 3


def test_under_routing_costs_more_than_over_routing():
    probabilities = [0.45, 0.55, 0.0, 0.0]
    assert Policy((0.1, 0.2, 0.5, 0.6), under=1.0, over=0.1).choose(probabilities) == 1
    # the same doubt, but a SIMPLE answer that is too weak costs little: stay cheap
    assert Policy((0.1, 0.2, 0.5, 0.6), under=0.1, over=0.1).choose([0.6, 0.4, 0, 0]) == 0
    # a little doubt about REASONING already moves a cautious profile up
    assert Policy((0.1, 0.2, 0.5, 0.6), under=5.0, over=0.1).choose([0.0, 0.85, 0.0, 0.15]) == 3


def test_profiles_take_more_or_less_risk(router):
    s = router.settings
    assert s.penalties["eco"][0] < s.penalties["auto"][0] <= s.penalties["premium"][0]
    for profile, (under, over) in s.penalties.items():
        assert under > over, profile  # under-routing is penalised more


def test_penalties_are_configurable():
    body = chat("Explain how DNS resolution works, with the caching layers.")
    config = RoutingConfig.model_validate({"penalties": {"auto": {"underRouting": 1000}}})
    assert Router(config).route(body).tier == "REASONING"
    assert Router(config).settings.penalties["eco"] == Router().settings.penalties["eco"]
    with pytest.raises(ValueError, match="underRouting"):
        RoutingConfig.model_validate({"penalties": {"auto": {"underRouting": -1}}})


# --- keyword dimensions (features of the model) ---------------------------------------------

@pytest.mark.parametrize(("dimension", "text"), [
    ("reasoning", "Prove that the sum of two odd numbers is even."),
    ("reasoning", "请证明这个结论。"),
    ("reasoning", "Докажите, что это верно."),
    ("math", "Compute the integral of x over the interval."),
    ("algorithmic", "What is the time complexity of heapsort?"),
    ("engineering", "分布式系统的一致性是什么？"),
    ("design", "Design a parking lot."),
    ("simple", "مرحبا"),
    ("creative", "Write a poem about rain."),
    ("explain", "REST와 GraphQL의 차이점을 설명해 주세요."),
    ("agent_action", "Deploy it."),
    ("agent_verify", "Make sure it works."),
])
def test_each_keyword_dimension_is_a_feature(router, dimension, text):
    keywords = router.classifier.featurizer.keywords
    assert dimension in keywords.values(view(chat(text)))[0]
    features = router.classifier.featurizer.features(view(chat(text)))
    names = {DENSE_NAMES[index] for index, _ in features.dense}
    assert f"keywords: {dimension.replace('_', ' ')}" in names


@pytest.mark.parametrize(("text", "trap"), [
    ("What's the default port for PostgreSQL?", "def"),
    ("Which text editor do you like?", "edit"),
    ("Is this jacket waterproof?", "proof"),
    ("Is the complete list ready?", "let"),
])
def test_keywords_match_whole_words_only(router, text, trap):
    found = router.classifier.featurizer.keywords.matcher.scan(normalize(text))
    assert trap not in {word for _, word in found}


def test_each_distinct_keyword_counts_once(router):
    keywords = router.classifier.featurizer.keywords
    assert keywords.values(view(chat("Prove it."))) == keywords.values(
        view(chat("Prove prove prove prove it.")))


def test_keywords_outside_the_ask_are_separate_features_and_count_less(router):
    keywords = router.classifier.featurizer.keywords
    words = "We run a multi-region distributed database with sharding and replication."
    in_ask, context = keywords.values(view(chat("And then? " + words)))
    assert in_ask["engineering"] > 0 and not context
    ask_h, in_history = keywords.values(view(chat("And then?", history=[words])))
    ask_s, in_system = keywords.values(view(chat("And then?", system=words)))
    assert "engineering" not in ask_h and "engineering" not in ask_s
    assert in_ask["engineering"] > in_history["engineering"] > in_system["engineering"] > 0
    features = router.classifier.featurizer.features(view(chat("And then?", history=[words])))
    names = {DENSE_NAMES[index] for index, _ in features.dense}
    assert "context keywords: engineering" in names and "keywords: engineering" not in names


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


def test_keyword_lists_are_configurable():
    def values(config: dict, text: str) -> dict:
        router = Router(RoutingConfig.model_validate(config))
        return router.classifier.featurizer.keywords.values(view(chat(text)))[0]

    replaced = {"scoring": {"keywords": {"simple": ["banana"]}}}
    assert "simple" not in values(replaced, "hello") and "simple" in values(replaced, "banana")
    extended = {"scoring": {"extraKeywords": {"engineering": ["frobnicator"]}}}
    assert "engineering" in values(extended, "Tune the frobnicator.")


def test_a_classifier_can_be_built_from_a_model(router):
    classifier = Classifier(router.classifier.featurizer.keywords, packaged_model())
    request = view(chat("hello there"))
    assert classifier.classify(request) == router.classifier.classify(request)


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


def test_fast_text_paths_give_what_the_general_ones_give():
    """ASCII and Latin-1 text take table-driven shortcuts (normalising, splitting words,
    skipping scans for other scripts); on any text they must give what the general regex
    paths give, or the features would depend on which path a text took."""
    import re

    from clawrouter_plugin.router import keywords

    word, digit = re.compile(r"\w+"), re.compile(r"[1-9]")
    alphabet = ([chr(c) for c in range(256)] + list("  \n\n中ü̈ßİ²³√Ωاً")
                + ["\ud800", "\U0001d538", "\u3000", "\u2028"])
    rng = random.Random(13)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(24)))
        assert ngrams.words(text) == word.findall(text), repr(text)
        assert ngrams.normalize(text) == " ".join(digit.sub("0", text.lower()).split()), repr(text)
        if not text.isascii():
            spaced = keywords._SPACED.sub(" ", text.lower())
            assert normalize(text) == " " + keywords._DROPPED.sub("", spaced) + " ", repr(text)
        codes, width = ngrams.code_points(text)
        assert [ngrams.code_at(codes, width, i) for i in range(len(text) + 2)] == [
            ord(ch) for ch in " " + text + " "], repr(text)
        assert ngrams.latin1(text) == all(ord(ch) < 256 for ch in text)
