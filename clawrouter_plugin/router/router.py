"""The router: profile → tier table, classifier → tier, pin and cap → final tier, table → model
chain. What a request needs from a model (context window, tools, images, JSON output) filters
the chain (tables.py); it never changes the tier."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

from ..catalog import Catalog, load_catalog
from ..errors import ModelNotFound
from .classifier import Classifier, Contributions, Explanation
from .config import RoutingConfig
from .decision import policies
from .features import RequestView, read_request
from .output_cap import OutputCaps
from .scorer import Scorer
from .settings import TIERS
from .tables import ChainBuilder, suggest

PROFILES = ("auto", "eco", "premium", "free", "agentic")
_NO_EXPLANATION = Explanation.fixed((), ())
_RANK = {tier: index for index, tier in enumerate(TIERS)}


def tier_rank(tier: str) -> int:
    """Position of ``tier`` in TIERS (SIMPLE=0 … REASONING=3); "DIRECT" (or unknown) → -1."""
    return _RANK.get(tier, -1)


class RoutingDecision(NamedTuple):
    """Where a request goes and why (immutable; a NamedTuple because one is built on every
    request, several times faster than a frozen dataclass)."""

    profile: str  # what was asked: auto, eco, premium, free, agentic — or "direct"
    table: str  # tier table used: auto, eco, premium, free, agentic or direct
    tier: str  # one of TIERS, or "DIRECT" for an explicit model
    model: str  # first model to try (catalog id)
    fallbacks: tuple[str, ...]  # the rest of the chain, in order, already filtered
    confidence: float
    agentic: bool  # the agentic tier table was used
    input_tokens: int  # estimate for the whole request
    output_tokens: int  # the output cap: the request's, at most the tier's ceiling (output_cap.py)
    cost_estimate: float  # USD the upstream asks for `model` at those token counts
    baseline_cost: float  # the same tokens at the baseline (Opus) prices
    savings: float  # 0..1 = (baseline - cost) / baseline; 0 for premium
    score: float
    # why: the classifier's features that weighed most and what else fired, worked out when
    # read (``signals``, ``contributions``): routing itself does not need them
    explanation: Explanation = Explanation.fixed((), ())

    @property
    def signals(self) -> tuple[str, ...]:
        """What fired, e.g. "keywords: reasoning +4.64", "code +0.80", "tools"."""
        return self.explanation.signals

    @property
    def contributions(self) -> Contributions:
        """The classifier's features that weighed most, (readable label, weight toward the
        chosen tier), largest first; empty without a classification (explicit models, free)."""
        return self.explanation.contributions

    @property
    def chain(self) -> tuple[str, ...]:
        """Every model to try, in order: ``(model, *fallbacks)``."""
        return (self.model, *self.fallbacks)

    def to_dict(self) -> dict:
        """A JSON-friendly dict (tuples become lists)."""
        data = self._asdict()
        del data["explanation"]
        data["fallbacks"] = list(self.fallbacks)
        data["signals"] = list(self.signals)
        data["contributions"] = [list(pair) for pair in self.contributions]
        return data


class Router:
    """Routes chat-completions bodies. Build once (the model and keyword tables load here), call
    often."""

    def __init__(self, config: RoutingConfig | None = None, catalog: Catalog | None = None,
                 caps: OutputCaps | None = None):
        self.config = config or RoutingConfig()
        self.caps = caps or OutputCaps()
        self.settings = self.config.settings()
        self.catalog = catalog or load_catalog()
        for table in self.settings.tables.values():
            for chain in table.values():
                for model_id in chain:
                    if model_id not in self.catalog.chat:
                        raise ModelNotFound(f"tier table model {model_id!r} is not in the catalog")
        self.classifier = Classifier(Scorer(self.settings))
        self.policies = policies(self.settings.tables, self.settings.penalties, self.catalog)
        self.chains = ChainBuilder(self.settings, self.catalog)
        self._baseline = self.catalog.chat[self.catalog.baseline_model]
        self._known = frozenset(PROFILES) | frozenset(self.catalog.chat)

    def cost(self, model_id: str, input_tokens: int, output_tokens: int) -> tuple[float, float,
                                                                                   float]:
        """(cost, baseline cost, savings) of calling ``model_id`` with these input tokens and
        this output cap (each model priced at most at its own max output)."""
        model = self.catalog.chat.get(model_id)
        if model is None:
            model = self.catalog.chat[self.resolve(model_id)]
        cost = model.charge(input_tokens, output_tokens)
        baseline = self._baseline.charge(input_tokens, output_tokens)
        return cost, baseline, max(0.0, (baseline - cost) / baseline) if baseline > 0 else 0.0

    def route(self, body: Any, model: str | None = "auto", *, excluded: frozenset[str] = frozenset(),
              min_tier: str | None = None) -> RoutingDecision:
        """Decide the tier and model chain for ``body``. ``model`` is a profile or catalog id;
        ``excluded`` catalog ids are avoided; ``min_tier`` keeps a session from downgrading, but
        never above the profile's ``maxTier``."""
        name = model if model in self._known else self.resolve(model or "auto")
        if min_tier is not None and min_tier not in _RANK:
            raise ValueError(f"min_tier must be one of {', '.join(TIERS)}, not {min_tier!r}")
        s = self.settings
        view = read_request(body, 0, s.history_turns)  # output_tokens 0: the request set none
        if name not in PROFILES:
            return self._direct(name, view, excluded)
        signals: list[str] = []  # what fired besides the classifier's explanation
        if name == "free":
            tier, score, confidence, agentic_task = "SIMPLE", 0.0, 1.0, False
            explanation = _NO_EXPLANATION
            signals.append("free profile")
        else:
            verdict = self.classifier.classify(view, self.policies.get(name))
            tier, score, confidence = verdict.tier, verdict.score, verdict.confidence
            agentic_task = verdict.agentic
            explanation = verdict.explanation
        table = name
        if name == "auto" and (view.has_tools or agentic_task or s.agentic_mode):
            table = "agentic"
        if view.has_tools:
            signals.append("tools")
        if view.images:
            signals.append("vision")
        if view.structured:
            signals.append("structured output")
        if min_tier is not None and _RANK[min_tier] > _RANK[tier]:
            tier = min_tier
            signals.append(f"pinned ≥ {min_tier}")
        cap = s.max_tiers.get(name)
        if cap is not None and _RANK[tier] > _RANK[cap]:  # the user's explicit cap wins over a pin
            tier = cap
            signals.append(f"capped at {cap} (maxTier)")
        view.output_tokens = self.caps.clamp(view.output_tokens, tier)
        if name == "free":
            chain, notes = self.chains.free_only(table, tier, view, excluded)
        else:
            chain, notes = self.chains.build(table, tier, view, excluded)
        signals.extend(notes)
        return self._decision(name, table, tier, chain, confidence, view, score,
                              explanation.noted(tuple(signals)))

    def _direct(self, model_id: str, view: RequestView, excluded: frozenset[str]) -> RoutingDecision:
        view.output_tokens = self.caps.clamp(view.output_tokens, "DIRECT")
        chain = [model_id]
        free = self.catalog.free_model
        if (not view.has_tools and free not in excluded and model_id != free
                and self.catalog.chat[free].honours(view.response_format)):
            chain.append(free)
        signals = ("explicit model", "tools") if view.has_tools else ("explicit model",)
        return self._decision("direct", "direct", "DIRECT", tuple(chain), 1.0, view, 0.0,
                              _NO_EXPLANATION.noted(signals))

    def _decision(self, profile: str, table: str, tier: str, chain: tuple[str, ...],
                  confidence: float, view: RequestView, score: float,
                  explanation: Explanation) -> RoutingDecision:
        tokens_in, tokens_out = view.input_tokens, view.output_tokens
        cost = self.catalog.chat[chain[0]].charge(tokens_in, tokens_out)
        baseline = self._baseline.charge(tokens_in, tokens_out)
        savings = _savings(profile, cost, baseline)
        return tuple.__new__(RoutingDecision, (  # skips NamedTuple's Python-level __new__
            profile, table, tier, chain[0], chain[1:], confidence, table == "agentic",
            tokens_in, tokens_out, cost, baseline, savings, score, explanation))

    def reorder(self, decision: RoutingDecision, chain: tuple[str, ...]) -> RoutingDecision:
        """``decision`` with ``chain`` (some of its models, in the order they will really be
        tried), its estimate repriced for the first of them."""
        if chain == decision.chain:
            return decision
        cost = self.catalog.chat[chain[0]].charge(decision.input_tokens, decision.output_tokens)
        return decision._replace(
            model=chain[0], fallbacks=chain[1:], cost_estimate=cost,
            savings=_savings(decision.profile, cost, decision.baseline_cost))

    def resolve(self, name: str) -> str:
        """A profile name or catalog chat id for ``name`` (aliases, ``blockrun/`` prefix);
        unknown names raise ModelNotFound with the closest known names."""
        resolved = self.catalog.resolve(name)
        if resolved in PROFILES or resolved in self.catalog.chat:
            return resolved
        close = suggest(resolved, self.catalog)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ModelNotFound(f'Unknown model "{name}".{hint} Use a catalog id, an alias, or a '
                            f"routing profile ({', '.join(PROFILES)}).")


def _savings(profile: str, cost: float, baseline: float) -> float:
    """(baseline - cost) / baseline, at least 0; 0 for premium, which does not aim to save."""
    if profile == "premium" or baseline <= 0:
        return 0.0
    return max(0.0, (baseline - cost) / baseline)


@lru_cache(maxsize=1)
def default_router() -> Router:
    """A Router with the default configuration, built on first use."""
    return Router()


def route(body: Any, profile: str = "auto", **kw: Any) -> RoutingDecision:
    """Route ``body`` with the default Router (see :meth:`Router.route`)."""
    return default_router().route(body, profile, **kw)
