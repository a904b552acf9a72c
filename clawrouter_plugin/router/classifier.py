"""The learned tier classifier: features of a request → calibrated p(tier) and the agentic flag.

A multinomial logistic regression over sparse features (trained by ``scripts/train_router.py``
from the labelled corpus; weights in ``data/router_model.json``), plus a binary logistic head
for "is this a multi-step agent task". Inference is plain Python (compiled with mypyc), no
numpy: the weights are packed to stay in a CPU cache (weights.py).

Features (see docs/routing.md, "The learned classifier"):

- the user's ask (:func:`clawrouter_plugin.ask.find_ask`, head and tail of a long one): hashed
  word unigrams and bigrams, and hashed character n-grams (language-agnostic);
- the structure of the request: ask length, pasted material size, code, lists, math notation,
  system-scale numbers, file paths, tools, images, JSON output, tool loop, history size;
- the keyword dimensions of scorer.py (multilingual keyword lists: "reasoning", "design",
  "simple", ...), which carry knowledge the corpus alone is too small to learn; those of the
  ask and those of its context are separate features;
- the system prompt, earlier user turns and pasted material, as word unigrams in their own
  hash namespaces and down-weighted, so they inform the tier but cannot outvote the ask.

Each text namespace is L2-normalised by its length (every occurrence counts
``weight / sqrt(occurrences)``), so a long text does not weigh more than a short one.
"""

from __future__ import annotations

import base64
import json
import math
from array import array
from functools import lru_cache
from importlib import resources
from typing import Any, Final, NamedTuple

from . import ngrams
from .decision import Policy
from .features import RequestView, text_tokens
from .scorer import Scorer
from .settings import KEYWORD_DIMS, TIERS
from .shape import Shape, shape
from .weights import COLUMNS, ZERO, char_sums, key_sums, little, pack_index, row_at, stored

MODEL_FILE = "data/router_model.json"
MODEL_FORMAT = 1
MATERIAL_CHARS = 1500  # pasted material: words of its first characters only
CONTEXT_CHARS = 1500  # system prompt and each earlier turn: words of their first characters
TOP_CONTRIBUTIONS = 8
CONTEXT_CACHE = 256  # featurised system prompts / earlier turns kept (they repeat every turn)

# namespace seeds of the hashed features
ASK_WORD: Final = ngrams.seed("ask-word")
ASK_BIGRAM: Final = ngrams.seed("ask-bigram")
ASK_CHAR: Final = ngrams.seed("ask-char")
SYSTEM_WORD, HISTORY_WORD, MATERIAL_WORD = (ngrams.seed("system-word"), ngrams.seed(
    "history-word"), ngrams.seed("material-word"))
_DENSE_SEED = ngrams.seed("dense")

# ask length in tokens: upper edges of the buckets (one-hot)
ASK_TOKEN_EDGES = (2, 4, 8, 16, 32, 64, 128, 256)
MATERIAL_TOKEN_EDGES = (2000, 20000, 100000)  # pasted material: none / small / large / huge
# Shape fields used as features (value 0..1), with their readable names
SHAPE_FEATURES = (("code_block", "code"), ("multi_step", "list items"),
                  ("enumeration", "many requirements"), ("questions", "several questions"),
                  ("math_notation", "math notation"), ("scale", "system-scale numbers"),
                  ("trivial_math", "small arithmetic"), ("file_paths", "file paths"),
                  ("agent_question", "asks a question"))
_SHAPE_INDEX = tuple(Shape._fields.index(name) for name, _ in SHAPE_FEATURES)


def _ask_length_label(index: int) -> str:
    if index < len(ASK_TOKEN_EDGES):
        return f"ask ≤{ASK_TOKEN_EDGES[index]} tokens"
    return f"ask >{ASK_TOKEN_EDGES[-1]} tokens"


def _material_label(index: int) -> str:
    if index < len(MATERIAL_TOKEN_EDGES):
        return f"pasted material ≤{MATERIAL_TOKEN_EDGES[index] // 1000}k tokens"
    return f"pasted material >{MATERIAL_TOKEN_EDGES[-1] // 1000}k tokens"


# every dense feature's readable name, in a fixed order
DENSE_NAMES: tuple[str, ...] = (
    tuple(_ask_length_label(i) for i in range(len(ASK_TOKEN_EDGES) + 1))
    + tuple(_material_label(i) for i in range(len(MATERIAL_TOKEN_EDGES) + 1))
    + tuple(label for _, label in SHAPE_FEATURES)
    + ("tools", "images", "JSON output", "tool loop", "own system prompt",
       "1 earlier turn", "2 earlier turns", "3+ earlier turns")
    + tuple(f"keywords: {dim.replace('_', ' ')}" for dim in KEYWORD_DIMS)
    + tuple(f"context keywords: {dim.replace('_', ' ')}" for dim in KEYWORD_DIMS)
)
DENSE_BUCKETS = tuple(ngrams.bucket(_DENSE_SEED, name) for name in DENSE_NAMES)
_ASK_LEN0 = 0
_MATERIAL0 = len(ASK_TOKEN_EDGES) + 1
_SHAPE0 = _MATERIAL0 + len(MATERIAL_TOKEN_EDGES) + 1
_FLAGS0 = _SHAPE0 + len(SHAPE_FEATURES)
_KEYWORDS0 = _FLAGS0 + 8
_KEYWORD_INDEX = {dim: _KEYWORDS0 + i for i, dim in enumerate(KEYWORD_DIMS)}
_CONTEXT_KEYWORD_INDEX = {dim: _KEYWORDS0 + len(KEYWORD_DIMS) + i
                          for i, dim in enumerate(KEYWORD_DIMS)}


class Bag(NamedTuple):
    """Hashed n-grams of one text: a bucket per occurrence, each worth ``value``."""

    keys: list[int]
    value: float


EMPTY = Bag([], 0.0)


def _new_bag(keys: list[int], value: float) -> Bag:
    """``Bag(keys, value)`` without NamedTuple's Python-level ``__new__`` (per request)."""
    return tuple.__new__(Bag, (keys, value))


class Features(NamedTuple):
    """One request's features: hashed n-gram bags and the dense (structural) values."""

    words: Bag  # ask word unigrams and bigrams
    chars: Bag  # ask character n-grams: filled for training only (inference scores them
    #             per distinct ask, see Classifier.score)
    system: Bag
    history: Bag
    material: Bag
    dense: list[tuple[int, float]]  # (index into DENSE_NAMES, value)
    ask: str  # the normalised ask
    tokens: list[str]  # its words (for labelling n-grams in explanations)


Contributions = tuple[tuple[str, float], ...]


class Explanation:
    """Why a request got its tier: the features that pushed hardest toward it (``contributions``,
    (label, weight rounded to 2 decimals), largest first) and the same as readable ``signals``
    ("label +0.42"), then ``notes``. Worked out on first use: routing does not need them, the
    log line, the CLI and tests do. Equal when their contents are equal."""

    def __init__(self, classifier: Classifier | None, features: Features | None, column: int,
                 notes: tuple[str, ...]):
        self._classifier = classifier
        self._features = features
        self._column = column
        self._notes = notes
        self._contributions: Contributions | None = None
        self._signals: tuple[str, ...] = ()

    @staticmethod
    def fixed(contributions: Contributions, signals: tuple[str, ...]) -> Explanation:
        """An explanation with these contents (explicit models, tests)."""
        done = Explanation(None, None, 0, ())
        done._contributions, done._signals = contributions, signals
        return done

    def _work_out(self) -> Contributions:
        done = self._contributions
        if done is not None:
            return done
        classifier, features = self._classifier, self._features
        if classifier is None or features is None:
            done, self._signals = (), self._notes
        else:
            done, signals = classifier.explain(features, self._column)
            self._signals = tuple(signals) + self._notes
        # set last: another thread (the log's) that sees it done sees the signals too
        self._contributions = done
        return done

    def noted(self, more: tuple[str, ...]) -> Explanation:
        """The same explanation with ``more`` notes after its signals."""
        if not more:
            return self
        if self._contributions is not None:
            return Explanation.fixed(self._contributions, self._signals + more)
        return Explanation(self._classifier, self._features, self._column, self._notes + more)

    @property
    def contributions(self) -> Contributions:
        """(label, weight toward the tier) of the features that weighed most, largest first."""
        return self._work_out()

    @property
    def signals(self) -> tuple[str, ...]:
        """The contributions as text ("keywords: reasoning +4.64"), then the notes."""
        self._work_out()
        return self._signals

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Explanation):
            return NotImplemented
        return self.contributions == other.contributions and self.signals == other.signals

    def __hash__(self) -> int:
        return hash((self.contributions, self.signals))

    def __repr__(self) -> str:
        return f"Explanation({self.contributions!r}, {self.signals!r})"


class Classification(NamedTuple):
    """The classifier's verdict on one request.

    ``tier`` is the one chosen from ``probabilities`` (SIMPLE, MEDIUM, COMPLEX, REASONING;
    calibrated, summing to 1): by a profile's cost-aware policy, else the most probable.
    ``explanation`` says why (worked out when read; see :class:`Explanation`).
    """

    tier: str
    score: float  # expected tier index: sum of p(tier) * index (0 = SIMPLE .. 3 = REASONING)
    confidence: float  # p(tier)
    agentic_score: float  # p(multi-step agent task)
    agentic: bool
    probabilities: tuple[float, ...]
    explanation: Explanation

    @property
    def signals(self) -> tuple[str, ...]:
        """The explanation's signals (the agentic verdict last, when it is one)."""
        return self.explanation.signals

    @property
    def contributions(self) -> Contributions:
        """The features that pushed hardest toward ``tier``, largest first."""
        return self.explanation.contributions


def _edge_index(value: int, edges: tuple[int, ...]) -> int:
    for index, edge in enumerate(edges):
        if value <= edge:
            return index
    return len(edges)


def _bag(text: str, uni_seed: int, limit: int, weight: float) -> Bag:
    """Word unigrams of the first ``limit`` characters of ``text``, L2-normalised × weight."""
    keys: list[int] = []
    tokens = ngrams.words(ngrams.normalize(text[:limit]))
    if not tokens:
        return EMPTY
    ngrams.add_words(keys, tokens, uni_seed, 0)
    return _new_bag(keys, weight / math.sqrt(len(tokens)))


class Params(NamedTuple):
    """Featurisation settings stored with the weights (training and inference agree)."""

    char_low: int
    char_high: int
    word_weight: float
    char_weight: float
    system_weight: float
    history_weight: float
    material_weight: float
    keyword_weight: float


DEFAULT_PARAMS = Params(2, 4, 1.0, 1.0, 0.3, 0.3, 0.3, 3.0)


def char_value(ask: str, p: Params) -> float:
    """What each character n-gram occurrence of the normalised ``ask`` is worth."""
    span = len(ask) + 2 - p.char_low + 1
    return p.char_weight / math.sqrt(span * (p.char_high - p.char_low + 1)) if span > 0 else 0.0


class Featurizer:
    """Turns a :class:`RequestView` into :class:`Features` (caches context texts)."""

    def __init__(self, params: Params, keywords: Scorer):
        self.p = params
        self.keywords = keywords
        self._system = lru_cache(maxsize=CONTEXT_CACHE)(self._system_bag)
        self._history = lru_cache(maxsize=CONTEXT_CACHE)(self._history_bag)

    def _system_bag(self, text: str) -> Bag:
        return _bag(text, SYSTEM_WORD, CONTEXT_CHARS, self.p.system_weight)

    def _history_bag(self, text: str) -> Bag:
        return _bag(text, HISTORY_WORD, CONTEXT_CHARS, self.p.history_weight)

    def clear_cache(self) -> None:
        """Forget cached context features (benchmarks, tests)."""
        self._system.cache_clear()
        self._history.cache_clear()
        self.keywords.clear_cache()

    def features(self, view: RequestView, chars: bool = False) -> Features:
        """The features of one request (the character n-gram bag only when ``chars``)."""
        p = self.p
        ask = ngrams.normalize(view.instruction)
        words = char_bag = EMPTY
        tokens = ngrams.words(ask)
        if tokens:
            keys: list[int] = []
            ngrams.add_words(keys, tokens, ASK_WORD, ASK_BIGRAM)
            words = _new_bag(keys, p.word_weight / math.sqrt(2 * len(tokens) - 1))
        if chars and ask:
            keys = []
            ngrams.add_chars(keys, ask, p.char_low, p.char_high, ASK_CHAR)
            char_bag = _new_bag(keys, char_value(ask, p))
        system = self._system(view.system) if view.system else EMPTY
        history = EMPTY
        if view.history:
            history = self._history("\n".join(view.history))
        material = EMPTY
        if view.material:
            material = _bag(view.material, MATERIAL_WORD, MATERIAL_CHARS, p.material_weight)
        dense = _dense(view, ask)
        in_ask, in_context = self.keywords.values(view)
        for dim, value in in_ask.items():
            dense.append((_KEYWORD_INDEX[dim], value * p.keyword_weight))
        for dim, value in in_context.items():
            dense.append((_CONTEXT_KEYWORD_INDEX[dim], value * p.keyword_weight))
        return tuple.__new__(Features, (  # skips NamedTuple's Python-level __new__
            words, char_bag, system, history, material, dense, ask, tokens))

    def flat(self, view: RequestView) -> dict[int, float]:
        """Every feature of one request in one sparse vector (bucket → value), for training."""
        f = self.features(view, chars=True)
        out: dict[int, float] = {}
        for bag in (f.words, f.chars, f.system, f.history, f.material):
            for key in bag.keys:
                out[key] = out.get(key, 0.0) + bag.value
        for index, value in f.dense:
            key = DENSE_BUCKETS[index]
            out[key] = out.get(key, 0.0) + value
        return out


def _dense(view: RequestView, ask: str) -> list[tuple[int, float]]:
    """The structural features that are not zero."""
    dense = [(_ASK_LEN0 + _edge_index(text_tokens(ask), ASK_TOKEN_EDGES), 1.0)]
    if view.material_tokens:
        dense.append((_MATERIAL0 + _edge_index(view.material_tokens, MATERIAL_TOKEN_EDGES), 1.0))
    form = shape(view)
    for offset, field in enumerate(_SHAPE_INDEX):
        value = form[field]
        if value > 0.0:
            dense.append((_SHAPE0 + offset, value))
    flags = (view.has_tools, view.images > 0, view.structured, view.tool_loop, bool(view.system))
    for offset, flag in enumerate(flags):
        if flag:
            dense.append((_FLAGS0 + offset, 1.0))
    turns = len(view.history)
    if turns:
        dense.append((_FLAGS0 + len(flags) + min(turns, 3) - 1, 1.0))
    return dense


class Model(NamedTuple):
    """Weights of the classifier as read from the model file."""

    params: Params
    buckets: list[int]  # the buckets that have weights, ascending
    lookup: bytes  # where each bucket's row is (weights.py)
    rows: bytes  # the quantised weights of ``buckets``, ROW bytes each (weights.py)
    scales: tuple[float, float, float, float, float]  # weight = (stored - 32768) * scale
    bias: tuple[float, float, float, float, float]
    temperature: float  # tier logits are divided by this (calibration)
    agentic_threshold: float


def bucket_weights(model: Model, key: int) -> list[float]:
    """The COLUMNS weights of bucket ``key`` (zeros for a bucket without weights)."""
    at = row_at(model.lookup, key)
    return [float(stored(model.rows, at, c) - ZERO) * model.scales[c] for c in range(COLUMNS)]


def encode_model(params: Params, buckets: list[int], weights: list[list[float]],
                 bias: list[float], temperature: float, agentic_threshold: float,
                 meta: dict[str, Any]) -> str:
    """The model file's text (deterministic): weights quantised to int16 per column."""
    scales = []
    for column in range(COLUMNS):
        peak = max((abs(row[column]) for row in weights), default=0.0)
        scales.append(peak / 32767 if peak > 0 else 1.0)
    quantised = array("h", [int(round(row[c] / scales[c])) for row in weights
                            for c in range(COLUMNS)])
    ids = array("I", buckets)
    if ids.itemsize != 4 or quantised.itemsize != 2:
        raise RuntimeError("unexpected C integer sizes")
    document = {
        "format": MODEL_FORMAT, "tiers": list(TIERS), "bucket_bits": ngrams.BUCKET_BITS,
        "params": params._asdict(), "dense": list(DENSE_NAMES),
        "temperature": round(temperature, 6), "agentic_threshold": round(agentic_threshold, 6),
        "bias": [round(b, 6) for b in bias], "scales": [repr(s) for s in scales],
        "buckets": base64.b64encode(little(ids)).decode("ascii"),
        "weights": base64.b64encode(little(quantised)).decode("ascii"),
        "meta": meta,
    }
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def decode_model(text: str) -> Model:
    """A :class:`Model` from the model file's text; ValueError when it does not fit this code."""
    doc = json.loads(text)
    if doc.get("format") != MODEL_FORMAT or doc.get("tiers") != list(TIERS):
        raise ValueError("router model file: unsupported format")
    if doc["bucket_bits"] != ngrams.BUCKET_BITS or doc["dense"] != list(DENSE_NAMES):
        raise ValueError("router model file: trained with other features than this code reads")
    ids = array("I")
    ids.frombytes(base64.b64decode(doc["buckets"]))
    quantised = array("h")
    quantised.frombytes(base64.b64decode(doc["weights"]))
    if array("H", [1]).tobytes()[0] != 1:
        ids.byteswap()
        quantised.byteswap()
    if len(quantised) != len(ids) * COLUMNS:
        raise ValueError("router model file: weights do not match the buckets")
    buckets = ids.tolist()
    if any(a >= b for a, b in zip(buckets, buckets[1:])) or (buckets and (
            buckets[-1] >= ngrams.BUCKETS)):
        raise ValueError("router model file: buckets not ascending or out of range")
    rows = bytearray(little(quantised))
    rows[1::2] = rows[1::2].translate(_SIGN_FLIP)  # two's complement -> offset by ZERO
    s = [float(x) for x in doc["scales"]]
    b = [float(x) for x in doc["bias"]]
    return Model(Params(**doc["params"]), buckets, pack_index(buckets), bytes(rows),
                 (s[0], s[1], s[2], s[3], s[4]), (b[0], b[1], b[2], b[3], b[4]),
                 float(doc["temperature"]), float(doc["agentic_threshold"]))


_SIGN_FLIP = bytes(b ^ 0x80 for b in range(256))


@lru_cache(maxsize=1)
def packaged_model() -> Model:
    """The model shipped with the package (read once per process)."""
    text = resources.files("clawrouter_plugin").joinpath(MODEL_FILE).read_text("utf-8")
    return decode_model(text)


class Classifier:
    """Scores requests with the learned model; build once per Router."""

    def __init__(self, keywords: Scorer, model: Model | None = None):
        self.model = model or packaged_model()
        self.featurizer = Featurizer(self.model.params, keywords)
        # an agent's tool loop routes the same ask again on every call
        self._char_scores = lru_cache(maxsize=CONTEXT_CACHE)(self._chars)
        # the structural features' weights (few, used on every request), looked up once
        self._dense_stored = [[stored(self.model.rows, row_at(self.model.lookup, key), c) - ZERO
                               for c in range(COLUMNS)] for key in DENSE_BUCKETS]
        self._dense = [(w[0], w[1], w[2], w[3], w[4])
                       for w in (bucket_weights(self.model, key) for key in DENSE_BUCKETS)]

    def clear_cache(self) -> None:
        """Forget cached context and ask features (benchmarks, tests)."""
        self.featurizer.clear_cache()
        self._char_scores.cache_clear()

    def _chars(self, ask: str) -> tuple[float, float, float, float, float]:
        """The summed weights of the ask's character n-grams (not yet times their value)."""
        if not ask:
            return 0.0, 0.0, 0.0, 0.0, 0.0
        m, p = self.model, self.model.params
        return self._scaled(char_sums(m.lookup, m.rows, ask, p.char_low, p.char_high, ASK_CHAR))

    def _scaled(self, sums: list[int]) -> tuple[float, float, float, float, float]:
        """Weight sums per column from :func:`weights.key_sums`'s integers."""
        scales, zero = self.model.scales, ZERO * sums[5]
        return (float(sums[0] - zero) * scales[0], float(sums[1] - zero) * scales[1],
                float(sums[2] - zero) * scales[2], float(sums[3] - zero) * scales[3],
                float(sums[4] - zero) * scales[4])

    def logits(self, f: Features) -> list[float]:
        """Raw scores: four tier logits (before calibration), then the agentic logit."""
        return self._scores(f, None)

    def score(self, f: Features) -> list[float]:
        """The logits (COLUMNS values), then what each text group added to each of them
        (COLUMNS values per group: ask words, ask characters, system prompt, earlier turns,
        pasted material)."""
        added: list[float] = []
        return self._scores(f, added) + added

    def _scores(self, f: Features, added: list[float] | None) -> list[float]:
        """The logits; what each text group added goes to ``added`` when it is a list (only
        explanations read it: routing does not build it)."""
        m = self.model
        z0, z1, z2, z3, z4 = m.bias
        for group, bag in enumerate((f.words, EMPTY, f.system, f.history, f.material)):
            if group == 1:  # the ask's characters: scored once per distinct ask
                a0, a1, a2, a3, a4 = self._char_scores(f.ask)
                value = char_value(f.ask, m.params)
            elif bag.keys:
                a0, a1, a2, a3, a4 = self._scaled(key_sums(m.lookup, m.rows, bag.keys))
                value = bag.value
            else:  # no such text (most requests have no system prompt, history, material)
                a0 = a1 = a2 = a3 = a4 = value = 0.0
            a0, a1, a2, a3, a4 = value * a0, value * a1, value * a2, value * a3, value * a4
            z0, z1, z2, z3, z4 = z0 + a0, z1 + a1, z2 + a2, z3 + a3, z4 + a4
            if added is not None:
                added += (a0, a1, a2, a3, a4)
        dense = self._dense
        for index, weight in f.dense:
            w0, w1, w2, w3, w4 = dense[index]
            z0, z1, z2, z3 = z0 + weight * w0, z1 + weight * w1, z2 + weight * w2, z3 + weight * w3
            z4 += weight * w4
        return [z0, z1, z2, z3, z4]

    def classify(self, view: RequestView, policy: Policy | None = None) -> Classification:
        """Calibrated tier probabilities, the chosen tier and the agentic verdict. The tier is
        the one ``policy`` chooses from the probabilities (cost-aware), else the most probable."""
        f = self.featurizer.features(view)
        z = self.logits(f)
        t = self.model.temperature
        probabilities = softmax([z[0] / t, z[1] / t, z[2] / t, z[3] / t])
        if policy is not None:
            best = policy.choose(probabilities)
        else:
            best = 0
            for c in range(1, len(TIERS)):
                if probabilities[c] > probabilities[best]:
                    best = c
        agentic_score = 1.0 / (1.0 + math.exp(-z[4]))
        agentic = agentic_score >= self.model.agentic_threshold
        notes = (f"agentic-task ({agentic_score:.2f})",) if agentic else ()
        score = probabilities[1] + 2.0 * probabilities[2] + 3.0 * probabilities[3]
        return tuple.__new__(Classification, (  # skips NamedTuple's Python-level __new__
            TIERS[best], score, probabilities[best], agentic_score, agentic,
            tuple(probabilities), Explanation(self, f, best, notes)))

    def explain(self, f: Features,
                column: int) -> tuple[tuple[tuple[str, float], ...], list[str]]:
        """The features that pushed hardest toward tier ``column`` (weight × value, largest
        first) as (label, weight rounded to 2 decimals), and as signals ("label +0.42"): word
        n-grams of the ask by name, structural features by name, and the ask's character
        n-grams, the system prompt, earlier turns and pasted material each as one total."""
        m = self.model
        scored = self.score(f)
        lookup, rows, scale = m.lookup, m.rows, m.scales[column]
        bag = f.words
        words: dict[int, float] = {}  # an n-gram seen n times counts n times
        first: dict[int, int] = {}  # where in bag.keys each n-gram first occurs
        for position, key in enumerate(bag.keys):
            weight = stored(rows, row_at(lookup, key), column) - ZERO
            if weight != 0:
                total = words.get(key)
                if total is None:
                    first[key] = position
                    total = 0.0
                words[key] = total + bag.value * float(weight) * scale
        offered = [(value, 0, key) for key, value in words.items()]
        dense = self._dense_stored
        for at, value in f.dense:
            weight = dense[at][column]
            if weight != 0:
                offered.append((value * float(weight) * scale, 2, at))
        for group in (1, 3, 4, 5):  # characters, system prompt, earlier turns, material
            total = scored[COLUMNS * (group if group == 1 else group - 1) + COLUMNS + column]
            if total != 0.0:
                offered.append((total, group, 0))
        offered.sort(reverse=True)
        out = []
        signals = []
        for value, group, key in offered[:TOP_CONTRIBUTIONS]:
            if group == 0:
                label = f"ngram '{word_label(f.tokens, first[key])}'"
            elif group == 2:
                label = DENSE_NAMES[key]
            else:
                label = _GROUP_NAMES[group]
            text, rounded = two_decimals(value)
            out.append((label, rounded))
            signals.append(f"{label} {text}" if text[0] == "-" else f"{label} +{text}")
        return tuple(out), signals


def two_decimals(value: float) -> tuple[str, float]:
    """``f"{value:.2f}"`` and ``round(value, 2)`` (which is that text as a float), without
    the general float formatting, which dominated the cost of explaining a decision: the
    integer nearest to ``|value| * 100`` is exact unless the product lies within 1e-6 of a
    half (where the float product's rounding could matter); those cases, very large values
    and non-finite ones take the general path."""
    scaled = value * 100.0
    size = -scaled if scaled < 0.0 else scaled
    if size < 1e12:
        whole = int(size)
        fraction = size - whole
        if not 0.499999 < fraction < 0.500001:
            cents = whole + 1 if fraction > 0.5 else whole
            if cents == 0:
                negative = math.copysign(1.0, value) < 0.0
                return ("-0.00", -0.0) if negative else ("0.00", 0.0)
            units = cents // 100
            rest = cents - 100 * units
            text = str(units) + ("." if rest >= 10 else ".0") + str(rest)
            if scaled < 0.0:
                return "-" + text, -cents / 100
            return text, cents / 100
    text = f"{value:.2f}"
    return text, float(text)


_GROUP_NAMES = ("", "ask characters", "", "system prompt", "earlier turns", "pasted material")


def word_label(tokens: list[str], position: int) -> str:
    """The word or word pair behind ``position`` in the bucket list :func:`ngrams.add_words`
    makes of ``tokens`` with bigrams: the first word's unigram, then for each further word
    its unigram and its bigram with the word before."""
    if position % 2 == 1 or position == 0:
        return tokens[(position + 1) // 2]
    return tokens[position // 2 - 1] + " " + tokens[position // 2]


def softmax(z: list[float]) -> list[float]:
    """Probabilities from logits (numerically stable)."""
    top = max(z)
    exps = [math.exp(v - top) for v in z]
    total = sum(exps)
    return [e / total for e in exps]
