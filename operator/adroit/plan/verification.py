"""Verification checks (SPEC section 8): what to send to a staged model, and whether its
answers and numbers pass.

Pure: adroit.probes does the HTTP and hands back what it got (an Answer, a Prometheus
response); the clock is a parameter. A failed check is a Verdict whose message names the
check and carries the numbers a person needs: the response and its latency, the query's
value and its bound.
"""

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from adroit.api.flavor import LoadCheck, MetricCheck, Prediction, Verification
from adroit.api.settings import Settings
from adroit.api.train import Car, CarStatus, CheckReport, Phase
from adroit.plan.cars import CarError, car_release
from adroit.plan.render import deployment_name
from adroit.plan.runbook import SHADOW_NOT_COMPARED, SHADOW_WORSE, dropped_cars
from adroit.plan.stages import Role, Stage
from adroit.plan.world import TrainView, Verdict, World

PREDICTION, METRIC, LOAD, SHADOW = "prediction", "metric", "load", "shadow"
PREDICTION_FAILED = "PredictionFailed"
METRIC_FAILED = "MetricFailed"
METRICS_UNAVAILABLE = "MetricsUnavailable"
LOAD_FAILED = "LoadCheckFailed"
NOT_VERIFIABLE = "NotVerifiable"
EXCERPT = 300  # characters of a response kept in status
SERVICE_PORT = 80  # the port of the Services the operator renders

_DURATION = re.compile(r"(\d+)(ms|s|m|h)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(text: str) -> float:
    """A Flavor's duration ('250ms', '1m30s') in seconds; the CRD checked its form."""
    return sum(int(n) * _SECONDS[unit] for n, unit in _DURATION.findall(text))


def prometheus_duration(delta: timedelta) -> str:
    """A range for PromQL: whole seconds, at least one."""
    return f"{max(1, int(delta.total_seconds()))}s"


def excerpt(text: str, limit: int = EXCERPT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _ms(latency: float) -> int:
    return round(latency * 1000)


@dataclass(frozen=True)
class Answer:
    """What a model server answered to one request (status None: no answer, see error)."""

    status: int | None
    body: str
    latency: float  # seconds
    error: str | None = None


@dataclass(frozen=True)
class CarChecks:
    """The checks of one car in one verification round (`until` identifies the round)."""

    train: str
    flavor: str
    until: datetime
    verification: Verification
    base_url: str  # the stage's Service for this revision, per the settings' endpoint
    protocol: str | None  # the runtime's; None: no prediction can be sent
    model: str
    namespace: str
    deployment: str
    window: timedelta  # what the metric queries look back over: the verification time

    @property
    def key(self) -> tuple[str, str]:
        return (self.train, self.flavor)

    def names(self) -> list[str]:
        """Every check, as status and messages name it."""
        v = self.verification
        found = [f"{PREDICTION} {p.name}" for p in v.predictions or []]
        found += [LOAD] if v.load else []
        return found + [f"{METRIC} {m.name}" for m in v.metrics or []]


# --- what to run, and when -------------------------------------------------


def checks_due(world: World, settings: Settings) -> tuple[CarChecks, ...]:
    """The checks of the train that is Verifying (at most one is on the tracks)."""
    train = world.on_tracks
    if train is None or train.status.phase != Phase.VERIFYING:
        return ()
    until = train.status.verifying_until
    if until is None:  # written by the step after the train entered Verifying
        return ()
    return tuple(_car_checks(train, until, settings))


def _car_checks(train: TrainView, until: datetime, settings: Settings) -> Iterator[CarChecks]:
    namespace = settings.namespaces.staging
    dropped = dropped_cars(train.status)
    for car in train.spec.cars:
        spec = car.spec
        if spec is None or spec.verification is None or car.flavor in dropped:
            continue
        try:
            release = car_release(car, train.name, settings)
        except CarError:  # the train fails it (plan.machine): nothing to check
            continue
        if release is None:
            continue
        # The stable Service: a train verifies only once it routes to the new revision.
        service = release.flavor
        base = settings.verification.endpoint.format(
            service=service,
            namespace=namespace,
            port=SERVICE_PORT,
            flavor=car.flavor,
            stage=Stage.STAGING.value,
        )
        yield CarChecks(
            train=train.name,
            flavor=car.flavor,
            until=until,
            verification=spec.verification,
            base_url=base.rstrip("/"),
            protocol=release.serving.protocol if release.serving else None,
            model=spec.model.name,
            namespace=namespace,
            deployment=deployment_name(release, Stage.STAGING),
            window=settings.timeouts.verify_for,
        )


# --- predictions -----------------------------------------------------------


def inference_path(protocol: str, model: str, prediction: Prediction) -> str:
    if prediction.path:
        return prediction.path
    return f"/v2/models/{model}/infer" if protocol == "v2" else f"/v1/models/{model}:predict"


def not_verifiable(check: CarChecks) -> Verdict | None:
    """A car whose predictions cannot be sent: its runtime speaks no known protocol."""
    if check.protocol is not None or not (check.verification.predictions or []):
        return None
    return Verdict(
        PREDICTION,
        check.verification.predictions[0].name,  # type: ignore[index]
        False,
        NOT_VERIFIABLE,
        f"car {check.flavor}: its runtime's catalog entry names no protocol, so its "
        "predictions cannot be sent: give the runtime an object with protocol: v2 (or v1) "
        "in the settings",
    )


def judge_prediction(check: CarChecks, prediction: Prediction, answer: Answer) -> Verdict:
    """Whether one answer is the expected one, in time."""
    budget = seconds(prediction.max_latency)
    expect = prediction.expect
    where = f"prediction {prediction.name} (car {check.flavor})"
    took = f"in {_ms(answer.latency)} ms"

    def failed(why: str) -> Verdict:
        return Verdict(
            PREDICTION,
            prediction.name,
            False,
            PREDICTION_FAILED,
            f"{where}: {why}",
            status_code=answer.status,
            latency_ms=_ms(answer.latency),
            response=excerpt(answer.body) if answer.body else None,
        )

    if answer.status is None:
        return failed(
            f"no answer from {check.base_url} after {_ms(answer.latency)} ms: {answer.error}"
        )
    shown = f"; response: {excerpt(answer.body, 160)}" if answer.body else ""
    if answer.status != expect.status:
        return failed(f"HTTP {answer.status} {took}, expected {expect.status}{shown}")
    if answer.latency > budget:
        return failed(f"answered {took}, over its latency budget of {prediction.max_latency}")
    if expect.outputs is not None:
        problem = outputs_problem(
            check.protocol or "v2", expect.outputs, answer.body, expect.tolerance
        )
        if problem is not None:
            return failed(f"{problem} (HTTP {answer.status} {took}){shown}")
    return Verdict(
        PREDICTION,
        prediction.name,
        True,
        "",
        f"{where}: HTTP {answer.status} {took}",
        status_code=answer.status,
        latency_ms=_ms(answer.latency),
    )


def outputs_problem(protocol: str, expected: str, body: str, tolerance: float) -> str | None:
    """What differs between the expected outputs and the answer's (None: they agree)."""
    try:
        want = json.loads(expected)
    except ValueError as error:
        return f"expect.outputs is not JSON ({error}): fix the Flavor"
    try:
        got_doc = json.loads(body)
    except ValueError:
        return "the answer is not JSON"
    if protocol == "v2":
        if not isinstance(want, dict):
            return 'expect.outputs must be an object of output name to data, e.g. {"predict": [0]}'
        outputs = got_doc.get("outputs") if isinstance(got_doc, dict) else None
        got = {o.get("name"): o.get("data") for o in outputs or [] if isinstance(o, dict)}
        for name, data in want.items():
            if name not in got:
                has = ", ".join(map(str, got)) or "none"
                return f"output {name} is missing (the answer has {has})"
            if not _close(_flat(data), _flat(got[name]), tolerance):
                return f"output {name} is {_short(got[name])}, expected {_short(data)}" + (
                    f" within {tolerance:g}" if tolerance else ""
                )
        return None
    predictions = got_doc.get("predictions") if isinstance(got_doc, dict) else None
    if not _close(_flat(want), _flat(predictions), tolerance):
        return f"predictions are {_short(predictions)}, expected {_short(want)}" + (
            f" within {tolerance:g}" if tolerance else ""
        )
    return None


def _flat(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [x for item in value for x in _flat(item)]
    return [value]


def _close(want: list[Any], got: list[Any], tolerance: float) -> bool:
    if len(want) != len(got):
        return False
    for w, g in zip(want, got, strict=True):
        numbers = isinstance(w, int | float) and isinstance(g, int | float)
        if numbers and not isinstance(w, bool) and not isinstance(g, bool):
            if not math.isclose(float(w), float(g), rel_tol=0.0, abs_tol=tolerance):
                return False
        elif w != g:
            return False
    return True


def _short(value: Any) -> str:
    return excerpt(json.dumps(value), 120)


# --- load ------------------------------------------------------------------


def load_plan(load: LoadCheck) -> tuple[int, float]:
    """How many requests the load check sends, and the pause between two starts."""
    count = max(1, round(load.requests_per_second * seconds(load.duration)))
    return count, 1.0 / load.requests_per_second


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def judge_load(
    check: CarChecks, answers: Sequence[Answer], expected: Sequence[int] = (200,)
) -> Verdict:
    """Whether the load check's p99 latency and error share stay within their budgets. The
    requests cycled through the predictions, so answer i expects expected[i % len(expected)]."""
    load = check.verification.load
    assert load is not None
    errors = [a for i, a in enumerate(answers) if a.status != expected[i % len(expected)]]
    error_percent = 100 * len(errors) / max(1, len(answers))
    p99 = percentile([a.latency for a in answers], 99) if answers else 0.0
    numbers = (
        f"{len(answers)} requests at {load.requests_per_second}/s for {load.duration}: "
        f"p99 {_ms(p99)} ms (budget {load.max_p99_latency}), errors {error_percent:.1f}% "
        f"(budget {load.max_error_percent:g}%)"
    )
    example = errors[0] if errors else None
    common = {"latency_ms": _ms(p99), "value": round(error_percent, 3)}
    if error_percent > load.max_error_percent:
        sample = (
            f"; e.g. HTTP {example.status}: {excerpt(example.body or example.error or '', 120)}"
            if example
            else ""
        )
        return Verdict(
            LOAD,
            LOAD,
            False,
            LOAD_FAILED,
            f"load check (car {check.flavor}): too many errors: {numbers}{sample}",
            status_code=example.status if example else None,
            response=excerpt(example.body) if example and example.body else None,
            **common,  # type: ignore[arg-type]
        )
    if p99 > seconds(load.max_p99_latency):
        return Verdict(
            LOAD,
            LOAD,
            False,
            LOAD_FAILED,
            f"load check (car {check.flavor}): too slow: {numbers}",
            **common,  # type: ignore[arg-type]
        )
    return Verdict(LOAD, LOAD, True, "", f"load check: {numbers}", **common)  # type: ignore[arg-type]


# --- metrics ---------------------------------------------------------------


def fill(query: str, values: Mapping[str, str]) -> str:
    """A PromQL template with each $name replaced by its value."""
    for name, value in values.items():
        query = query.replace(f"${name}", value)
    return query


def metric_query(check: CarChecks, query: str) -> str:
    """The query with $flavor, $model, $namespace, $deployment and $window filled in."""
    return fill(
        query,
        {
            "deployment": check.deployment,
            "namespace": check.namespace,
            "flavor": check.flavor,
            "model": check.model,
            "window": prometheus_duration(check.window),
        },
    )


Sample = tuple[Mapping[str, str], float]


def samples_of(status: int | None, body: str) -> list[Sample] | str:
    """A Prometheus query answer as samples; or why there are none to judge (no data, an
    error, an answer in another shape, as a proxy in front of Prometheus may give), for a
    person."""
    if status is None:
        return f"Prometheus did not answer: {body}"
    try:
        doc = json.loads(body)
    except ValueError:
        return f"Prometheus answered HTTP {status}, not JSON: {excerpt(body, 120)}"
    if not isinstance(doc, dict):
        return (
            f"Prometheus answered HTTP {status} with JSON that is not an object, as a query "
            f"answer is: {excerpt(body, 120)}"
        )
    if doc.get("status") != "success":
        return (
            f"Prometheus refused the query (HTTP {status}): {doc.get('error', excerpt(body, 120))}"
        )
    try:
        found = _samples(doc.get("data"))
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        shown = excerpt(body, 120)
        return f"Prometheus answered HTTP {status} with a result that cannot be read: {shown}"
    found = [(labels, value) for labels, value in found if not math.isnan(value)]
    return found or "no data: the query returned no sample"


def _samples(data: Any) -> list[Sample]:
    """The samples of a query answer's `data`; raises on a shape Prometheus does not send."""
    data = data or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list):
        return [({}, float(result[1]))]
    if kind == "vector":
        return [(dict(item.get("metric") or {}), float(item["value"][1])) for item in result or []]
    return []


def _labels(labels: Mapping[str, str]) -> str:
    shown = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return "{" + shown + "}" if shown else ""


def judge_metric(
    check: CarChecks, metric: MetricCheck, samples: list[Sample] | str, settings: Settings
) -> Verdict:
    """Whether every sample of a metric query is within its bounds."""
    where = f"metric {metric.name} (car {check.flavor})"
    if isinstance(samples, str):
        if settings.verification.on_metrics_unavailable == "pass":
            return Verdict(
                METRIC,
                metric.name,
                True,
                METRICS_UNAVAILABLE,
                f"{where}: {samples}; passed, as the setting verification.onMetricsUnavailable "
                "says",
            )
        return Verdict(
            METRIC,
            metric.name,
            False,
            METRICS_UNAVAILABLE,
            f"{where}: {samples}; failed, as the setting verification.onMetricsUnavailable "
            "says (set it to pass to let such a check pass)",
        )
    for labels, value in samples:
        bad = (metric.below is not None and not value < metric.below) or (
            metric.above is not None and not value > metric.above
        )
        if bad:
            bound = " and ".join(
                f"{word} {limit:g}"
                for word, limit in (("below", metric.below), ("above", metric.above))
                if limit is not None
            )
            return Verdict(
                METRIC,
                metric.name,
                False,
                METRIC_FAILED,
                f"{where}: {value:g}{_labels(labels)} is not {bound} over the last "
                f"{prometheus_duration(check.window)} ({metric.query})",
                value=value,
            )
    shown = ", ".join(f"{v:g}" for _, v in samples[:5])
    return Verdict(METRIC, metric.name, True, "", f"{where}: {shown}", value=samples[0][1])


# --- the shadow before it gets live traffic --------------------------------


@dataclass(frozen=True)
class ShadowSoak:
    """A comparison due before a train raises a mirrored shadow's trafficPercent above 0."""

    train: str
    flavor: str
    primary: str  # production's Deployments
    shadow: str
    namespace: str
    soak: timedelta
    ready_at: datetime  # mirrored for the soak time from then on; identifies the comparison

    @property
    def key(self) -> tuple[str, str]:
        return (self.train, f"shadow {self.flavor}")  # no flavor name has a space

    def query(self, template: str, deployment: str) -> str:
        values = {"deployment": deployment, "namespace": self.namespace, "flavor": self.flavor}
        return fill(template, {**values, "window": prometheus_duration(self.soak)})


_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
_BEFORE_PROMOTION = frozenset({Phase.VERIFYING, Phase.AWAITING_APPROVAL})


def soaks_due(world: World, settings: Settings) -> tuple[ShadowSoak, ...]:
    """The shadow comparisons the train on the tracks needs, once their soak time is over."""
    train = world.on_tracks
    if train is None or train.status.phase not in _BEFORE_PROMOTION:
        return ()
    dropped = dropped_cars(train.status)
    found = []
    for car in train.spec.cars:
        soak = shadow_soak(train, car, world, settings) if car.flavor not in dropped else None
        if soak is not None and soak.ready_at <= world.now:
            found.append(soak)
    return tuple(found)


def shadow_soak(train: TrainView, car: Car, world: World, settings: Settings) -> ShadowSoak | None:
    """The comparison a car needs before its shadow serves live traffic (None: none): the
    car raises trafficPercent above 0 for a shadow that production mirrors to now, and the
    settings name a Prometheus to ask."""
    spec = car.spec
    if spec is None or spec.shadow is None or spec.shadow.traffic_percent == 0:
        return None
    if settings.verification.prometheus_url is None:
        return None  # nothing to compare with: the runbook's rules alone hold
    production = world.production
    running = production.running(car.flavor)
    release = running.release if running is not None else None
    if running is None or release is None or release.spec.shadow is None:
        return None
    if release.spec.shadow.traffic_percent > 0:
        return None  # live already: this changes a share, the runbook was kept before
    shadow = next((w for w in production.of(car.flavor)[0] if w.role == Role.SHADOW), None)
    if shadow is None:
        return None
    soak = settings.verification.shadow.soak_time
    return ShadowSoak(
        train=train.name,
        flavor=car.flavor,
        primary=running.name,
        shadow=shadow.name,
        namespace=production.namespace,
        soak=soak,
        ready_at=_deployed_at(world, release.train) + soak,
    )


def _deployed_at(world: World, train: str) -> datetime:
    """When `train` reached production; long ago when it is no longer kept."""
    view = world.trains_by_name.get(train)
    entries = [h.at for h in view.status.history if h.phase == Phase.DEPLOYED] if view else []
    return entries[-1] if entries else _LONG_AGO


@dataclass(frozen=True)
class SideNumbers:
    """One side of a shadow comparison: its error ratio and latency (s), or why unknown."""

    error_ratio: float | None
    latency: float | None
    problem: str | None = None


def side_numbers(error_ratio: list[Sample] | str, latency: list[Sample] | str) -> SideNumbers:
    """One side's numbers from its two queries' samples (the first sample of each)."""
    for samples in (error_ratio, latency):
        if isinstance(samples, str):
            return SideNumbers(None, None, samples)
    assert not isinstance(error_ratio, str)
    assert not isinstance(latency, str)
    return SideNumbers(error_ratio[0][1], latency[0][1])


def judge_shadow(
    soak: ShadowSoak, primary: SideNumbers, shadow: SideNumbers, settings: Settings
) -> Verdict:
    """Whether the shadow did no worse than the primary under mirrored traffic."""
    rules = settings.verification.shadow
    flavor, window = soak.flavor, prometheus_duration(rules.soak_time)
    if primary.problem or shadow.problem:
        side = "primary" if primary.problem else "shadow"
        why = (
            f"car {flavor}: cannot compare the shadow with the primary over {window}: the "
            f"{side}'s numbers: {primary.problem or shadow.problem}"
        )
        if settings.verification.on_metrics_unavailable == "pass":
            return Verdict(
                SHADOW,
                flavor,
                True,
                SHADOW_NOT_COMPARED,
                f"{why}; passed, as the setting verification.onMetricsUnavailable says",
            )
        return Verdict(SHADOW, flavor, False, SHADOW_NOT_COMPARED, why)
    p_err, s_err = float(primary.error_ratio or 0), float(shadow.error_ratio or 0)
    p_lat, s_lat = float(primary.latency or 0), float(shadow.latency or 0)
    both = (
        f"shadow: error ratio {s_err:.4f}, latency {_ms(s_lat)} ms; primary: error ratio "
        f"{p_err:.4f}, latency {_ms(p_lat)} ms, over the last {window} of mirrored traffic"
    )
    worse = []
    if s_err > p_err + rules.max_error_ratio_increase:
        worse.append(
            f"error ratio more than {rules.max_error_ratio_increase:g} above the primary's"
        )
    if s_lat > p_lat * (1 + rules.max_latency_increase_percent / 100):
        worse.append(
            f"latency more than {rules.max_latency_increase_percent:g}% above the primary's"
        )
    if worse:
        return Verdict(
            SHADOW,
            flavor,
            False,
            SHADOW_WORSE,
            f"car {flavor}: the shadow may not get live traffic: {' and '.join(worse)} ({both})",
            value=s_err,
        )
    return Verdict(SHADOW, flavor, True, "", f"car {flavor}: {both}")


def with_check_failures(cars: list[CarStatus], failures: Mapping[str, Verdict]) -> list[CarStatus]:
    """Car statuses that name the verification check that failed each car."""
    if not failures:
        return cars
    return [
        car.model_copy(
            update={
                "reason": verdict.reason,
                "message": verdict.message,
                "check": CheckReport(
                    kind=verdict.kind,
                    name=verdict.name,
                    http_status=verdict.status_code,
                    latency_ms=verdict.latency_ms,
                    response=verdict.response,
                    value=verdict.value,
                ),
            }
        )
        if (verdict := failures.get(car.flavor)) is not None
        else car
        for car in cars
    ]
