"""From (tier table, tier) to the ordered list of models to try, and what they cost.

The tier comes from the ask alone; what the request needs from a model (room for a long input,
tools, images, JSON output) is met here, by filtering the tier's chain. Filters, in order, each
one falling back rather than leaving the chain empty:
1. context window: keep models whose window is at least 1.1 × (input + output tokens); when
   none of the tier's models fits, take the models of the table's higher tiers that can serve
   the request, cheapest first; when none of those can either, the cheapest catalog models
   that can; and when no model fits at all, the widest-context models of the chain;
2. exclusions: drop excluded models unless that would drop all of them;
3. tools: only tool-capable models (cheapest capable catalog models if none is left); models
   known for malformed tool calls move to the end;
4. vision: only vision-capable models when the request has images (same fallback);
5. JSON output: with ``response_format`` json_object / json_schema, only models that honour
   it (catalog capabilities ``json`` / ``json_schema``; same fallback);
6. no duplicates; the free model is appended as a last resort when the request has no tools,
   no images, fits its window, the free model honours its response_format and is not excluded.

The free profile is different (:meth:`ChainBuilder.free_only`): its chain holds free models
only, so it never pays. Tools are not required there: the pipeline sends a model that cannot
call tools the request without them. A request no free model can read (images, too long) is
refused rather than sent to a paid model.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from ..catalog import Catalog, ChatModel
from ..errors import BadRequest
from .features import RequestView
from .settings import TIERS, Settings

CONTEXT_MARGIN = 1.1
CATALOG_FALLBACKS = 3  # how many catalog models replace a chain that no model of could serve


def suggest(name: str, catalog: Catalog, limit: int = 3) -> list[str]:
    """Catalog ids, aliases or profiles that look like ``name`` (for "did you mean")."""
    pool: dict[str, str] = {}
    for model_id in catalog.chat:
        pool[model_id] = model_id
        pool.setdefault(model_id.split("/", 1)[-1], model_id)
    for alias in catalog.aliases:
        pool.setdefault(alias, alias)
    for profile in catalog.profiles:
        pool.setdefault(profile, profile)
    matches = difflib.get_close_matches(name.lower(), list(pool), n=limit * 2, cutoff=0.6)
    return list(dict.fromkeys(pool[m] for m in matches))[:limit]


class ChainBuilder:
    """Builds filtered fallback chains; one instance per Router."""

    def __init__(self, settings: Settings, catalog: Catalog):
        self.tables = settings.tables
        self.catalog = catalog
        self.chat = catalog.chat
        self.free = catalog.free_model
        self.unreliable = frozenset(settings.unreliable_tool_models)
        # the common case (no tools, images or exclusions, fits every model) is precomputed
        free = self.chat.get(self.free)
        self._plain: dict[tuple[str, str], tuple[int, tuple[str, ...]]] = {}
        for table, tiers in self.tables.items():
            for tier, chain in tiers.items():
                smallest = min(self.chat[m].context_window for m in chain)
                full = chain if free is None or self.free in chain else (*chain, self.free)
                if free is not None:
                    smallest = min(smallest, free.context_window)
                self._plain[table, tier] = (smallest, full)

    def build(self, table: str, tier: str, view: RequestView,
              excluded: frozenset[str]) -> tuple[tuple[str, ...], list[str]]:
        """(chain, notes about filters that had to fall back)."""
        notes: list[str] = []
        need = int(CONTEXT_MARGIN * (view.input_tokens + view.output_tokens))
        smallest, plain = self._plain[table, tier]
        fmt = view.response_format
        if need <= smallest and not (excluded or view.has_tools or view.images or fmt):
            return plain, notes
        chain = list(self.tables[table][tier])

        def fits(m: ChatModel) -> bool:
            return m.context_window >= need

        def serves(m: ChatModel) -> bool:
            return (fits(m) and m.id not in excluded and (m.tools or not view.has_tools)
                    and (m.vision or not view.images) and m.honours(fmt))

        kept = [m for m in chain if fits(self.chat[m])]
        if not kept:
            kept = self._higher(table, tier, serves, view)
            if kept:
                notes.append(f"context: no {tier} model fits {need} tokens; using the models "
                             "of higher tiers that do")
            else:
                kept = self._cheapest(serves, view)
                if kept:
                    notes.append(f"context: no {table} model fits {need} tokens; using larger "
                                 "models")
                else:
                    widest = max(self.chat[m].context_window for m in chain)
                    kept = [m for m in chain if self.chat[m].context_window == widest]
                    notes.append(f"context: no model fits {need} tokens; widest kept")
        chain = [m for m in kept if m not in excluded] or kept
        if len(chain) == len(kept) and any(m in excluded for m in kept):
            notes.append("exclusions ignored: nothing else can serve this request")
        if view.has_tools:
            chain = self._require(chain, lambda m: m.tools, serves, view, "tools", notes)
            chain.sort(key=lambda m: m in self.unreliable)
        if view.images:
            chain = self._require(chain, lambda m: m.vision, serves, view, "vision", notes)
        if fmt:
            what = "json_schema" if fmt == "json_schema" else "json"
            chain = self._require(chain, lambda m: m.honours(fmt), serves, view, what, notes)
        free = self.chat.get(self.free)
        if (not view.has_tools and not view.images and free is not None and self.free not in excluded
                and self.free not in chain and fits(free) and free.honours(fmt)):
            chain.append(self.free)
        return tuple(chain), notes

    def free_only(self, table: str, tier: str, view: RequestView,
                  excluded: frozenset[str]) -> tuple[tuple[str, ...], list[str]]:
        """(chain, notes) of the free profile: the table's free models (the catalog's free
        model if it lists none). BadRequest when none of them can read the request."""
        notes: list[str] = []
        free = [m for m in self.tables[table][tier] if self.chat[m].is_free] or [self.free]
        chain = [m for m in free if m not in excluded] or free
        if len(chain) == len(free) and any(m in excluded for m in free):
            notes.append("exclusions ignored: only a free model may answer the free profile")
        if view.images:
            chain = [m for m in chain if self.chat[m].vision]
            if not chain:
                raise BadRequest("the free model cannot read images; choose another profile or "
                                 "model for this request", code="free_model_unsuitable")
        need = int(CONTEXT_MARGIN * (view.input_tokens + view.output_tokens))
        chain = [m for m in chain if self.chat[m].context_window >= need]
        if not chain:
            raise BadRequest(f"this request (about {need} tokens with its output) is too long "
                             "for the free model; choose another profile or model",
                             code="free_model_unsuitable")
        if view.has_tools:
            capable = [m for m in chain if self.chat[m].tools]
            if capable:
                chain = capable
            else:
                notes.append("tools dropped: the free model cannot call tools")
        fmt = view.response_format
        if fmt:
            honours = [m for m in chain if self.chat[m].honours(fmt)]
            if honours:
                chain = honours
            else:
                notes.append(f"{fmt}: the free model may not honour this response_format")
        return tuple(chain), notes

    def _require(self, chain: list[str], capable: Callable[[ChatModel], bool],
                 serves: Callable[[ChatModel], bool], view: RequestView, what: str,
                 notes: list[str]) -> list[str]:
        kept = [m for m in chain if capable(self.chat[m])]
        if kept:
            return kept
        cheapest = self._cheapest(serves, view)
        notes.append(f"{what}: no {what}-capable model in this tier; cheapest {what}-capable used"
                     if cheapest else f"{what}: no {what}-capable model available")
        return cheapest or chain

    def _higher(self, table: str, tier: str, serves: Callable[[ChatModel], bool],
                view: RequestView) -> list[str]:
        """The models of ``table``'s tiers above ``tier`` that can serve the request, cheapest
        first (a long input needs a larger window, not a weaker model from elsewhere)."""
        above = TIERS[TIERS.index(tier) + 1:]
        able = {m: self.chat[m] for t in above for m in self.tables[table][t]
                if serves(self.chat[m])}
        return sorted(able, key=lambda m: (able[m].cost(view.input_tokens, view.output_tokens), m))

    def _cheapest(self, serves: Callable[[ChatModel], bool], view: RequestView) -> list[str]:
        """The cheapest catalog models that can serve the request, cheapest first."""
        able = [m for m in self.chat.values() if serves(m)]
        able.sort(key=lambda m: (m.cost(view.input_tokens, view.output_tokens), m.id))
        return [m.id for m in able[:CATALOG_FALLBACKS]]
