"""Argo CD's health checks for Flavor and Train (resource_customizations/adroit.dev/<Kind>/),
run in gopher-lua as Argo CD runs them: on their own test cases (Argo CD's health_test.yaml
layout), and on the objects the operator really writes while trains ride."""

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.operator import Operator, frozen_today, own_operator
from tests.integration.tools import tool
from tests.kube import REPO, apply, eventually, kubectl

CHECKS = REPO / "resource_customizations" / "adroit.dev"


def health(kind: str, obj: dict[str, Any] | Path) -> dict[str, str]:
    """What Argo CD would show for `obj`: {"status": ..., "message": ...}."""
    script = CHECKS / kind / "health.lua"
    if isinstance(obj, Path):
        args, stdin = [str(obj)], None
    else:
        args, stdin = ["-"], json.dumps(obj)
    done = subprocess.run(
        [str(tool("LUA_HEALTH")), str(script), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def cases() -> Iterator[Any]:
    for kind in ("Train", "Flavor"):
        tests = yaml.safe_load((CHECKS / kind / "health_test.yaml").read_text())["tests"]
        for case in tests:
            yield pytest.param(kind, case, id=f"{kind}/{Path(case['inputPath']).stem}")


@pytest.mark.parametrize(("kind", "case"), list(cases()))
def test_health_test_cases(kind: str, case: dict[str, Any]) -> None:
    assert health(kind, CHECKS / kind / case["inputPath"]) == case["healthStatus"]


def test_every_test_data_file_has_a_case() -> None:
    for kind in ("Train", "Flavor"):
        listed = {
            case["inputPath"]
            for case in yaml.safe_load((CHECKS / kind / "health_test.yaml").read_text())["tests"]
        }
        present = {f"testdata/{p.name}" for p in (CHECKS / kind / "testdata").glob("*.yaml")}
        assert listed == present, kind


@pytest.fixture
def op(tmp_path: Path) -> Iterator[Operator]:
    with own_operator(tmp_path) as running:
        yield running


EXPECTED = {
    "Queued": "Progressing",
    "Staging": "Progressing",
    "Verifying": "Progressing",
    "AwaitingApproval": "Suspended",
    "Promoting": "Progressing",
    "Deployed": "Healthy",
    "RolledBack": "Degraded",
    "Aborted": "Degraded",
    "Failed": "Degraded",
}


def watch_train(op: Operator, train: str, until: str) -> dict[str, dict[str, str]]:
    """Argo CD's health of the train at each phase seen until `until`, by phase."""
    seen: dict[str, dict[str, str]] = {}

    def reached() -> bool:
        obj = op.get("train", train)
        phase = (obj.get("status") or {}).get("phase")
        if phase and phase not in seen:
            seen[phase] = health("Train", obj)
        return phase == until

    eventually(reached, timeout=90, what=f"train {train} to be {until}")
    return seen


def test_a_train_and_its_flavor_through_staging_and_production(op: Operator) -> None:
    op.start()
    flavor = op.flavor("ads")
    apply(flavor, user="bob")
    train = op.new_train()
    seen = watch_train(op, train, "AwaitingApproval")
    riding = health("Flavor", op.get("flavor", "ads"))
    assert riding["status"] == "Progressing"
    assert f"rides train {train}" in riding["message"]
    assert seen["AwaitingApproval"]["status"] == "Suspended"
    assert "approve" in seen["AwaitingApproval"]["message"]

    op.approve(train)
    seen.update(watch_train(op, train, "Deployed"))
    assert {"AwaitingApproval", "Deployed"} <= set(seen), seen
    assert {"Staging", "Verifying"} & set(seen), seen
    for phase, status in seen.items():
        assert status["status"] == EXPECTED[phase], (phase, status)
    assert seen["Deployed"]["message"].startswith("Deployed")

    def flavor_healthy() -> dict[str, str] | None:
        status = health("Flavor", op.get("flavor", "ads"))
        return status if status["status"] == "Healthy" else None

    assert "runs in production" in eventually(flavor_healthy, what="the Flavor Healthy")["message"]

    # A change not yet seen by the operator is Progressing, whatever Ready said.
    changed = op.get("flavor", "ads")
    changed["metadata"]["generation"] += 1
    assert health("Flavor", changed)["status"] == "Progressing"


def test_a_train_that_cannot_stage_is_degraded_and_so_is_its_flavor(tmp_path: Path) -> None:
    with own_operator(tmp_path, timeouts={"stagingTimeout": "3s"}) as op:
        op.start()
        apply(op.flavor("ads", nodeSelector={"pool": "nowhere"}), user="bob")
        train = op.new_train()
        seen = watch_train(op, train, "RolledBack")
        assert seen["RolledBack"]["status"] == "Degraded"
        assert "ads" in seen["RolledBack"]["message"]

        def flavor_degraded() -> dict[str, str] | None:
            status = health("Flavor", op.get("flavor", "ads"))
            return status if status["status"] == "Degraded" else None

        degraded = eventually(flavor_degraded, what="the Flavor Degraded")
        assert degraded["message"].startswith("NotDeployed")


def test_a_train_waiting_for_the_window_or_aborted(tmp_path: Path) -> None:
    with own_operator(tmp_path, deployWindow=frozen_today()) as op:
        op.start()
        apply(op.flavor("ads"), user="bob")
        train = op.new_train()

        def waiting() -> dict[str, str] | None:
            obj = op.get("train", train)
            return health("Train", obj) if obj.get("status", {}).get("reason") else None

        status = eventually(waiting, what="the train to say why it waits")
        assert status["status"] == "Suspended", status
        assert status["message"].startswith("Queued for the deploy window")

        kubectl("annotate", "train", train, "-n", op.ns, "adroit.dev/abort=true", user="alice")
        assert watch_train(op, train, "Aborted")["Aborted"]["status"] == "Degraded"
