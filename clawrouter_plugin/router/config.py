"""Routing configuration (placeholder; the router work replaces this with the full model)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class RoutingConfig(BaseModel):
    """Overrides for the router: tiers, scoring, classifier thresholds and overrides."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")
