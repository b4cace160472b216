"""What the benchmarks share: an operator in namespaces of its own, and a report."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kopf.testing import KopfRunner

REPO = Path(__file__).resolve().parents[1]


def kubectl(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["kubectl", *args], input=stdin, check=True, capture_output=True, text=True
    )
    return done.stdout


def install_webhook_configuration(path: Path) -> None:
    """As an administrator installs it for these settings; the operator only adds caBundle."""
    script = REPO / "hack" / "cluster" / "webhook-configuration.py"
    rendered = subprocess.run(
        [sys.executable, str(script), "--settings", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    kubectl("apply", "--server-side", "--field-manager=adroit-install", "-f", "-", stdin=rendered)


def wait(check: Callable[[], Any], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("gave up waiting")
        time.sleep(0.05)


@dataclass
class Scratch:
    ns: str
    staging: str
    production: str
    sample: dict[str, Any]  # deploy/samples/ads-pctr-v5.yaml, in this namespace

    def apply(self) -> None:
        kubectl("apply", "-f", "-", stdin=json.dumps(self.sample))

    def trains(self) -> set[str]:
        return set(kubectl("get", "trains", "-n", self.ns, "-o", "name").split())

    def new_train(self, known: set[str]) -> str:
        wait(lambda: self.trains() - known)
        return (self.trains() - known).pop()

    def wait_phase(self, train: str, phase: str) -> None:
        kubectl(
            "wait",
            "-n",
            self.ns,
            train,
            f"--for=jsonpath={{.status.phase}}={phase}",
            "--timeout=180s",
        )


@contextmanager
def operator_in_scratch(admission_port: int) -> Iterator[Scratch]:
    """The operator, in-process with the local settings, in fresh namespaces removed after."""
    ns = f"adroit-bench-{uuid.uuid4().hex[:5]}"
    names = {"control": ns, "staging": f"{ns}-staging", "production": f"{ns}-production"}
    for name in names.values():
        kubectl("create", "namespace", name)
    settings = yaml.safe_load((REPO / "settings" / "local.yaml").read_text())
    settings["namespaces"] = names
    settings["admission"] = {"port": admission_port}
    sample = yaml.safe_load((REPO / "deploy" / "samples" / "ads-pctr-v5.yaml").read_text())
    sample["metadata"]["namespace"] = ns
    hook = f"mutatingwebhookconfiguration/adroit-{ns}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "settings.yaml")
        path.write_text(yaml.safe_dump(settings))
        rendered = subprocess.run(
            [
                sys.executable,
                str(REPO / "hack/cluster/webhook-configuration.py"),
                "--settings",
                str(path),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        kubectl(
            "apply", "--server-side", "--field-manager=adroit-install", "-f", "-", stdin=rendered
        )
        os.environ["ADROIT_SETTINGS"] = str(path)
        try:
            with KopfRunner(["run", "--standalone", "--namespace", ns, "-m", "adroit.handlers"]):
                wait(lambda: kubectl("get", hook, "--ignore-not-found", "-o", "name") != "")
                yield Scratch(ns, names["staging"], names["production"], sample)
        finally:
            flavors = kubectl("get", "flavors", "-n", ns, "-o", "name").split()
            if flavors:  # one kubectl for all of them
                kubectl(
                    "patch",
                    "-n",
                    ns,
                    *flavors,
                    "--type=merge",
                    "-p",
                    '{"metadata":{"finalizers":null}}',
                )
            kubectl("delete", "namespace", *names.values(), "--wait=false")
            kubectl("delete", hook, "--ignore-not-found")


def report(title: str, rounds: list[dict[str, float]]) -> None:
    print(title)
    print("  median [min-max]")
    width = max(45, *map(len, rounds[0]))
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        print(
            f"  {key:{width}s} {statistics.median(values):7.2f}"
            f"  [{min(values):.2f}-{max(values):.2f}]"
        )
