"""The operator, running in-process against the cluster, sees Flavors and Trains."""

from collections.abc import Iterator

import pytest
from kopf.testing import KopfRunner

from tests.kube import REPO, apply, delete, eventually, flavor, get, unique


@pytest.fixture
def operator(monkeypatch: pytest.MonkeyPatch) -> Iterator[KopfRunner]:
    monkeypatch.setenv("ADROIT_SETTINGS", str(REPO / "settings" / "local.yaml"))
    args = ["run", "--standalone", "--namespace", "adroit", "-m", "adroit.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        yield runner
    assert runner.exit_code == 0, runner.output
    assert runner.exception is None


def _status(kind: str, name: str) -> dict:
    return get(kind, name).get("status", {})


def test_operator_records_what_it_saw_of_a_flavor(operator: KopfRunner) -> None:
    name = unique("seen")
    apply(flavor(name), user="bob")
    try:
        first = eventually(
            lambda: (s := _status("flavor", name)).get("observedGeneration") == 1 and s,
            what="observedGeneration 1",
        )
        assert len(first["revision"]) == 8
        pending = {c["type"]: c for c in first["conditions"]}["PendingChanges"]
        assert (pending["status"], pending["reason"]) == ("True", "AwaitingTrain")

        changed = flavor(name)
        changed["spec"]["model"]["version"] = "second-version"
        apply(changed, user="bob")
        second = eventually(
            lambda: (s := _status("flavor", name)).get("observedGeneration") == 2 and s,
            what="observedGeneration 2",
        )
        assert second["revision"] != first["revision"]
        # The operator never writes a Flavor's spec: what the user applied stays as it was.
        assert get("flavor", name)["spec"]["model"]["version"] == "second-version"
    finally:
        delete("flavor", name)


def test_operator_queues_a_new_train(operator: KopfRunner) -> None:
    name = unique("train")
    apply(
        {
            "apiVersion": "adroit.dev/v1alpha1",
            "kind": "Train",
            "metadata": {"name": name, "namespace": "adroit"},
            "spec": {"engineer": "bob", "cars": [{"flavor": "gone", "remove": True}]},
        },
        user="bob",
    )
    try:
        status = eventually(lambda: _status("train", name).get("phase"), what="a phase")
        assert status == "Queued"
        seen = _status("train", name)
        assert seen["carCount"] == 1
        assert [h["reason"] for h in seen["history"]] == ["Created"]
    finally:
        delete("train", name)
