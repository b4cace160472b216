"""The operator, running in-process against the cluster, sees Flavors and reports on them."""

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.operator import Operator, own_operator
from tests.kube import apply, eventually


@pytest.fixture
def op(tmp_path: Path) -> Iterator[Operator]:
    with own_operator(
        tmp_path,
        deployWindow={
            "timezone": "UTC",
            "freezes": [{"start": "2000-01-01", "end": "2999-12-31", "reason": "observing only"}],
        },
    ) as running:
        yield running


def test_operator_records_what_it_saw_of_a_flavor(op: Operator) -> None:
    op.start()
    apply(op.flavor("seen", version="first"), user="bob")

    def status(generation: int) -> dict | None:
        seen = op.get("flavor", "seen").get("status", {})
        return seen if seen.get("observedGeneration") == generation else None

    first = eventually(lambda: status(1), what="observedGeneration 1")
    assert len(first["revision"]) == 8
    conditions = {c["type"]: c for c in first["conditions"]}
    assert conditions["PendingChanges"]["status"] == "True"
    assert conditions["InProduction"]["status"] == "False"
    eventually(
        lambda: op.get("flavor", "seen")["metadata"].get("finalizers") == ["adroit.dev/finalizer"],
        what="the finalizer that holds a flavor until production no longer runs it",
    )

    apply(op.flavor("seen", version="second"), user="bob")
    second = eventually(lambda: status(2), what="observedGeneration 2")
    assert second["revision"] != first["revision"]
    # The operator never writes a Flavor's spec: what the user applied stays as it was.
    assert op.get("flavor", "seen")["spec"]["model"]["version"] == "second"


def test_startup_names_the_cluster_and_namespaces(
    op: Operator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        op.start()
        line = eventually(
            lambda: next(
                (
                    r.getMessage()
                    for r in caplog.records
                    if r.getMessage().startswith("Adroit starting against https://")
                ),
                None,
            ),
            what="the startup line",
        )
    assert f"Flavors and Trains in '{op.ns}'" in line
    assert f"stages '{op.staging}' and '{op.production}'" in line
