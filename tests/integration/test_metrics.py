"""/metrics, /healthz and /readyz of a running operator, scraped by a real Prometheus."""

import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.operator import Operator, free_port, own_operator
from tests.kube import apply, eventually


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A Prometheus on loopback scraping a port chosen here every second: (its URL, the port)."""
    if shutil.which("prometheus") is None and not os.environ.get("CI"):
        pytest.skip("no prometheus on PATH: hack/tools/debs.sh installs the Debian package")
    target, port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "adroit", "static_configs": [{"targets": [f"127.0.0.1:{target}"]}]}
                ],
            }
        )
    )
    with (tmp_path / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: get(f"{url}/-/ready")[0] == 200, what="Prometheus to be ready")
        yield url, target
    finally:
        process.terminate()
        process.wait(timeout=30)


def query(url: str, promql: str) -> list[dict[str, object]]:
    status, body = get(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
    assert status == 200, body
    return list(json.loads(body)["data"]["result"])


def test_prometheus_sees_a_train_go_through_its_phases(
    tmp_path: Path, prometheus: tuple[str, int]
) -> None:
    url, metrics = prometheus
    health = free_port()
    with own_operator(tmp_path) as op:
        op.spawn(
            args=(
                f"--metrics-bind-address=127.0.0.1:{metrics}",
                f"--health-probe-bind-address=127.0.0.1:{health}",
            )
        )
        assert get(f"http://127.0.0.1:{health}/healthz")[0] == 200
        eventually(
            lambda: get(f"http://127.0.0.1:{health}/readyz")[0] == 200,
            what="ready: webhook listening, caches synced",
        )
        apply(op.flavor("ads", version="v1"), user="bob")
        train = op.new_train()

        def seen(promql: str) -> bool:
            return any(float(str(r["value"][1])) >= 1 for r in query(url, promql))  # type: ignore[index]

        op.wait_phase(train, "AwaitingApproval")
        eventually(
            lambda: seen(f'adroit_train_phase{{train="{train}",phase="AwaitingApproval"}}'),
            what=f"Prometheus to see {train} waiting for approval",
        )
        op.approve(train)
        op.wait_phase(train, "Deployed")
        eventually(
            lambda: seen(f'adroit_train_phase{{train="{train}",phase="Deployed"}}'),
            what=f"Prometheus to see {train} Deployed",
        )
        for phase in ("Staging", "Verifying", "AwaitingApproval", "Promoting", "Deployed"):
            assert seen(f'adroit_train_transitions_total{{phase="{phase}"}}'), phase
        assert seen('leader_election_master_status{name="adroit-leader"}')
        assert seen('controller_runtime_reconcile_total{controller="flavor",result="success"}')
        assert seen('adroit_approvals_total{result="signed"}')
        assert seen('adroit_api_requests_total{verb="PATCH"}')
        assert seen('adroit_flavors{state="ready"}')
        assert seen("adroit_admission_duration_seconds_count")
        _: Operator = op
