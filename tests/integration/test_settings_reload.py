"""Settings changed while the operator runs: a valid change applies without a restart, an
invalid one is refused naming each bad field, and the running settings stay."""

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from adroit.handlers import reload
from tests.integration.operator import IMAGE, Operator, own_operator
from tests.kube import eventually

NEW_IMAGE = "registry.local/adroit/serving-sklearn:2022.11"


@pytest.fixture
def op(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Operator]:
    monkeypatch.setattr(reload, "FOLLOW_EVERY", 0.5)
    with own_operator(tmp_path) as running:
        running.start()
        yield running


def production_images(op: Operator) -> list[str]:
    return [
        d["spec"]["template"]["spec"]["containers"][0]["image"]
        for d in op.deployments("production", "ads")
    ]


def test_settings_change_without_a_restart(op: Operator, caplog: pytest.LogCaptureFixture) -> None:
    first = op.ship(op.flavor("ads", version="v1"))
    assert production_images(op) == [IMAGE]
    runtime = next(iter(op.settings["runtimes"]))

    # Invalid: refused, naming the fields; nothing changes.
    bad = json.loads(json.dumps(op.settings))
    bad["timeouts"]["verifyFor"] = "soon"
    bad["runtimes"][runtime] = "two words"
    with caplog.at_level(logging.ERROR, logger="adroit.settings"):
        op.path.write_text(yaml.safe_dump(bad))
        eventually(
            lambda: any("refused" in r.getMessage() for r in caplog.records),
            what="the invalid settings to be refused",
        )
    refusal = next(r.getMessage() for r in caplog.records if "refused" in r.getMessage())
    assert "timeouts.verifyFor" in refusal
    assert "runtimes" in refusal
    assert [t["metadata"]["name"] for t in op.trains()] == [first]

    # Valid: a new serving image is a runtime release, carried by a train of its own.
    good = json.loads(json.dumps(op.settings))
    good["runtimes"][runtime] = NEW_IMAGE
    op.path.write_text(yaml.safe_dump(good))
    release = op.new_train({first})
    op.wait_phase(release, "Deployed")
    eventually(lambda: production_images(op) == [NEW_IMAGE], what="the new image in production")
    assert op.get("train", release)["status"].get("approval") is None, "it needed none"
