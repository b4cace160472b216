"""Kubernetes-style conditions, usable with `kubectl wait --for=condition=...`."""

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from adroit.api.base import Report


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(Report):
    """The shape of metav1.Condition: one entry per type."""

    type: str = Field(max_length=316, description="The aspect this condition is about.")
    status: ConditionStatus
    reason: str = Field(max_length=1024, description="A CamelCase word: why.")
    message: str = Field(default="", max_length=32768, description="Why, for a person.")
    last_transition_time: datetime | None = Field(
        default=None, description="When status last changed."
    )
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this condition was computed for."
    )
