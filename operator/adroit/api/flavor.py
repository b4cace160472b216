"""The Flavor resource: one deployable model-serving configuration (SPEC section 2)."""

import json
import re
from typing import Annotated

from pydantic import ConfigDict, Field, field_validator

from adroit.api.base import (
    LABEL_KEY,
    LABEL_VALUE,
    MAX_LABEL_KEY,
    MAX_LABEL_KEY_PREFIX,
    MAX_LABEL_VALUE,
    URL_PATH,
    Report,
    Resource,
    cel,
    validations,
)
from adroit.api.conditions import Condition
from adroit.api.names import MAX_FLAVOR_NAME

RUNTIME_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
MODEL_NAME = r"^[A-Za-z0-9][-A-Za-z0-9_.]*$"
MODEL_FIELDS = ("name", "version", "configPath", "runtime")

_RELATIVE_PATH = cel(
    "!self.startsWith('/') && !self.matches('(^|/)\\\\.\\\\.(/|$)')",
    "configPath is relative to the model's artifact root and may not climb out of it: "
    "remove the leading '/' and any '..'",
)

# nodeSelector is copied into the pods' spec, where the API server checks it as
# labels: refuse here what it would refuse there, and say what to write instead.
NODE_LABEL_KEY_HOW = (
    "write a name of at most 63 letters, digits, '-', '_' and '.', starting and ending with a "
    "letter or digit, with an optional lower-case DNS subdomain prefix of at most 253 "
    "characters and '/' before it, e.g. pool or kubernetes.io/arch"
)
NODE_LABEL_VALUE_HOW = (
    "write at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or "
    "digit (or nothing), e.g. gpu-a100 rather than gpu a100"
)


def _cel_string(text: str) -> str:
    """`text` as a CEL string literal."""
    return json.dumps(text)


def _is_label_key(key: str) -> str:
    """CEL: the string `key` is a label key. The cheap size checks stop a huge key first."""
    return (
        f"size({key}) <= {MAX_LABEL_KEY} && {key}.indexOf('/') <= {MAX_LABEL_KEY_PREFIX} && "
        f"{key}.matches('{LABEL_KEY}')"
    )


_NODE_LABEL_KEYS = cel(
    f"self.all(k, {_is_label_key('k')})",
    "a nodeSelector key is not a node label key: " + NODE_LABEL_KEY_HOW,
    message_expression=_cel_string("nodeSelector key '")
    + f" + self.filter(k, !({_is_label_key('k')}))[0] + "
    + _cel_string("' is not a node label key: " + NODE_LABEL_KEY_HOW),
)
# LABEL_VALUE, or empty, in fewer characters: CEL charges a regular expression by
# its length, and a Train embeds up to 2,000 specs of 20 values each. RE2's \w is
# ASCII only, so [^\W_] is [A-Za-z0-9].
LABEL_VALUE_OR_EMPTY = r"^([^\W_]([-\w.]*[^\W_])?)?$"
_NODE_LABEL_VALUE = cel(
    f"self.matches(r'{LABEL_VALUE_OR_EMPTY}')",  # maxLength refuses a long one first
    "a nodeSelector value is not a node label value: " + NODE_LABEL_VALUE_HOW,
    message_expression=_cel_string("nodeSelector value '")
    + " + self + "
    + _cel_string("' is not a node label value: " + NODE_LABEL_VALUE_HOW),
)


def node_label_problem(key: str, value: str) -> str | None:
    """What is wrong with one nodeSelector entry, in the CRD's words; None if nothing."""
    if (
        len(key) > MAX_LABEL_KEY
        or key.find("/") > MAX_LABEL_KEY_PREFIX
        or not re.fullmatch(LABEL_KEY, key)
    ):
        return f"nodeSelector key '{key}' is not a node label key: {NODE_LABEL_KEY_HOW}"
    if len(value) > MAX_LABEL_VALUE or not re.fullmatch(LABEL_VALUE_OR_EMPTY, value, re.ASCII):
        return f"nodeSelector value '{value}' is not a node label value: {NODE_LABEL_VALUE_HOW}"
    return None


# maxLength bounds the CEL cost; the model leaves the length to node_label_problem,
# so that it refuses with the same message as the API server.
NodeLabelValue = Annotated[
    str,
    Field(json_schema_extra={"maxLength": MAX_LABEL_VALUE, **validations(_NODE_LABEL_VALUE)}),
]


class ModelRef(Resource):
    """The model a flavor serves."""

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=MODEL_NAME,
        description="Registered model name, e.g. ads_pclick_lines_v5.",
    )
    version: str = Field(
        min_length=1,
        max_length=63,
        pattern=LABEL_VALUE,
        description="Model version: a run or registry id (at most 63 characters).",
    )
    config_path: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Serving config, relative to the model's artifact root.",
        json_schema_extra=validations(_RELATIVE_PATH),
    )
    runtime: str | None = Field(
        default=None,
        max_length=63,
        pattern=RUNTIME_NAME,
        description="A runtime from the settings' catalog (one image per runtime); "
        "the settings' defaultRuntime when left out.",
    )


class ShadowModelRef(Resource):
    """The shadow's model: every field left out is the primary's."""

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=MODEL_NAME,
        description="Model name; the primary's when left out.",
    )
    version: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=LABEL_VALUE,
        description="Model version; the primary's when left out.",
    )
    config_path: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Serving config; the primary's when left out.",
        json_schema_extra=validations(_RELATIVE_PATH),
    )
    runtime: str | None = Field(
        default=None,
        max_length=63,
        pattern=RUNTIME_NAME,
        description="Runtime; the primary's when left out.",
    )


class Instances(Resource):
    """How much a flavor runs."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.memoryPerProcMiB * self.procsPerContainer <= 262144",
                "a container may reserve at most 256 GiB (memoryPerProcMiB * procsPerContainer): "
                "lower procsPerContainer and raise minProdContainers instead",
            )
        )
    )

    memory_per_proc_mib: int = Field(
        default=1024,
        ge=64,
        le=262144,
        alias="memoryPerProcMiB",
        description="Memory reserved per serving process, in MiB (64 to 262144).",
    )
    procs_per_container: int = Field(
        default=1, ge=1, le=64, description="Serving processes per container (1 to 64)."
    )
    min_prod_containers: int = Field(
        default=2,
        ge=1,
        le=500,
        description="Production replicas at least (1 to 500). The PodDisruptionBudget keeps "
        "all but one of them available.",
    )
    staging_containers: int = Field(
        default=1, ge=1, le=20, description="Replicas in staging (1 to 20)."
    )


class Shadow(Resource):
    """A second model version next to the primary, in production only."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.mirrorPercent == 0 || self.trafficPercent == 0",
                "a shadow is mirrored or serves live traffic, never both: set mirrorPercent "
                "to 0 in the same change that raises trafficPercent",
                field_path=".trafficPercent",
            )
        )
    )

    model: ShadowModelRef = Field(
        description="The shadow's model; fields left out are the primary's.",
    )
    mirror_percent: int = Field(
        default=0,
        ge=0,
        le=100,
        description="Share of live requests COPIED to the shadow; its responses are dropped. "
        "Capped by the settings (50 by default).",
    )
    traffic_percent: int = Field(
        default=0,
        ge=0,
        le=100,
        description="Share of live requests SERVED by the shadow; the primary serves the rest. "
        "Must be 0 when the shadow's model is new or changed: route live traffic to a shadow "
        "only in a later change, after it was tested.",
    )


def _effective(obj: str, field: str) -> str:
    """CEL for the shadow's value of one model field: its own, else the primary's."""
    return (
        f"(has({obj}.shadow.model.{field}) ? {obj}.shadow.model.{field} : "
        f"(has({obj}.model.{field}) ? {obj}.model.{field} : ''))"
    )


def _primary(obj: str, field: str) -> str:
    return f"(has({obj}.model.{field}) ? {obj}.model.{field} : '')"


_SHADOW_DIFFERS = " || ".join(
    f"{_effective('self', f)} != {_primary('self', f)}" for f in MODEL_FIELDS
)
_SHADOW_UNCHANGED = " && ".join(
    f"{_effective('self', f)} == {_effective('oldSelf.value()', f)}" for f in MODEL_FIELDS
)


# --- verification ---------------------------------------------------------

# A duration in a Flavor: 250ms, 2s, 1m30s.
DURATION = r"^([0-9]+(ms|s|m|h))+$"
CHECK_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MAX_BODY = 16384


class ConfigMapKey(Resource):
    """A key of a ConfigMap in the Flavor's namespace."""

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="The ConfigMap's name.",
    )
    key: str = Field(
        min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="Its key."
    )


class Expectation(Resource):
    """What a prediction's answer must be."""

    status: int = Field(default=200, ge=100, le=599, description="The HTTP status (200).")
    outputs: str | None = Field(
        default=None,
        max_length=MAX_BODY,
        description="The outputs the answer must carry, as JSON. v2: an object of output "
        'name to its data, e.g. {"predict": [0, 2]}; v1: the value of "predictions". '
        "Left out: only the status is checked.",
    )
    tolerance: float = Field(
        default=0,
        ge=0,
        description="How far a number in the outputs may be from the expected one (absolute).",
    )


class Prediction(Resource):
    """A request sent to the stage's Service while the train verifies, and its judgement."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.body) != has(self.bodyFrom)",
                "a prediction has either an inline body or a bodyFrom ConfigMap key, not both",
            )
        )
    )

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=CHECK_NAME,
        description="Names the request in status, Events and notifications.",
    )
    body: str | None = Field(
        default=None,
        max_length=MAX_BODY,
        description="The request's JSON body, inline (v2: an inference request with inputs; "
        'v1: {"instances": ...}).',
    )
    body_from: ConfigMapKey | None = Field(
        default=None,
        description="The body, from a ConfigMap key in the Flavor's namespace (for a large one).",
    )
    path: str | None = Field(
        default=None,
        max_length=1024,
        pattern=URL_PATH,
        description="Where to POST it; the protocol's inference path by default (v2: "
        "/v2/models/MODEL/infer, v1: /v1/models/MODEL:predict).",
    )
    expect: Expectation = Field(
        default_factory=Expectation,
        description="The expected answer: a status, and optionally outputs.",
        json_schema_extra={"default": {}},
    )
    max_latency: str = Field(
        default="1s",
        max_length=16,
        pattern=DURATION,
        description="The latency budget of one answer, e.g. 200ms.",
    )


class MetricCheck(Resource):
    """A Prometheus query whose value must stay within bounds over the verification."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("has(self.below) || has(self.above)", "a metric check needs below or above")
        )
    )

    name: str = Field(min_length=1, max_length=63, pattern=CHECK_NAME, description="Its name.")
    query: str = Field(
        min_length=1,
        max_length=4096,
        description="PromQL, evaluated at the end of the verification. $flavor, $model, "
        "$namespace (staging's), $deployment and $window (the verification time, e.g. 10m) "
        "are replaced. Every sample must be within bounds; no sample is no data.",
    )
    below: float | None = Field(default=None, description="Each value must be below this.")
    above: float | None = Field(default=None, description="Each value must be above this.")


class LoadCheck(Resource):
    """A short load check against staging with the predictions' bodies."""

    requests_per_second: int = Field(default=10, ge=1, le=500, description="Request rate.")
    duration: str = Field(
        default="10s", max_length=16, pattern=DURATION, description="How long, e.g. 30s."
    )
    max_p99_latency: str = Field(
        default="1s", max_length=16, pattern=DURATION, description="p99 latency budget."
    )
    max_error_percent: float = Field(
        default=1,
        ge=0,
        le=100,
        description="Errors (no answer or a status other than the expected) allowed, in %.",
    )


class Verification(Resource):
    """Checks run against staging while the train verifies; any failure rolls it back."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.load) || (has(self.predictions) && size(self.predictions) > 0)",
                "a load check sends the predictions' bodies: add at least one prediction",
                field_path=".load",
            )
        )
    )

    predictions: list[Prediction] | None = Field(
        default=None,
        max_length=20,
        description="Requests and their expected answers, sent first.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    metrics: list[MetricCheck] | None = Field(
        default=None,
        max_length=20,
        description="Prometheus queries with thresholds, at the end of the verification.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    load: LoadCheck | None = Field(default=None, description="A short load check.")


class FlavorSpec(Resource):
    """What a flavor should run. Changes wait for a release train."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.shadow) || !has(self.stagingOnly) || !self.stagingOnly",
                "a staging-only flavor has no shadow (shadows run in production only): remove "
                "spec.shadow, or set stagingOnly: false",
                field_path=".shadow",
            ),
            cel(
                f"!has(self.shadow) || {_SHADOW_DIFFERS}",
                "the shadow's model is the primary's: give spec.shadow.model a different "
                "version (or name, configPath, runtime), or remove spec.shadow",
                field_path=".shadow.model",
            ),
            cel(
                "!has(self.shadow) || self.shadow.trafficPercent == 0 || "
                f"(oldSelf.hasValue() && has(oldSelf.value().shadow) && {_SHADOW_UNCHANGED})",
                "a new or changed shadow model must start with trafficPercent: 0; mirror or test "
                "it first, then route live traffic to it in a later change",
                field_path=".shadow.trafficPercent",
                optional_old_self=True,
            ),
        )
    )

    owner: str = Field(
        min_length=1,
        max_length=63,
        pattern=LABEL_VALUE,
        description="The owning team, e.g. ads.",
    )
    staging_only: bool = Field(
        default=False,
        description="Deployed to staging, never to production. Switching a flavor to "
        "staging-only does not remove what already runs in production.",
    )
    model: ModelRef = Field(description="The model this flavor serves.")
    instances: Instances = Field(
        default_factory=Instances,
        description="Replicas and memory per stage.",
        json_schema_extra={"default": Instances().to_wire()},
    )
    node_selector: dict[str, NodeLabelValue] | None = Field(
        default=None,
        description="Run the model servers only on nodes with these labels, e.g. a GPU pool. "
        "Keys and values follow the rules of Kubernetes labels.",
        json_schema_extra={"maxProperties": 20, **validations(_NODE_LABEL_KEYS)},
    )
    shadow: Shadow | None = Field(
        default=None,
        description="A second model version next to the primary, in production only, with a "
        "mirrored (copied) or a routed (served) share of live traffic. Runbook: a new or "
        "changed shadow model starts with trafficPercent 0; mirrored or live, never both.",
    )
    verification: Verification | None = Field(
        default=None,
        description="Prediction, metric and load checks run against staging while the train "
        "verifies; a failure rolls the train back.",
    )

    @field_validator("node_selector")
    @classmethod
    def _node_labels(cls, selector: dict[str, str] | None) -> dict[str, str] | None:
        for key, value in (selector or {}).items():
            problem = node_label_problem(key, value)
            if problem:
                raise ValueError(problem)
        return selector


# --- status ---------------------------------------------------------------


class StageStatus(Report):
    """What runs in one stage."""

    revision: str | None = Field(default=None, description="Revision (spec hash) running.")
    model_version: str | None = Field(default=None, description="Primary model version running.")
    ready_containers: int | None = Field(default=None, description="Ready replicas.")
    wanted_containers: int | None = Field(default=None, description="Desired replicas.")
    train: str | None = Field(default=None, description="The train that put it there.")


class TrafficSplit(Report):
    """The traffic split programmed into the router."""

    primary_percent: int = Field(description="Share of live requests served by the primary.")
    shadow_percent: int = Field(default=0, description="Share served by the shadow.")
    mirror_percent: int = Field(default=0, description="Share copied to the shadow.")
    shadow_model_version: str | None = Field(default=None, description="The shadow's version.")
    shadow_is_primary: bool = Field(
        default=False,
        description="The shadow carries all live traffic: make its version the primary's and "
        "drop the shadow; nothing restarts.",
    )


class ProductionStatus(StageStatus):
    """What runs in production, with the traffic split applied."""

    traffic: TrafficSplit | None = Field(default=None, description="Traffic split applied.")


class FlavorStatus(Report):
    """What the operator observed; written only by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation the operator last saw."
    )
    revision: str | None = Field(default=None, description="Hash of the current spec.")
    staging: StageStatus | None = Field(default=None, description="What runs in staging.")
    production: ProductionStatus | None = Field(
        default=None, description="What runs in production."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, InProduction, PendingChanges.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class Flavor(Resource):
    """The root object, for validating whole manifests in tests and tools."""

    api_version: str = "adroit.dev/v1alpha1"
    kind: str = "Flavor"
    metadata: dict[str, object] = Field(default_factory=dict)
    spec: FlavorSpec
    status: FlavorStatus | None = None


FLAVOR_NAME_RULE = cel(
    f"size(self.metadata.name) <= {MAX_FLAVOR_NAME} && "
    "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
    f"a Flavor's name must be a DNS label of at most {MAX_FLAVOR_NAME} characters (lower-case "
    "letters, digits and '-', starting with a letter): its Deployments and Services are named "
    "after it",
)
