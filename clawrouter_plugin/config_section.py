"""The base of every configuration section: camelCase keys, unknown keys refused, and numbers
that are really numbers."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel


class ConfigSection(BaseModel):
    """A config mapping: camelCase (snake_case accepted), no unknown keys, no infinity/NaN."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """``port: true`` is a mistake, not port 1 (pydantic would take a bool as a number)."""
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            if annotation in (int, float) or {int, float} & set(get_args(annotation)):
                raise ValueError("expected a number, not true/false")
        return value
