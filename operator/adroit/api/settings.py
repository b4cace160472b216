"""The operator's settings file (SPEC section 6), validated once at start."""

import re
from datetime import date, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from adroit.api.base import DNS_LABEL, URL_PATH

_DURATION_PART = re.compile(r"(\d+)(h|m|s)")
_UNITS = {"h": 3600, "m": 60, "s": 1}


def parse_duration(value: Any) -> Any:
    """Accept '45m', '1h30m', '90s' (or a number of seconds); leave the rest to pydantic."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip()
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"{value!r} is not a duration: write it like 45m, 1h30m or 90s")
        return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))
    return value


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{seconds}s" if seconds or not text else "")


Duration = Annotated[
    timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)
]


class Section(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class Weekday(StrEnum):
    MON = "Mon"
    TUE = "Tue"
    WED = "Wed"
    THU = "Thu"
    FRI = "Fri"
    SAT = "Sat"
    SUN = "Sun"

    @property
    def number(self) -> int:
        """Monday is 0, as in datetime.weekday()."""
        return list(Weekday).index(self)


class Namespaces(Section):
    control: str = Field(default="adroit", pattern=DNS_LABEL, max_length=63)
    staging: str = Field(default="adroit-staging", pattern=DNS_LABEL, max_length=63)
    production: str = Field(default="adroit-production", pattern=DNS_LABEL, max_length=63)

    @model_validator(mode="after")
    def _distinct(self) -> "Namespaces":
        if len({self.control, self.staging, self.production}) != 3:
            raise ValueError("control, staging and production must be three different namespaces")
        return self


class Freeze(Section):
    """No departures and no promotions from `start` to `end`, both days included."""

    start: date
    end: date
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> "Freeze":
        if self.end < self.start:
            raise ValueError(f"a freeze ends ({self.end}) before it starts ({self.start})")
        return self


class DeployWindow(Section):
    """When trains depart and promotions start, in one IANA time zone."""

    timezone: str = "America/Los_Angeles"
    days: list[Weekday] = Field(
        default_factory=lambda: [Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI],
        min_length=1,
    )
    start: time = time(9, 0)
    end: time = time(16, 0)
    always_open: bool = Field(
        default=False, description="Ignore days and hours (freezes still apply); for local use."
    )
    freezes: list[Freeze] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as America/Los_Angeles"
            ) from None
        return value

    @model_validator(mode="after")
    def _ordered(self) -> "DeployWindow":
        if not self.always_open and self.end <= self.start:
            raise ValueError(f"the window closes ({self.end}) before it opens ({self.start})")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Timeouts(Section):
    staging_timeout: Duration = Field(default=timedelta(minutes=45), gt=timedelta(0))
    verify_for: Duration = Field(default=timedelta(minutes=10), ge=timedelta(0))
    promotion_lead_time: Duration = Field(default=timedelta(minutes=90), ge=timedelta(0))
    promotion_timeout: Duration = Field(default=timedelta(minutes=30), gt=timedelta(0))
    poll_interval: Duration = Field(
        default=timedelta(seconds=5),
        gt=timedelta(0),
        description="How often trains in motion are looked at, besides every change seen.",
    )


class ParentGateway(Section):
    name: str = Field(pattern=DNS_LABEL, max_length=63)
    namespace: str | None = Field(default=None, pattern=DNS_LABEL, max_length=63)


class Traffic(Section):
    router: Literal["gateway", "istio", "none"] = "gateway"
    gateway: ParentGateway | None = Field(
        default=None,
        description="The Gateway that HTTPRoutes attach to; the flavor's stable Service "
        "(mesh routing) when left out.",
    )
    mirror_cap_percent: int = Field(default=50, ge=0, le=100)


class Notifications(Section):
    webhook_url: AnyHttpUrl | None = Field(
        default=None, description="Slack-compatible incoming webhook: POST {'text': ...}."
    )


class ApprovalPolicy(Section):
    separation_of_duties: bool = Field(
        default=True, description="A train's engineer and its cars' authors may not approve it."
    )
    signing_key_secret: str = Field(default="adroit-approval-key", pattern=DNS_LABEL)
    trusted_authors: list[str] = Field(
        default_factory=list,
        description="Users (e.g. a GitOps controller's ServiceAccount) whose Flavor writes "
        "name their author in the annotation adroit.dev/author; from anyone else that "
        "annotation is refused.",
    )


class ServiceRef(Section):
    name: str = Field(pattern=DNS_LABEL, max_length=63)
    namespace: str = Field(pattern=DNS_LABEL, max_length=63)
    port: int = Field(default=443, ge=1, le=65535)


class Admission(Section):
    """The operator's admission webhook: who approves, who changed a Flavor."""

    enabled: bool = Field(
        default=True,
        description="Off: any adroit.dev/approved=true approves, and nobody is recorded. "
        "Only for clusters without a way for the API server to reach the operator.",
    )
    listen: str = Field(default="127.0.0.1", description="Address the webhook server binds.")
    port: int = Field(default=9443, ge=1, le=65535)
    host: str | None = Field(
        default=None, description="How the API server reaches it; the listen address if left out."
    )
    service: ServiceRef | None = Field(
        default=None, description="In a cluster: the Service in front of the operator's webhook."
    )


class LeaderElection(Section):
    """Several replicas: one leader reconciles, every replica serves the webhook."""

    enabled: bool = Field(
        default=True,
        description="Reconcile only while holding the Lease; off: this process always does.",
    )
    lease_name: str = Field(
        default="adroit-leader", description="The Lease, in the control namespace."
    )
    lease_duration: Duration = Field(
        default=timedelta(seconds=15),
        description="How long others wait, after the holder last renewed, to take the Lease.",
    )
    renew_deadline: Duration = Field(
        default=timedelta(seconds=10),
        description="The leader stops reconciling when it could not renew for this long.",
    )
    retry_period: Duration = Field(
        default=timedelta(seconds=2), description="How often the Lease is tried or renewed."
    )

    @model_validator(mode="after")
    def _ordered(self) -> "LeaderElection":
        if not self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leaderElection needs retryPeriod < renewDeadline < leaseDuration (as "
                "controller-runtime: 2s < 10s < 15s), or a leader could be deposed while it "
                "still reconciles"
            )
        return self


PROBE_PATHS: dict[str, tuple[str, str]] = {
    # protocol: (readiness, liveness); {name} is the flavor's model name
    "v2": ("/v2/models/{name}/ready", "/v2/health/live"),
    "v1": ("/v1/models/{name}", "/v1/models/{name}"),
}


class Runtime(Section):
    """One entry of the runtime catalog: its image and how to talk to it.

    A plain image string in the settings is a Runtime with that image and no protocol:
    its Deployments get no probes and its flavors cannot send prediction checks.
    """

    image: str = Field(min_length=1, description="The serving container image.")
    protocol: Literal["v2", "v1"] | None = Field(
        default=None,
        description="v2: the Open Inference Protocol (MLServer, Triton, KServe); v1: "
        "TF-Serving style `/v1/models/NAME:predict`.",
    )
    port: int = Field(default=8080, ge=1, le=65535, description="The serving HTTP port.")
    readiness_path: str | None = Field(
        default=None,
        pattern=URL_PATH,
        description="Readiness probe path ({name}: the model's name); the protocol's by default.",
    )
    liveness_path: str | None = Field(
        default=None,
        pattern=URL_PATH,
        description="Liveness probe path; the protocol's by default.",
    )

    @field_validator("image")
    @classmethod
    def _one_word(cls, value: str) -> str:
        if any(c.isspace() for c in value):
            raise ValueError("needs a container image, e.g. repo/image:tag")
        return value

    def probe_paths(self, model: str) -> tuple[str, str] | None:
        """Readiness and liveness paths for `model` (None: this runtime has no probes)."""
        default = PROBE_PATHS.get(self.protocol or "")
        readiness = self.readiness_path or (default[0] if default else None)
        liveness = self.liveness_path or (default[1] if default else None)
        if readiness is None or liveness is None:
            return None
        return readiness.replace("{name}", model), liveness.replace("{name}", model)


def _runtime_entry(value: Any) -> Any:
    return {"image": value} if isinstance(value, str) else value


class ShadowComparison(Section):
    """How a shadow's metrics under mirrored traffic are compared with the primary's before
    a train raises its trafficPercent above 0 (Prometheus queries; $deployment is each
    side's Deployment, $namespace production's, $window the soak time)."""

    soak_time: Duration = Field(
        default=timedelta(minutes=30),
        ge=timedelta(0),
        description="How long the shadow must have been mirrored before its metrics count.",
    )
    error_ratio_query: str = Field(
        default='sum(rate(model_infer_request_failure_total{deployment="$deployment"}[$window]))'
        ' / (sum(rate(model_infer_request_success_total{deployment="$deployment"}[$window]))'
        ' + sum(rate(model_infer_request_failure_total{deployment="$deployment"}[$window])))',
        min_length=1,
        description="The share of requests that failed, 0 to 1.",
    )
    latency_query: str = Field(
        default='sum(rate(model_infer_request_duration_sum{deployment="$deployment"}[$window]))'
        ' / sum(rate(model_infer_request_duration_count{deployment="$deployment"}[$window]))',
        min_length=1,
        description="A latency in seconds, e.g. a mean or a p99.",
    )
    max_error_ratio_increase: float = Field(
        default=0.005,
        ge=0,
        description="How far the shadow's error ratio may exceed the primary's (0 to 1).",
    )
    max_latency_increase_percent: float = Field(
        default=20, ge=0, description="The shadow's latency may exceed the primary's by this %."
    )


class VerificationSettings(Section):
    """Where the checks of a Flavor's spec.verification are sent, and what no answer means."""

    endpoint: str = Field(
        default="http://{service}.{namespace}.svc:{port}",
        description="Base URL of a stage's Service: {service}, {namespace}, {port} (the "
        "Service's, 80), {flavor}, {stage}. In a cluster, the Service's DNS name; locally, "
        "where the model server really listens.",
    )
    prometheus_url: AnyHttpUrl | None = Field(
        default=None, description="The Prometheus that metric checks query."
    )
    on_metrics_unavailable: Literal["fail", "pass"] = Field(
        default="fail",
        description="A metric query with no data, or Prometheus not answering: fail the car "
        "with that reason, or let the check pass (and say so in the history).",
    )
    request_timeout: Duration = Field(
        default=timedelta(seconds=10),
        gt=timedelta(0),
        description="The longest wait for one answer (a prediction, a Prometheus query).",
    )
    shadow: ShadowComparison = Field(default_factory=ShadowComparison)

    @field_validator("endpoint")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            value.format(service="s", namespace="n", port=80, flavor="f", stage="staging")
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(
                f"endpoint {value!r} is not a template of {{service}}, {{namespace}}, "
                f"{{port}}, {{flavor}} and {{stage}}: {error}"
            ) from None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"endpoint {value!r} must start with http:// or https://")
        return value


class Settings(Section):
    namespaces: Namespaces = Field(default_factory=Namespaces)
    deploy_window: DeployWindow = Field(default_factory=DeployWindow)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    runtimes: dict[str, Annotated[Runtime, BeforeValidator(_runtime_entry)]] = Field(
        min_length=1,
        description="The runtime catalog: runtime name to container image, or to an object "
        "with image, protocol, port and probe paths.",
    )
    default_runtime: str | None = None
    traffic: Traffic = Field(default_factory=Traffic)
    notifications: Notifications = Field(default_factory=Notifications)
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    admission: Admission = Field(default_factory=Admission)
    leader_election: LeaderElection = Field(default_factory=LeaderElection)
    verification: VerificationSettings = Field(default_factory=VerificationSettings)
    train_history_limit: int = Field(
        default=50,
        ge=0,
        description="How many finished trains are kept (like a Deployment's "
        "revisionHistoryLimit); older ones are deleted, oldest first.",
    )

    @field_validator("runtimes")
    @classmethod
    def _names(cls, value: dict[str, Runtime]) -> dict[str, Runtime]:
        for name in value:
            if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name):
                raise ValueError(
                    f"runtime name {name!r} must be lower-case letters, digits, - or ."
                )
        return value

    @model_validator(mode="after")
    def _default_runtime_known(self) -> "Settings":
        if self.default_runtime is not None and self.default_runtime not in self.runtimes:
            raise ValueError(
                f"defaultRuntime {self.default_runtime!r} is not in runtimes "
                f"({', '.join(sorted(self.runtimes))})"
            )
        return self


class SettingsError(Exception):
    """A settings file that cannot be used; the message names each bad field."""


def parse_settings(text: str, source: str = "settings") -> Settings:
    """Validate a settings document, or raise SettingsError naming every bad field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SettingsError(f"{source}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{source}: expected a mapping of settings, got {type(data).__name__}")
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        lines = [f"{source}: {error.error_count()} invalid setting(s):"]
        for item in error.errors():
            where = ".".join(str(part) for part in item["loc"]) or "(top level)"
            message = item["msg"].removeprefix("Value error, ")
            lines.append(f"  {where}: {message}")
        raise SettingsError("\n".join(lines)) from None
