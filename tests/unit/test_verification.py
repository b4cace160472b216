"""Verification checks on the pure planner: judging answers and numbers, and what a train
does with the verdicts (SPEC section 8)."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adroit.api.flavor import LoadCheck, MetricCheck, Prediction, Verification
from adroit.api.settings import parse_settings
from adroit.api.train import Car, CarState, Phase
from adroit.plan.cars import car_release
from adroit.plan.render import Release, Stage, render_stage
from adroit.plan.verification import (
    Answer,
    CarChecks,
    ShadowSoak,
    SideNumbers,
    checks_due,
    judge_load,
    judge_metric,
    judge_prediction,
    judge_shadow,
    load_plan,
    metric_query,
    samples_of,
    seconds,
    side_numbers,
    soaks_due,
)
from adroit.plan.world import CheckResults, Verdict, World
from tests.unit.sim import Sim, spec

V2_RUNTIME = "runtimes: {scikit-learn-2022-10: {image: repo/mlserver:1, protocol: v2}}\n"
SETTINGS = parse_settings(
    V2_RUNTIME
    + "deployWindow: {alwaysOpen: true}\n"
    + "timeouts: {stagingTimeout: 2m, verifyFor: 30s, promotionLeadTime: 0s}\n"
    + "verification: {endpoint: 'http://127.0.0.1:9000/{stage}/{service}'}\n"
)
LENIENT = SETTINGS.model_copy(
    update={
        "verification": SETTINGS.verification.model_copy(update={"on_metrics_unavailable": "pass"})
    }
)
BODY = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1]}]})


def answer(outputs: Any = None, status: int = 200, latency: float = 0.05) -> Answer:
    body = json.dumps({"model_name": "iris", "outputs": [{"name": "predict", "data": outputs}]})
    return Answer(status, body, latency)


def check(protocol: str | None = "v2", **verification: Any) -> CarChecks:
    return CarChecks(
        train="t1",
        flavor="iris",
        until=datetime(2026, 11, 23, tzinfo=UTC),
        verification=Verification.model_validate(verification),
        base_url="http://model",
        protocol=protocol,
        model="iris",
        namespace="adroit-staging",
        deployment="iris-abc",
        window=timedelta(minutes=10),
    )


def prediction(**fields: Any) -> Prediction:
    return Prediction.model_validate({"name": "two-flowers", "body": BODY, **fields})


EXPECT_0_2 = {"outputs": json.dumps({"predict": [0, 2]})}


@pytest.mark.parametrize(
    ("fields", "got", "passed", "says"),
    [
        ({"expect": EXPECT_0_2}, answer([0, 2]), True, "HTTP 200 in 50 ms"),
        ({"expect": EXPECT_0_2}, answer([[0], [2]]), True, "HTTP 200"),  # shape [2, 1]
        (
            {"expect": EXPECT_0_2},
            answer([1, 0]),
            False,
            "output predict is [1, 0], expected [0, 2]",
        ),
        ({"expect": EXPECT_0_2}, answer([0]), False, "output predict is [0], expected [0, 2]"),
        (
            {"expect": {"outputs": '{"proba": [0.9]}', "tolerance": 0.05}},
            Answer(200, '{"outputs": [{"name": "proba", "data": [0.87]}]}', 0.01),
            True,
            "HTTP 200",
        ),
        (
            {"expect": {"outputs": '{"proba": [0.9]}', "tolerance": 0.01}},
            Answer(200, '{"outputs": [{"name": "proba", "data": [0.87]}]}', 0.01),
            False,
            "expected [0.9] within 0.01",
        ),
        (
            {"expect": EXPECT_0_2},
            answer([0, 2], status=500),
            False,
            "HTTP 500 in 50 ms, expected 200",
        ),
        (
            {"maxLatency": "200ms"},
            answer([0, 2], latency=1.5),
            False,
            "over its latency budget of 200ms",
        ),
        (
            {},
            Answer(None, "", 5.0, error="no answer within 5s"),
            False,
            "no answer from http://model",
        ),
        ({"expect": {"outputs": "[0"}}, answer([0]), False, "expect.outputs is not JSON"),
        ({"expect": EXPECT_0_2}, Answer(200, "<html>", 0.1), False, "the answer is not JSON"),
    ],
)
def test_a_prediction_is_judged_by_status_outputs_and_latency(
    fields: dict[str, Any], got: Answer, passed: bool, says: str
) -> None:
    verdict = judge_prediction(check(), prediction(**fields), got)
    assert verdict.passed is passed, verdict.message
    assert says in verdict.message
    assert "prediction two-flowers (car iris)" in verdict.message
    if not passed:
        assert verdict.reason == "PredictionFailed"
        assert verdict.latency_ms == round(got.latency * 1000)


def test_a_failed_prediction_keeps_an_excerpt_of_the_answer() -> None:
    huge = json.dumps({"outputs": [{"name": "predict", "data": [1] * 5000}]})
    verdict = judge_prediction(check(), prediction(expect=EXPECT_0_2), Answer(200, huge, 0.1))
    assert verdict.response is not None
    assert verdict.response.startswith('{"outputs"')
    assert len(verdict.response) <= 300


def test_v1_compares_the_predictions() -> None:
    got = Answer(200, json.dumps({"predictions": [[0.1, 0.9]]}), 0.02)
    good = prediction(expect={"outputs": "[[0.1, 0.9]]"})
    assert judge_prediction(check("v1"), good, got).passed
    bad = prediction(expect={"outputs": "[[0.9, 0.1]]"})
    assert "predictions are [[0.1, 0.9]], expected [[0.9, 0.1]]" in (
        judge_prediction(check("v1"), bad, got).message
    )


def test_durations_and_the_load_plan() -> None:
    assert seconds("250ms") == 0.25
    assert seconds("1m30s") == 90
    load = LoadCheck.model_validate({"requestsPerSecond": 20, "duration": "2s"})
    assert load_plan(load) == (40, 0.05)


def test_the_load_check_judges_p99_and_errors() -> None:
    load = {"requestsPerSecond": 10, "duration": "10s", "maxP99Latency": "300ms"}
    car = check(predictions=[{"name": "a", "body": BODY}], load=load)
    fast = [Answer(200, "{}", 0.01)] * 100
    assert judge_load(car, fast).passed
    slow = judge_load(car, [Answer(200, "{}", 0.01)] * 98 + [Answer(200, "{}", 0.9)] * 2)
    assert not slow.passed
    assert slow.reason == "LoadCheckFailed"
    assert "too slow" in slow.message
    assert "p99 900 ms (budget 300ms)" in slow.message
    failing = judge_load(car, [Answer(200, "{}", 0.01)] * 97 + [Answer(503, "busy", 0.01)] * 3)
    assert not failing.passed
    assert "too many errors" in failing.message
    assert "errors 3.0% (budget 1%)" in failing.message
    assert "HTTP 503: busy" in failing.message
    # Each request expects its own prediction's status: here the second one's 404.
    both = judge_load(car, [Answer(200, "{}", 0.01), Answer(404, "{}", 0.01)] * 50, (200, 404))
    assert both.passed


def prometheus(*samples: tuple[dict[str, str], str]) -> str:
    result = [{"metric": labels, "value": [1.0, value]} for labels, value in samples]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})


SUCCESS_WITH = '{"status": "success", "data": %s}'


def test_a_metric_is_judged_against_its_bounds() -> None:
    metric = MetricCheck.model_validate({"name": "errors", "query": "q", "below": 0.01})
    within = samples_of(200, prometheus(({}, "0.001")))
    assert judge_metric(check(), metric, within, SETTINGS).passed
    over = samples_of(200, prometheus(({"pod": "a"}, "0.002"), ({"pod": "b"}, "0.05")))
    verdict = judge_metric(check(), metric, over, SETTINGS)
    assert not verdict.passed
    assert verdict.reason == "MetricFailed"
    assert verdict.value == 0.05
    assert 'metric errors (car iris): 0.05{pod="b"} is not below 0.01 over the last 600s' in (
        verdict.message
    )
    floor = MetricCheck.model_validate({"name": "traffic", "query": "q", "above": 1})
    assert "is not above 1" in judge_metric(check(), floor, within, SETTINGS).message


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (200, prometheus(), "no data"),
        (200, prometheus(({}, "NaN")), "no data"),
        (None, "http://prom: Cannot connect", "Prometheus did not answer"),
        (400, '{"status": "error", "error": "parse error"}', "refused the query (HTTP 400)"),
        # A proxy in front of Prometheus, or something else on its port, answers 200 with
        # JSON of another shape: a reason, as for no answer at all, not an exception.
        (200, "[]", "HTTP 200 with JSON that is not an object, as a query answer is: []"),
        (200, "null", "JSON that is not an object"),
        (200, '"ok"', "JSON that is not an object"),
        (200, '{"status": "success", "data": ["x"]}', "a result that cannot be read"),
        (200, SUCCESS_WITH % '{"resultType": "vector", "result": [{"value": "x"}]}', "cannot"),
        (200, SUCCESS_WITH % '{"resultType": "vector", "result": 7}', "cannot be read"),
        (200, SUCCESS_WITH % '{"resultType": "scalar", "result": [1, "fast"]}', "cannot be read"),
    ],
)
def test_no_metric_data_fails_by_default_and_passes_when_the_setting_says(
    status: int | None, body: str, says: str
) -> None:
    metric = MetricCheck.model_validate({"name": "errors", "query": "q", "below": 1})
    samples = samples_of(status, body)
    strict = judge_metric(check(), metric, samples, SETTINGS)
    assert not strict.passed
    assert strict.reason == "MetricsUnavailable"
    assert says in strict.message
    assert "onMetricsUnavailable" in strict.message
    passed = judge_metric(check(), metric, samples, LENIENT)
    assert passed.passed
    assert passed.reason == "MetricsUnavailable"


def test_a_query_is_filled_in_for_the_car() -> None:
    query = 'rate(x{namespace="$namespace",deployment="$deployment",model="$model"}[$window])'
    assert metric_query(check(), query) == (
        'rate(x{namespace="adroit-staging",deployment="iris-abc",model="iris"}[600s])'
    )


def soak(minutes: int = 30) -> ShadowSoak:
    at = datetime(2026, 11, 23, tzinfo=UTC)
    return ShadowSoak("t1", "ads", "ads-p", "ads-s", "prod", timedelta(minutes=minutes), at)


def test_a_worse_shadow_is_refused_with_both_sides_numbers() -> None:
    primary = SideNumbers(error_ratio=0.001, latency=0.050)
    assert judge_shadow(soak(), primary, SideNumbers(0.002, 0.055), SETTINGS).passed
    worse = judge_shadow(soak(), primary, SideNumbers(0.02, 0.090), SETTINGS)
    assert not worse.passed
    assert worse.reason == "ShadowWorseThanPrimary"
    assert "error ratio more than 0.005 above the primary's" in worse.message
    assert "latency more than 20% above the primary's" in worse.message
    assert "shadow: error ratio 0.0200, latency 90 ms" in worse.message
    assert "primary: error ratio 0.0010, latency 50 ms, over the last 1800s" in worse.message


def test_a_shadow_without_numbers_follows_the_setting() -> None:
    sides = side_numbers("no data: the query returned no sample", [({}, 0.1)])
    refused = judge_shadow(soak(), SideNumbers(0.0, 0.05), sides, SETTINGS)
    assert not refused.passed
    assert refused.reason == "ShadowNotCompared"
    assert "the shadow's numbers: no data" in refused.message
    assert judge_shadow(soak(), SideNumbers(0.0, 0.05), sides, LENIENT).passed
    unreadable = side_numbers(samples_of(200, "[]"), [({}, 0.1)])
    refused = judge_shadow(soak(), unreadable, SideNumbers(0.0, 0.05), SETTINGS)
    assert (refused.passed, refused.reason) == (False, "ShadowNotCompared")
    assert "the primary's numbers: Prometheus answered HTTP 200 with JSON that is not an" in (
        refused.message
    )
    assert soak().query('x{deployment="$deployment"}[$window]', "ads-s") == (
        'x{deployment="ads-s"}[1800s]'
    )


def test_a_runtime_with_a_protocol_gets_probes_and_a_plain_image_stays_as_it_was() -> None:

    car = Car.model_validate({"flavor": "iris", "revision": "ab", "spec": spec().to_wire()})
    plain = parse_settings("runtimes: {scikit-learn-2022-10: repo/sklearn:1}")
    before = render_stage(Release("iris", spec(), "repo/sklearn:1", "t"), Stage.STAGING, "s")
    after = render_stage(car_release(car, "t", plain), Stage.STAGING, "s")  # type: ignore[arg-type]
    assert after.workloads[0]["metadata"]["name"] == before.workloads[0]["metadata"]["name"]
    container = after.workloads[0]["spec"]["template"]["spec"]["containers"][0]
    assert "readinessProbe" not in container

    v2 = parse_settings(
        "runtimes: {scikit-learn-2022-10: {image: repo/sklearn:1, protocol: v2, port: 9000}}"
    )
    probed = render_stage(car_release(car, "t", v2), Stage.STAGING, "s")  # type: ignore[arg-type]
    container = probed.workloads[0]["spec"]["template"]["spec"]["containers"][0]
    model = spec().model.name
    assert container["readinessProbe"]["httpGet"] == {
        "path": f"/v2/models/{model}/ready",
        "port": "http",
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["ports"] == [{"name": "http", "containerPort": 9000}]


# --- what a train does with the verdicts -----------------------------------


class CheckingSim(Sim):
    """The stand-in, with what the verifier found (World.checks) set by the test."""

    def __init__(self) -> None:
        super().__init__(SETTINGS)
        self.checks: dict[tuple[str, str], CheckResults] = {}

    def world(self) -> World:
        return replace(super().world(), checks=dict(self.checks))

    def found(self, *verdicts: Verdict, finished: bool = True) -> None:
        """The verifier's results for the Verifying train's car, in its current round."""
        due = checks_due(self.world(), self.settings)
        assert len(due) == 1, due
        self.checks[due[0].key] = CheckResults(due[0].until, verdicts, finished)


VERIFIED = {"predictions": [{"name": "two-flowers", "body": BODY}]}


def verifying(sim: CheckingSim) -> str:
    sim.apply_flavor("iris", spec(verification=VERIFIED))
    sim.run(10)
    train = sim.only_train()
    assert sim.phase(train) == Phase.VERIFYING
    return train


def test_checks_are_due_while_verifying_at_the_endpoint_of_the_stage() -> None:
    sim = CheckingSim()
    verifying(sim)
    (due,) = checks_due(sim.world(), sim.settings)
    # {service} is the flavor's stable Service, which routes to the new revision by now
    assert due.base_url == "http://127.0.0.1:9000/staging/iris"
    assert due.deployment.startswith("iris-"), "metric queries name the revision's Deployment"
    assert due.protocol == "v2"
    assert due.names() == ["prediction two-flowers"]


def test_a_failed_check_rolls_the_train_back_and_names_itself() -> None:
    sim = CheckingSim()
    train = verifying(sim)
    why = "prediction two-flowers (car iris): HTTP 500 in 3 ms, expected 200"
    sim.found(Verdict("prediction", "two-flowers", False, "PredictionFailed", why, 500, 3, "oops"))
    sim.run(5)
    status = sim.trains[train].status
    assert status.phase == Phase.ROLLED_BACK
    assert status.reason == "PredictionFailed"
    (car,) = status.cars
    assert car.staging == CarState.FAILED
    assert car.reason == "PredictionFailed"
    assert car.message == why
    assert car.check is not None
    assert (car.check.kind, car.check.http_status, car.check.response) == (
        "prediction",
        500,
        "oops",
    )
    told = [n for name, n in sim.notices if name == train and n.notify]
    assert why in told[-1].message
    assert told[-1].message.startswith("@bob:")
    assert sim.running(Stage.STAGING, "iris") is None, "staging is put back"


def test_the_train_waits_for_its_checks_and_then_goes_on() -> None:
    sim = CheckingSim()
    train = verifying(sim)
    sim.run(60)
    status = sim.trains[train].status
    assert status.phase == Phase.VERIFYING
    assert status.reason == "WaitingForChecks"
    assert "waiting for the checks of iris" in (status.message or "")
    sim.found(
        Verdict("prediction", "two-flowers", True, "", "ok"),
        Verdict("metric", "errors", True, "MetricsUnavailable", "no data; passed"),
    )
    sim.run(5)
    status = sim.trains[train].status
    assert status.phase == Phase.AWAITING_APPROVAL
    assert [h.reason for h in status.history][-2:] == ["Verified", "MetricsUnavailable"]


def test_results_of_an_earlier_round_do_not_count() -> None:
    sim = CheckingSim()
    train = verifying(sim)
    (due,) = checks_due(sim.world(), sim.settings)
    stale = CheckResults(
        due.until - timedelta(hours=1), (Verdict("x", "y", False, "Z", "m"),), True
    )
    sim.checks[due.key] = stale
    sim.run(5)
    assert sim.phase(train) == Phase.VERIFYING


def test_a_shadow_gets_live_traffic_only_after_it_compares_well() -> None:
    config = SETTINGS.model_copy(
        update={
            "verification": SETTINGS.verification.model_copy(
                update={
                    "prometheus_url": "http://prometheus:9090",
                    "shadow": SETTINGS.verification.shadow.model_copy(
                        update={"soak_time": timedelta(minutes=10)}
                    ),
                }
            )
        }
    )
    sim = CheckingSim()
    sim.settings = config
    mirrored = spec("v1", shadow={"model": {"version": "v2"}, "mirrorPercent": 10})
    sim.apply_flavor("ads", mirrored)
    sim.run(40)
    first = sim.only_train()
    sim.approve(first)
    sim.run(10)
    assert sim.phase(first) == Phase.DEPLOYED

    sim.apply_flavor("ads", spec("v1", shadow={"model": {"version": "v2"}, "trafficPercent": 30}))
    sim.run(40)
    (train,) = set(sim.trains) - {first}
    sim.approve(train)
    sim.run(5)
    status = sim.trains[train].status
    assert status.phase == Phase.AWAITING_APPROVAL
    assert status.reason == "ShadowSoaking"
    assert "ads's shadow is compared at" in (status.message or "")
    assert soaks_due(sim.world(), sim.settings) == ()

    sim.run(600)
    (due,) = soaks_due(sim.world(), sim.settings)
    assert (due.primary, due.shadow) != (None, None)
    status = sim.trains[train].status
    assert "comparing ads's shadow with its primary" in (status.message or "")
    worse = judge_shadow(due, SideNumbers(0.001, 0.05), SideNumbers(0.2, 0.05), sim.settings)
    sim.checks[due.key] = CheckResults(due.ready_at, (worse,), True)
    sim.run(5)
    status = sim.trains[train].status
    assert status.phase == Phase.FAILED
    (car,) = status.cars
    assert car.reason == "ShadowWorseThanPrimary"
    assert "shadow: error ratio 0.2000" in (car.message or "")
    assert "primary: error ratio 0.0010" in (car.message or "")
    assert sim.running(Stage.PRODUCTION, "ads") == "v1"
