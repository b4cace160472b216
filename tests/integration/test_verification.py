"""Verification that asks the model (SPEC section 8): a real MLServer serving scikit-learn
models trained in the set-up, a real Prometheus scraping it, the operator's checks over real
HTTP. Fake nodes run no containers, so the settings' endpoint template sends a stage's
Service to the local MLServer, where the Flavor's model name picks the model."""

import base64
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from tests.integration.api_proxy import CountingProxy, access
from tests.integration.operator import Operator, Webhook, free_port, own_operator
from tests.kube import REPO, apply, eventually, kubectl

HACK = REPO / "hack" / "verification"
RUNTIME = "mlserver-1-7"
# Two iris flowers: a setosa (class 0) and a virginica (class 2).
FLOWERS = json.dumps(
    {
        "inputs": [
            {
                "name": "flowers",
                "shape": [2, 4],
                "datatype": "FP64",
                "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3],
            }
        ]
    }
)
SETOSA_AND_VIRGINICA = json.dumps({"predict": [0, 2]})
FROM_A_CONFIG_MAP = {
    "name": "from-a-config-map",
    "bodyFrom": {"name": "iris-requests", "key": "flowers.json"},
    "expect": {"outputs": SETOSA_AND_VIRGINICA},
}


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One MLServer and one Prometheus for every test here (hack/verification/up.sh)."""
    if shutil.which("prometheus") is None and not os.environ.get("CI"):
        pytest.skip(
            "no prometheus on PATH: install the Debian package (hack/tools/debs.sh does, as "
            "root) to run the verification tests"
        )
    folder = tmp_path_factory.mktemp("verification")
    started = subprocess.run(
        [str(HACK / "up.sh"), str(folder)], capture_output=True, text=True, timeout=600
    )
    if started.returncode != 0:
        message = f"hack/verification/up.sh failed: {started.stderr.strip()[-2000:]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    endpoints = dict(line.split("=", 1) for line in (folder / "endpoints.env").read_text().split())
    yield endpoints
    subprocess.run([str(HACK / "down.sh"), str(folder)], check=False, timeout=60)


def settings_for(servers: dict[str, str], **verification: Any) -> dict[str, Any]:
    return {
        "runtimes": {RUNTIME: {"image": "registry.local/adroit/mlserver:1.7.1", "protocol": "v2"}},
        "defaultRuntime": RUNTIME,
        # Short, and long enough for Prometheus (scraping every second) to see the requests.
        "timeouts": {"verifyFor": "5s"},
        "verification": {
            "endpoint": servers["MLSERVER_URL"],
            "prometheusUrl": servers["PROMETHEUS_URL"],
            "requestTimeout": "5s",
            **verification,
        },
    }


@pytest.fixture(scope="module")
def notices() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture(scope="module")
def op(
    servers: dict[str, str], notices: Webhook, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    """One operator for the tests that need no settings of their own: each test ships its
    own flavor, and trains go one at a time."""
    tmp = tmp_path_factory.mktemp("operator")
    with own_operator(tmp, webhook=notices, **settings_for(servers)) as running:
        running.start()
        yield running


def checked_flavor(op: Operator, name: str, model: str, **verification: Any) -> dict[str, Any]:
    manifest = op.flavor(name)
    manifest["spec"]["model"] = {"name": model, "version": "v1"}
    manifest["spec"]["verification"] = verification
    return manifest


def prediction(max_latency: str = "1s", **expect: Any) -> dict[str, Any]:
    return {
        "name": "setosa-and-virginica",
        "body": FLOWERS,
        "expect": {"outputs": SETOSA_AND_VIRGINICA, **expect},
        "maxLatency": max_latency,
    }


def request_body_in_a_config_map(op: Operator) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "iris-requests"}}
    body["metadata"]["namespace"] = op.ns
    body["data"] = {"flowers.json": FLOWERS}
    apply(body)


def ship_until(op: Operator, manifest: dict[str, Any], phase: str) -> dict[str, Any]:
    known = {t["metadata"]["name"] for t in op.trains()}
    apply(manifest, user="bob")
    return op.wait_phase(op.new_train(known), phase)


def failed_car(train: dict[str, Any]) -> dict[str, Any]:
    cars = train["status"]["cars"]
    assert len(cars) == 1
    assert cars[0]["staging"] == "Failed", cars
    return dict(cars[0])


def told(op: Operator, notices: Webhook, train: str, words: str) -> None:
    """The Event and the engineer's notification both say `words`."""
    eventually(lambda: words in op.events(train), what=f"an Event saying {words!r}")
    eventually(
        lambda: any(train in t and words in t for t in notices.texts),
        what=f"a notification saying {words!r}",
    )


def test_a_good_model_passes_its_predictions_load_and_metrics(op: Operator) -> None:
    # A large body may live in a ConfigMap beside the Flavor.
    request_body_in_a_config_map(op)
    manifest = checked_flavor(
        op,
        "iris-good",
        "iris",
        predictions=[prediction(), FROM_A_CONFIG_MAP],
        load={"requestsPerSecond": 20, "duration": "1s", "maxP99Latency": "500ms"},
        metrics=[
            {
                "name": "failures",
                "query": 'sum(model_infer_request_failure_total{model="$model"})',
                "below": 1,
            }
        ],
    )
    train = ship_until(op, manifest, "AwaitingApproval")
    assert train["status"]["cars"][0]["staging"] == "Verified"
    container = op.deployments("staging", "iris-good")[0]["spec"]["template"]["spec"]["containers"][
        0
    ]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/models/iris/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    kubectl("annotate", "train", train["metadata"]["name"], "-n", op.ns, "adroit.dev/abort=true")


def test_wrong_outputs_roll_the_train_back(op: Operator, notices: Webhook) -> None:
    manifest = checked_flavor(op, "iris-wrong", "iris-wrong", predictions=[prediction()])
    train = ship_until(op, manifest, "RolledBack")
    name = train["metadata"]["name"]
    car = failed_car(train)
    assert car["reason"] == "PredictionFailed"
    assert "prediction setosa-and-virginica" in car["message"]
    assert "output predict is [1, 0], expected [0, 2]" in car["message"]
    assert car["check"]["httpStatus"] == 200
    assert '"model_name":"iris-wrong"' in car["check"]["response"]
    assert train["status"]["reason"] == "PredictionFailed"
    assert op.deployments("staging", "iris-wrong") == [], "staging is put back"
    told(op, notices, name, "output predict is [1, 0], expected [0, 2]")


def test_a_server_error_rolls_the_train_back(op: Operator, notices: Webhook) -> None:
    manifest = checked_flavor(op, "iris-broken", "iris-broken", predictions=[prediction()])
    train = ship_until(op, manifest, "RolledBack")
    car = failed_car(train)
    assert car["check"]["httpStatus"] == 500
    assert "HTTP 500" in car["message"]
    assert "expected 200" in car["message"]
    assert "feature store is unreachable" in car["check"]["response"]
    told(op, notices, train["metadata"]["name"], "feature store is unreachable")


def test_a_slow_model_rolls_the_train_back(op: Operator, notices: Webhook) -> None:
    manifest = checked_flavor(
        op, "iris-slow", "iris-slow", predictions=[prediction(max_latency="500ms")]
    )
    train = ship_until(op, manifest, "RolledBack")
    car = failed_car(train)
    assert "over its latency budget of 500ms" in car["message"]
    assert car["check"]["latencyMs"] >= 1000
    told(op, notices, train["metadata"]["name"], "over its latency budget of 500ms")


def test_a_metric_above_its_threshold_rolls_the_train_back(op: Operator, notices: Webhook) -> None:
    mean_latency = (
        'max(model_infer_request_duration_sum{model="$model"}'
        ' / model_infer_request_duration_count{model="$model"})'
    )
    manifest = checked_flavor(
        op,
        "iris-slow-metric",
        "iris-slow",
        predictions=[prediction(max_latency="5s")],
        metrics=[{"name": "mean-latency", "query": mean_latency, "below": 0.2}],
    )
    train = ship_until(op, manifest, "RolledBack")
    car = failed_car(train)
    assert car["reason"] == "MetricFailed"
    assert car["check"]["name"] == "mean-latency"
    assert car["check"]["value"] >= 1.0
    assert "is not below 0.2" in car["message"]
    told(op, notices, train["metadata"]["name"], "metric mean-latency")


def test_prometheus_down_follows_the_setting(
    servers: dict[str, str], tmp_path: Path, webhook: Webhook
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    settings = settings_for(servers, prometheusUrl=nowhere)
    metric = {"name": "failures", "query": "sum(model_infer_request_failure_total)", "below": 1}
    with own_operator(tmp_path, webhook=webhook, **settings) as op:
        op.start()
        manifest = checked_flavor(op, "iris-strict", "iris", metrics=[metric])
        train = ship_until(op, manifest, "RolledBack")
        car = failed_car(train)
        assert car["reason"] == "MetricsUnavailable"
        assert "Prometheus did not answer" in car["message"]
        assert "onMetricsUnavailable" in car["message"]

        op.stop()
        op.settings["verification"]["onMetricsUnavailable"] = "pass"
        op.start()
        manifest = checked_flavor(op, "iris-lenient", "iris", metrics=[metric])
        train = ship_until(op, manifest, "AwaitingApproval")
        notes = [h for h in train["status"]["history"] if h["reason"] == "MetricsUnavailable"]
        assert notes
        assert "passed, as the setting" in notes[0]["message"]


def test_the_api_server_refuses_a_load_check_without_predictions(op: Operator) -> None:
    manifest = checked_flavor(op, "iris-load", "iris", load={"requestsPerSecond": 5})
    refused = apply(manifest, user="bob", check=False)
    assert refused.returncode != 0
    assert "a load check sends the predictions' bodies" in refused.stderr


def test_a_missing_body_config_map_rolls_the_train_back_with_the_api_servers_message(
    op: Operator, notices: Webhook
) -> None:
    missing = {**FROM_A_CONFIG_MAP, "bodyFrom": {"name": "no-such-requests", "key": "x.json"}}
    manifest = checked_flavor(op, "iris-no-body", "iris", predictions=[missing])
    train = ship_until(op, manifest, "RolledBack")
    car = failed_car(train)
    assert car["reason"] == "PredictionFailed"
    where = f"cannot read its body from ConfigMap {op.ns}/no-such-requests key x.json"
    assert where in car["message"]
    assert 'the API server answered 404: configmaps "no-such-requests" not found' in car["message"]
    told(op, notices, train["metadata"]["name"], 'configmaps "no-such-requests" not found')


# --- an API server in trouble, and a Prometheus that answers oddly ---------

# What the API server says when it sheds or cannot serve a request (a Status, as it sends).
TROUBLE = {
    429: ("TooManyRequests", "Too many requests, please try again later."),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
}


@dataclass
class TroubledProxy(CountingProxy):
    """The counting proxy, which answers a GET of a path itself with the statuses `faults`
    holds for it, one a request, before it passes that path on again: an API server whose
    priority and fairness sheds load (429), or one in trouble (5xx). The API server cannot
    be made to refuse a GET by a policy, so the proxy does."""

    faults: dict[str, list[int]] = field(default_factory=dict)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        waiting = self.faults.get(request.path)
        if request.method != "GET" or not waiting:
            return await super()._forward(request)
        status = waiting.pop(0)
        self.seen += access(request.method, request.path, dict(request.query), status)
        reason, message = TROUBLE[status]
        body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status}
        body.update(reason=reason, message=message)
        return web.json_response(body, status=status, headers={"Retry-After": "1"})


def _cluster_ca(tmp_path: Path) -> tuple[str, Path]:
    """The API server's URL, and its CA in a file."""
    config = yaml.safe_load(kubectl("config", "view", "--raw", "--minify").stdout)
    cluster = config["clusters"][0]["cluster"]
    ca = tmp_path / "cluster-ca.crt"
    if "certificate-authority-data" in cluster:
        ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    else:
        ca.write_bytes(Path(cluster["certificate-authority"]).read_bytes())
    return cluster["server"], ca


def _through(proxy: CountingProxy, op: Operator, tmp_path: Path) -> Path:
    """A kubeconfig for the operator's ServiceAccount (its RBAC from deploy/), through the
    proxy: a token passes a proxy, a client certificate would not."""
    kubectl("apply", "-f", "-", stdin=op.rbac())
    account = f"{op.ns}-operator"
    token = kubectl("create", "token", account, "-n", op.ns, "--duration=1h").stdout.strip()
    ca = base64.b64encode(proxy.ca_file.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "proxied",
                "cluster": {
                    "server": f"https://127.0.0.1:{proxy.port}",
                    "certificate-authority-data": ca,
                },
            }
        ],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "proxied", "context": {"cluster": "proxied", "user": account}}],
        "current-context": "proxied",
    }
    path = tmp_path / "proxied.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def settled(op: Operator, train: str, *phases: str) -> dict[str, Any]:
    """The train once it is in one of `phases` (the first it reaches)."""
    eventually(
        lambda: op.phase(train) in phases,
        timeout=90,
        what=f"train {train} to be one of {phases} (is {op.phase(train)})",
    )
    return op.get("train", train)


READ_BODY = ("configmaps", "iris-requests")


def test_a_busy_api_server_is_asked_again_for_a_predictions_body(
    servers: dict[str, str], tmp_path: Path
) -> None:
    server, ca = _cluster_ca(tmp_path)
    with own_operator(tmp_path, **settings_for(servers)) as op:
        request_body_in_a_config_map(op)
        path = f"/api/v1/namespaces/{op.ns}/configmaps/iris-requests"
        proxy = TroubledProxy(server, ca, tmp_path, faults={path: [429, 429, 503]})
        try:
            op.spawn(kubeconfig=_through(proxy, op, tmp_path))
            manifest = checked_flavor(op, "iris-patient", "iris", predictions=[FROM_A_CONFIG_MAP])
            known = {t["metadata"]["name"] for t in op.trains()}
            apply(manifest, user="bob")
            name = op.new_train(known)
            train = settled(op, name, "AwaitingApproval", "RolledBack", "Failed")
            assert train["status"]["phase"] == "AwaitingApproval", train["status"]
            assert train["status"]["cars"][0]["staging"] == "Verified"
            reads = [a.status for a in proxy.seen if (a.resource, a.name) == READ_BODY]
            assert reads == [429, 429, 503, 200], reads
            log = op.log.read_text()
            assert "the API server answered 429: Too many requests" in log
            assert "again in 0.5s" in log
        finally:
            op.kill()
            proxy.close()


class OddPrometheus:
    """Something on Prometheus's address that answers every query 200 with a JSON array, as
    a misconfigured proxy in front of it may; it remembers the queries."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        odd = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                odd.queries.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"[]")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_shadow_whose_numbers_cannot_be_read_is_not_given_live_traffic(
    tmp_path: Path,
) -> None:
    """The comparison ends with a reason (as when Prometheus does not answer), never a train
    that says ShadowSoaking for ever."""
    prometheus = OddPrometheus()
    verification = {"prometheusUrl": prometheus.url, "shadow": {"soakTime": "1s"}}
    try:
        with own_operator(tmp_path, timeouts={"verifyFor": "2s"}, verification=verification) as op:
            op.start()
            op.ship(op.flavor("ads", shadow={"model": {"version": "v2"}, "mirrorPercent": 10}))
            assert prometheus.queries == [], "no comparison while the shadow only mirrors"

            live = {"model": {"version": "v2"}, "mirrorPercent": 0, "trafficPercent": 30}
            known = {t["metadata"]["name"] for t in op.trains()}
            apply(op.flavor("ads", shadow=live), user="bob")
            train = op.new_train(known)
            op.wait_phase(train, "AwaitingApproval")
            op.approve(train)
            status = settled(op, train, "Failed", "Deployed")["status"]
            assert status["phase"] == "Failed", status
            assert status["reason"] == "RunbookRefused"
            assert "every car was taken out" in status["message"]
            odd = "Prometheus answered HTTP 200 with JSON that is not an object"
            assert odd in status["message"]
            notes = [h for h in status["history"] if h["reason"] == "ShadowNotCompared"]
            assert notes, status["history"]
            assert "cannot compare the shadow with the primary" in notes[0]["message"]
            assert prometheus.queries, "Prometheus was asked"
            traffic = op.get("flavor", "ads")["status"]["production"]["traffic"]
            assert traffic["shadowPercent"] == 0, "the shadow gets no live traffic"
    finally:
        prometheus.close()


def test_an_api_server_busy_for_the_whole_verification_time_rolls_the_train_back(
    servers: dict[str, str], tmp_path: Path
) -> None:
    """Asked again for 30 s at least (the verification time here is 5 s), then a clear
    failure with the API server's answer: never a train that waits for ever."""
    server, ca = _cluster_ca(tmp_path)
    with own_operator(tmp_path, **settings_for(servers)) as op:
        request_body_in_a_config_map(op)
        path = f"/api/v1/namespaces/{op.ns}/configmaps/iris-requests"
        proxy = TroubledProxy(server, ca, tmp_path, faults={path: [429] * 1000})
        try:
            op.spawn(kubeconfig=_through(proxy, op, tmp_path))
            manifest = checked_flavor(op, "iris-shed", "iris", predictions=[FROM_A_CONFIG_MAP])
            known = {t["metadata"]["name"] for t in op.trains()}
            apply(manifest, user="bob")
            train = settled(op, op.new_train(known), "AwaitingApproval", "RolledBack")
            car = failed_car(train)
            assert car["reason"] == "PredictionFailed"
            assert (
                "cannot read its body from ConfigMap "
                f"{op.ns}/iris-requests key flowers.json: the API server answered 429: Too many "
                "requests, please try again later. (asked again until the verification time "
                "was up)"
            ) in car["message"]
            reads = [a.status for a in proxy.seen if (a.resource, a.name) == READ_BODY]
            assert len(reads) >= 5, reads
            assert set(reads) == {429}
        finally:
            op.kill()
            proxy.close()
