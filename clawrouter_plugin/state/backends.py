"""The one place that picks the state backend (``state.backend``): local or redis stores for
the response cache, session pins, exclusions, spend and budgets, in-flight dedup and the
pre-authorisation cache."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from ..catalog import Catalog
from ..config import PluginConfig
from ..payment.preauth import PreAuthCache, PreAuthStore
from ..payment.redis_preauth import RedisPreAuth
from .cache import LocalCache, ResponseCache
from .dedup import InFlight
from .exclusions import ExclusionStore
from .redis_cache import RedisCache
from .redis_conn import RedisLink
from .redis_dedup import SharedInFlight
from .redis_exclusions import RedisExclusions
from .redis_request_state import RedisRequests
from .redis_sessions import RedisSessions
from .redis_spend import RedisSpend
from .request_state import LocalRequests, RequestStates
from .sessions import SessionStore
from .spend import Spend, SpendTracker
from .stores import CacheStore, ModelExclusions, SessionPins


class Stores(NamedTuple):
    """One implementation of each interface of :mod:`.stores` (and the pre-auth one)."""

    cache: CacheStore
    sessions: SessionPins
    exclusions: ModelExclusions
    preauth: PreAuthStore | None  # None: pre-authorisation is off (payment.preauth)
    spend: Spend
    requests: RequestStates  # what each request reads and writes (cache, pin, exclusions, dedup)


def open_stores(config: PluginConfig, data_dir: Path, catalog: Catalog,
                link: RedisLink | None) -> Stores:
    """The stores for ``config``: in Redis through ``link``, else in this process and
    ``data_dir``. A disabled cache stays local (it stores nothing, and asks no server)."""
    cache_cfg, ttl = config.cache, config.sessions.ttl_seconds
    preauth = config.payment.preauth
    if link is None:
        cache: CacheStore = LocalCache(ResponseCache(
            data_dir / "cache", max_size=cache_cfg.max_size,
            default_ttl=cache_cfg.ttl_seconds, max_item_size=cache_cfg.max_item_bytes,
            enabled=cache_cfg.enabled))
        sessions: SessionPins = SessionStore(ttl_seconds=ttl)
        exclusions: ModelExclusions = ExclusionStore(
            data_dir / "exclude-models.json", catalog, config.exclude_models)
        return Stores(
            cache=cache, sessions=sessions, exclusions=exclusions,
            preauth=PreAuthCache() if preauth else None,
            spend=SpendTracker(config.max_cost_per_run, ttl_seconds=ttl),
            requests=LocalRequests(cache, sessions, exclusions, InFlight()),
        )
    shared_cache = RedisCache(
        link, max_size=cache_cfg.max_size, default_ttl=cache_cfg.ttl_seconds,
        max_item_size=cache_cfg.max_item_bytes, max_bytes=cache_cfg.max_bytes,
    ) if cache_cfg.enabled else None
    redis_sessions = RedisSessions(link, ttl_seconds=ttl)
    redis_exclusions = RedisExclusions(link, catalog, config.exclude_models)
    return Stores(
        cache=shared_cache or LocalCache(ResponseCache(enabled=False)),
        sessions=redis_sessions, exclusions=redis_exclusions,
        preauth=RedisPreAuth(link) if preauth else None,
        spend=RedisSpend(link, config.max_cost_per_run, ttl_seconds=ttl),
        requests=RedisRequests(link, shared_cache, redis_sessions, redis_exclusions,
                               SharedInFlight(link)),
    )
