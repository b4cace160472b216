"""The Train resource: a release carrying flavor revisions to production (SPEC section 3)."""

import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from adroit.api.base import DNS_LABEL, Report, Resource, cel, validations
from adroit.api.conditions import Condition
from adroit.api.flavor import FlavorSpec
from adroit.api.names import MAX_FLAVOR_NAME


class Phase(StrEnum):
    QUEUED = "Queued"
    STAGING = "Staging"
    VERIFYING = "Verifying"
    AWAITING_APPROVAL = "AwaitingApproval"
    PROMOTING = "Promoting"
    DEPLOYED = "Deployed"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"
    FAILED = "Failed"


ON_THE_TRACKS = frozenset(
    {Phase.STAGING, Phase.VERIFYING, Phase.AWAITING_APPROVAL, Phase.PROMOTING}
)
FINISHED = frozenset({Phase.DEPLOYED, Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED})
ENDED_BADLY = FINISHED - {Phase.DEPLOYED}


# One train carries a platform-wide change (one approval); the operator forms
# trains of at most this many cars, and the rest board the next.
MAX_CARS = 2000
# A Train is one object in etcd, which takes at most 1.5 MiB (1,572,864 bytes) with its
# metadata. Its spec and its status each get a share, so that neither can push the other
# past the limit and leave a train whose status can no longer be written. Bytes of JSON.
SPEC_BYTES = 600_000  # the operator forms no larger train; the webhook refuses a larger one
STATUS_BYTES = 450_000  # a train's status: car messages are shortened to stay within it


def wire_bytes(value: Any) -> int:
    """The bytes of a value as JSON, as the shares above count them: escapes at their
    longest (the API server writes <, > and & as \\u003c, \\u003e and \\u0026)."""
    text = json.dumps(value, separators=(",", ":"))
    return len(text) + 5 * sum(text.count(c) for c in "<>&")


def repeated_flavors(flavors: Iterable[Any]) -> str | None:
    """What to say of a train whose cars name a flavor more than once, or None.
    The API server does not check it: the car lists are atomic (a list keyed by flavor makes
    it record every car's fields in managedFields, as many bytes again as the cars), and no
    CEL rule compares 2,000 cars with each other within its cost budget."""
    counts = Counter(flavors)
    repeated = [flavor for flavor, n in counts.items() if n > 1]
    if not repeated:
        return None
    more = f" and {len(repeated) - 3} more" if len(repeated) > 3 else ""
    return (
        f"flavor {', '.join(map(str, repeated[:3]))}{more} rides this train more than once; "
        "a train carries each flavor at most once: keep one car per flavor"
    )


# The longest username a train records (a car's authors, its engineer): a Kubernetes name.
USERNAME_LIMIT = 253
MAX_AUTHORS = 100  # the authors a car names (the webhook remembers as many changes)


class CarState(StrEnum):
    PENDING = "Pending"
    APPLYING = "Applying"
    VERIFYING = "Verifying"
    VERIFIED = "Verified"
    DEPLOYED = "Deployed"
    FAILED = "Failed"
    REVERTED = "Reverted"
    SKIPPED = "Skipped"


class Car(Resource):
    """One flavor revision carried by a train, or the removal of a deleted flavor."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.remove) && self.remove) ? (!has(self.spec) && !has(self.revision)) "
                ": has(self.revision)",
                "a car either names a flavor's revision (with its spec, or with the spec kept "
                "in the ControllerRevision FLAVOR-REVISION), or says remove: true and carries "
                "neither",
            )
        )
    )

    flavor: str = Field(
        min_length=1,
        max_length=MAX_FLAVOR_NAME,
        pattern=DNS_LABEL,
        description="The Flavor this car carries.",
    )
    revision: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=r"^[a-f0-9]+$",
        description="Hash of the Flavor spec the car carries. Required unless remove is true.",
    )
    spec: FlavorSpec | None = Field(
        default=None,
        description="That Flavor spec, as it was when the train formed. Optional: when left "
        "out, the spec is the data of the apps/v1 ControllerRevision named FLAVOR-REVISION in "
        "the train's namespace (trains the operator forms keep their specs there).",
    )
    remove: bool = Field(
        default=False,
        description="The flavor was deleted: take it out of every stage (no revision, no spec).",
    )
    image: str | None = Field(
        default=None,
        max_length=512,
        description="The serving image the car runs: the runtime's image in the settings' "
        "catalog when the train formed.",
    )
    shadow_image: str | None = Field(
        default=None,
        max_length=512,
        description="The serving image of the car's shadow, when it has one.",
    )
    author: str | None = Field(
        default=None, max_length=USERNAME_LIMIT, description="Who made the change this car carries."
    )
    authors: (
        list[Annotated[str, Field(max_length=USERNAME_LIMIT, description="A username.")]] | None
    ) = Field(
        default=None,
        max_length=MAX_AUTHORS,
        description="Everyone who changed the flavor since the revision production runs, as "
        "the admission webhook recorded them: none of them may approve the train.",
    )


class TrainSpec(Resource):
    """What a train carries. Immutable once created."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self == oldSelf",
                "a Train's spec is immutable once created: to ship other changes, create a new "
                "Train (or let one form from the Flavors) and abort this one",
            )
        )
    )

    engineer: str = Field(
        min_length=1,
        max_length=USERNAME_LIMIT,
        description="Who drives the train and is notified of every step that needs them.",
    )
    cars: list[Car] = Field(
        min_length=1,
        max_length=MAX_CARS,
        description="The flavor revisions the train carries, at most one per flavor (the "
        "admission webhook refuses a train that carries a flavor twice).",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    runtime_release: bool = Field(
        default=False,
        description="The train carries only a new runtime image from the settings' catalog, "
        "no flavor change: it needs no approval.",
    )


# --- status ---------------------------------------------------------------


class CheckReport(Report):
    """The verification check that failed a car, with what it found."""

    kind: str = Field(description="prediction, load, metric or shadow.")
    name: str = Field(description="The check's name in the Flavor's spec.verification.")
    http_status: int | None = Field(default=None, description="The answer's HTTP status.")
    latency_ms: int | None = Field(
        default=None, description="The answer's latency (the load check's p99), in ms."
    )
    response: str | None = Field(default=None, description="The start of the answer.")
    value: float | None = Field(
        default=None, description="The metric's value (the load check's error %)."
    )


class CarStatus(Report):
    """Where one car stands in each stage."""

    flavor: str = Field(description="The car's Flavor.")
    staging: CarState = Field(default=CarState.PENDING, description="State in staging.")
    production: CarState = Field(default=CarState.PENDING, description="State in production.")
    reason: str | None = Field(default=None, description="Why, in one CamelCase word.")
    message: str | None = Field(default=None, description="Why, for a person.")
    check: CheckReport | None = Field(
        default=None, description="The verification check that failed the car, if one did."
    )


class Approval(Report):
    """Who approved the train, as recorded and signed by the admission webhook."""

    by: str | None = Field(default=None, description="The approving user, when known.")
    groups: list[str] = Field(default_factory=list, description="The approver's groups.")
    at: datetime = Field(description="When the approval was given.")


class HistoryEntry(Report):
    """One transition of the train: the audit trail."""

    phase: Phase = Field(description="The phase entered.")
    at: datetime = Field(description="When.")
    reason: str = Field(description="Why, in one CamelCase word.")
    message: str = Field(default="", description="Why, for a person.")
    by: str | None = Field(default=None, description="The person who caused it, if any.")


class TrainStatus(Report):
    """Where the train is; written only by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation the operator last saw."
    )
    phase: Phase | None = Field(default=None, description="Where the train is.")
    reason: str | None = Field(default=None, description="Why it is there, or what it waits for.")
    message: str | None = Field(default=None, description="The same, for a person.")
    window_opens_at: datetime | None = Field(
        default=None, description="When the deploy window next opens, while the train waits for it."
    )
    deadline: datetime | None = Field(
        default=None,
        description="While Staging or Promoting: when the phase times out if the cars are not "
        "all Available by then.",
    )
    verifying_until: datetime | None = Field(
        default=None, description="While Verifying: when the verification ends."
    )
    car_count: int | None = Field(default=None, description="How many cars the train carries.")
    cars: list[CarStatus] = Field(
        default_factory=list,
        description="Per car, its state in staging and in production.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    approval: Approval | None = Field(default=None, description="Who approved, and when.")
    history: list[HistoryEntry] = Field(
        default_factory=list, description="Every transition, with its time and reason."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Departed, Verified, Approved, Deployed: usable with kubectl wait.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class Train(Resource):
    """The root object, for validating whole manifests in tests and tools."""

    api_version: str = "adroit.dev/v1alpha1"
    kind: str = "Train"
    metadata: dict[str, object] = Field(default_factory=dict)
    spec: TrainSpec
    status: TrainStatus | None = None
