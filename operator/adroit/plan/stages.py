"""The two stages, the roles a Deployment plays in one, and what every object there carries."""

from enum import StrEnum

from adroit.api import names
from adroit.api.settings import Namespaces


class Stage(StrEnum):
    STAGING = "staging"
    PRODUCTION = "production"


class Role(StrEnum):
    PRIMARY = "primary"
    SHADOW = "shadow"


def stage_namespace(stage: Stage, namespaces: Namespaces) -> str:
    """The namespace a stage lives in, per the settings."""
    return namespaces.staging if stage is Stage.STAGING else namespaces.production


def object_labels(flavor: str, stage: Stage, role: Role) -> dict[str, str]:
    """The labels on everything the operator creates in a stage (SPEC section 1)."""
    return {
        names.MANAGED_BY: names.MANAGED_BY_VALUE,
        names.FLAVOR_LABEL: flavor,
        names.STAGE_LABEL: stage.value,
        names.ROLE_LABEL: role.value,
    }
