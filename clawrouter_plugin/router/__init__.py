"""The smart router: score a request, pick a tier, map the tier to a model chain per profile.

Pure and fast (no I/O after construction): ``Router(config, catalog).route(body, model)``.
"""

from .config import RoutingConfig
from .router import PROFILES, Router, RoutingDecision, route, tier_rank
from .settings import TIERS

__all__ = ["PROFILES", "TIERS", "Router", "RoutingConfig", "RoutingDecision", "route", "tier_rank"]
