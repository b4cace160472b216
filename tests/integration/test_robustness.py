"""The operator can die at any moment, resyncs without writing, and rides out API trouble."""

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from adroit.api.settings import parse_settings
from adroit.api.train import MAX_CARS, CarState, CarStatus, Phase, TrainStatus
from adroit.handlers import reconciler
from adroit.kube import act
from adroit.kube.act import BY_ELEMENT, patch_status
from adroit.kube.cluster import connect
from adroit.kube.metrics import REGISTRY
from adroit.kube.rest import JSON_PATCH, MERGE
from adroit.kube.rest import request as rest_request
from adroit.plan.formation import form_train
from adroit.plan.report import within_room
from adroit.plan.world import World
from tests.integration.operator import Operator, own_operator
from tests.kube import FULL_RIDE, apply, eventually, kubectl
from tests.unit.sim import ALWAYS_OPEN, MONDAY_NOON, settings
from tests.unit.test_formation import LONG_IMAGE, long_flavors


@pytest.fixture
def op(tmp_path: Path) -> Iterator[Operator]:
    # One replica at a time: a restarted one need not wait for its own Lease to expire.
    with own_operator(
        tmp_path, timeouts={"verifyFor": "4s"}, leaderElection={"enabled": False}
    ) as running:
        yield running


def test_killed_at_every_phase_it_carries_on(op: Operator) -> None:
    pool = f"restart-{int(time.time())}"
    label = f"adroit-test/{pool}=yes"
    try:
        op.spawn()
        # The pods need a node label that nobody has yet: the train holds in Staging.
        apply(
            op.flavor("ads", version="v1", nodeSelector={f"adroit-test/{pool}": "yes"}), user="bob"
        )
        train = op.new_train()
        op.wait_phase(train, "Staging")
        op.kill()
        op.spawn()
        time.sleep(2)
        kubectl("label", "node", "kwok-node-0", label)
        op.wait_phase(train, "Verifying")
        op.kill()
        op.spawn()
        op.wait_phase(train, "AwaitingApproval")
        op.kill()
        op.spawn()
        # Without the label, production pods cannot start: the train holds in Promoting.
        kubectl("label", "node", "kwok-node-0", f"adroit-test/{pool}-")
        op.approve_once_served(train)
        op.wait_phase(train, "Promoting")
        eventually(lambda: op.deployments("production", "ads"), what="a production Deployment")
        first = op.deployments("production", "ads")[0]["metadata"]
        op.kill()
        op.spawn()
        time.sleep(2)
        kubectl("label", "node", "kwok-node-0", label)
        status = op.wait_phase(train, "Deployed")["status"]
        op.kill()
        op.spawn()
        time.sleep(4)

        assert [t["metadata"]["name"] for t in op.trains()] == [train], "no duplicate train"
        assert [h["phase"] for h in status["history"]] == FULL_RIDE
        assert status["approval"]["at"], "the approval was kept"
        production = op.deployments("production", "ads")
        assert [d["metadata"]["uid"] for d in production] == [first["uid"]], (
            "one production rollout"
        )
        assert production[0]["metadata"]["generation"] == 1
        assert op.phase(train) == "Deployed"
    finally:
        kubectl("label", "node", "kwok-node-0", f"adroit-test/{pool}-", check=False)


def test_after_deployed_a_restart_writes_nothing(
    op: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[tuple[str, str]] = []
    original = aiohttp.ClientSession._request

    async def counting(
        self: aiohttp.ClientSession, method: str, url: Any, *args: Any, **kwargs: Any
    ) -> Any:
        # A SelfSubjectReview (who am I, asked at start) is a POST that stores nothing.
        if method.upper() not in ("GET", "HEAD") and "selfsubjectreviews" not in str(url):
            writes.append((method.upper(), str(url)))
        return await original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "_request", counting)
    op.start()
    op.ship(op.flavor("ads", version="v1"))
    time.sleep(2)
    op.stop()
    print(f"\nwrites for one train of one flavor: {len(writes)}")

    writes.clear()
    op.start()
    time.sleep(3)  # the initial listing
    passes = REGISTRY.get_sample_value(
        "controller_runtime_reconcile_total", {"controller": "train", "result": "success"}
    )
    time.sleep(3)  # three poll intervals: only a train in motion is looked at as time passes
    idle_passes = (
        REGISTRY.get_sample_value(
            "controller_runtime_reconcile_total", {"controller": "train", "result": "success"}
        )
        or 0
    ) - (passes or 0)
    op.stop()
    assert writes == []
    assert idle_passes == 0, "nothing in motion: time alone wakes nothing"


def test_a_change_that_a_train_takes_at_once_writes_its_status_once(
    op: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no train on the tracks, a change is on a train a moment later: its Flavor's
    status says OnTrain in one write, not AwaitingTrain first (for a platform-wide change,
    a write per flavor that nobody reads)."""
    reasons: dict[str, list[str]] = {}
    original = aiohttp.ClientSession._request

    async def recording(
        self: aiohttp.ClientSession, method: str, url: Any, *args: Any, **kwargs: Any
    ) -> Any:
        path = str(url).split("?")[0]
        if method.upper() == "PATCH" and "/flavors/" in path and path.endswith("/status"):
            status = json.loads(kwargs["data"])["status"]
            pending = [c for c in status.get("conditions", []) if c["type"] == "PendingChanges"]
            name = path.rsplit("/", 2)[-2]
            reasons.setdefault(name, []).extend(c["reason"] for c in pending)
        return await original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "_request", recording)
    op.start()
    names = ["first", "second", "third"]
    flavors = [op.flavor(name, version=f"{name}-v1") for name in names]
    apply({"apiVersion": "v1", "kind": "List", "items": flavors}, user="bob")  # one change
    train = op.new_train()
    assert sorted(c["flavor"] for c in op.get("train", train)["spec"]["cars"]) == names

    def on_train() -> bool:
        return all(
            {c["type"]: c["reason"] for c in op.get("flavor", n)["status"]["conditions"]}.get(
                "PendingChanges"
            )
            == "OnTrain"
            for n in names
        )

    eventually(on_train, what="every Flavor's status says OnTrain")
    op.stop()
    assert {n: reasons.get(n, [""])[0] for n in names} == dict.fromkeys(names, "OnTrain")
    assert all("AwaitingTrain" not in said for said in reasons.values()), reasons


def test_a_conflict_is_reported_not_raised(op: Operator) -> None:
    train = {
        "apiVersion": "adroit.dev/v1alpha1",
        "kind": "Train",
        "metadata": {"name": "conflicted", "namespace": op.ns},
        "spec": {"engineer": "bob", "cars": [{"flavor": "a", "remove": True}]},
    }
    apply(train)
    stale = op.get("train", "conflicted")["metadata"]["resourceVersion"]
    kubectl("annotate", "train", "conflicted", "-n", op.ns, "touched=yes")

    async def attempt(version: str) -> bool:
        api = await connect()
        try:
            written = await patch_status(
                api,
                "Train",
                op.ns,
                "conflicted",
                version,
                {},
                {"phase": "Queued", "reason": "Test"},
            )
            return written is not None
        finally:
            await api.close()

    assert asyncio.run(attempt(stale)) is False
    fresh = op.get("train", "conflicted")["metadata"]["resourceVersion"]
    assert asyncio.run(attempt(fresh)) is True
    assert op.get("train", "conflicted")["status"]["reason"] == "Test"


def test_a_long_list_in_status_is_written_by_its_changed_elements(op: Operator) -> None:
    flavors = [f"car-{i:03d}" for i in range(BY_ELEMENT + 36)]
    train = {
        "apiVersion": "adroit.dev/v1alpha1",
        "kind": "Train",
        "metadata": {"name": "long", "namespace": op.ns},
        "spec": {"engineer": "bob", "cars": [{"flavor": f, "remove": True} for f in flavors]},
    }
    apply(train)
    first = {"phase": "Staging", "cars": [{"flavor": f, "staging": "Applying"} for f in flavors]}
    sent: list[tuple[str, Any]] = []

    async def attempt(version: str, current: dict[str, Any], desired: dict[str, Any]) -> bool:
        api = await connect()
        real = rest_request

        async def spy(*args: Any, **kw: Any) -> dict[str, Any]:
            sent.append((kw.get("content_type", ""), kw.get("body")))
            return await real(*args, **kw)

        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(act, "request", spy)
                written = await patch_status(api, "Train", op.ns, "long", version, current, desired)
            return written is not None
        finally:
            await api.close()

    # No status stored yet: a path under it does not exist, and the merge patch writes it.
    version = op.get("train", "long")["metadata"]["resourceVersion"]
    one_off = [{**first["cars"][0], "staging": "Pending"}, *first["cars"][1:]]
    assert asyncio.run(attempt(version, {"cars": one_off}, first))
    assert [kind for kind, _ in sent] == [JSON_PATCH, MERGE]
    assert op.get("train", "long")["status"] == first

    second = {**first, "cars": list(first["cars"])}
    second["cars"][7] = {"flavor": flavors[7], "staging": "Verified", "reason": "Healthy"}
    stale = version
    sent.clear()
    assert asyncio.run(attempt(stale, first, second)) is False  # refused: it changed since
    assert [kind for kind, _ in sent] == [JSON_PATCH]  # a 409, as for the merge patch
    stored = op.get("train", "long")
    assert stored["status"] == first
    assert asyncio.run(attempt(stored["metadata"]["resourceVersion"], first, second))
    assert op.get("train", "long")["status"] == second
    kind, body = sent[-1]
    assert kind == JSON_PATCH
    assert [op_["path"] for op_ in body] == ["/metadata/resourceVersion", "/status/cars/7"]


def test_an_unreachable_api_server_is_retried_with_backoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = yaml.safe_load(kubectl("config", "view", "--raw", "--minify").stdout)
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    broken = tmp_path / "unreachable.kubeconfig"
    broken.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(broken))
    settings = parse_settings(
        "runtimes: {sklearn: repo/sklearn:1}\ntimeouts: {pollInterval: 1s}\n"
        "leaderElection: {enabled: false}"  # the caches' own retries, without a Lease first
    )

    async def run_for(seconds: float) -> bool:
        task = asyncio.create_task(reconciler.run(settings))
        await asyncio.sleep(seconds)
        alive = not task.done()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return alive

    with caplog.at_level(logging.WARNING, logger="adroit.informer"):
        assert asyncio.run(run_for(4.5)), "the loop must survive API errors"
    retries = [
        r.getMessage() for r in caplog.records if "Informer(Flavor in adroit)" in r.getMessage()
    ]
    assert len(retries) >= 3, retries
    assert "again in 0.5s" in retries[0]
    assert "again in 1.0s" in retries[1]
    assert "again in 2.0s" in retries[2]


def test_the_largest_train_formed_can_still_say_that_every_car_failed(op: Operator) -> None:
    """etcd keeps an object of at most 1.5 MiB. The longest cars a train can carry (a long
    image, three authors) and every one of them refused by the API server with a long
    message: the train the operator forms, and then its status, are both written."""
    config = settings(ALWAYS_OPEN.replace("repo/sklearn:1", LONG_IMAGE))
    formation = form_train(World(now=MONDAY_NOON, flavors=long_flavors(MAX_CARS)), config)
    assert formation is not None
    train = formation.train
    train["metadata"]["namespace"] = op.ns
    cars = train["spec"]["cars"]
    message = "the API server refused its staging write: " + "x" * 1000
    failed = TrainStatus(
        phase=Phase.ROLLED_BACK,
        cars=[
            CarStatus(flavor=c["flavor"], staging=CarState.FAILED, message=message) for c in cars
        ],
    )

    async def form_and_fail() -> dict[str, Any] | None:
        api = await connect()
        try:
            made = await act.create(api, train)  # as the operator forms one
            assert made is not None
            meta = made["metadata"]
            return await patch_status(
                api,
                "Train",
                op.ns,
                meta["name"],
                made["metadata"]["resourceVersion"],
                {},
                within_room(failed).to_wire(),
            )
        finally:
            await api.close()

    written = asyncio.run(form_and_fail())
    assert written is not None
    # As etcd keeps it, managedFields included: the car lists are atomic, so the API server
    # records no entry per car (with a list keyed by flavor, as many bytes again as the cars).
    assert len(json.dumps(written["metadata"].get("managedFields"))) < 2_000
    assert len(json.dumps(written)) < 1_300_000
    stored = op.get("train", formation.name)
    assert [c["flavor"] for c in stored["status"]["cars"]] == [c["flavor"] for c in cars]
    assert {c["staging"] for c in stored["status"]["cars"]} == {"Failed"}
    assert stored["status"]["cars"][0]["message"].startswith(message[:100])
    assert len(json.dumps(stored)) < 1_300_000
