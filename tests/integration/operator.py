"""The operator in-process (kopf.testing.KopfRunner), in namespaces of its own."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from kopf.testing import KopfRunner
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from adroit.api.settings import parse_settings
from adroit.kube.cluster import connect
from adroit.kube.rest import KINDS, MERGE, request, retryable
from adroit.plan.webhooks import configuration_for
from tests.integration.users import bind_in
from tests.kube import REPO, apply, eventually, kubectl

IMAGE = "registry.local/adroit/serving-sklearn:2022.10"


async def _forget_once(api: client.ApiClient, kind: str, namespace: str) -> list[BaseException]:
    """One pass over `kind` in `namespace`: what failed (an object gone meanwhile has not)."""
    try:
        listed = await request(api, "GET", KINDS[kind].path(namespace))
    except ApiException as error:
        return [error]
    answers = await asyncio.gather(
        *(
            request(
                api,
                "PATCH",
                KINDS[kind].path(namespace, item["metadata"]["name"]),
                body={"metadata": {"finalizers": None}},
                content_type=MERGE,
            )
            for item in listed["items"]
            if item["metadata"].get("finalizers")
        ),
        return_exceptions=True,
    )
    return [
        a
        for a in answers
        if isinstance(a, BaseException) and not (isinstance(a, ApiException) and a.status == 404)
    ]


async def forget_finalizers(namespace: str, within: float = 60) -> None:
    """Take the finalizers off every Flavor and Train in `namespace`, all at once: a test
    may leave hundreds, and kubectl patches one object at a time, five requests a second.
    A busy API server (a CRD just changed: 429) is asked again."""
    api = await connect()
    deadline = time.monotonic() + within
    try:
        for kind in ("Flavor", "Train"):
            while failed := await _forget_once(api, kind, namespace):
                final = next((e for e in failed if not retryable(e)), None)
                if final is not None or time.monotonic() > deadline:
                    raise final or failed[0]
                await asyncio.sleep(1)
    finally:
        await api.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Webhook:
    """A Slack-compatible incoming webhook on loopback that remembers what it was told."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.attempts = 0
        self.failing = 0  # the next this many requests are answered 503 (a webhook that is down)
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.attempts += 1
                if hook.failing > 0:
                    hook.failing -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                hook.texts.append(json.loads(body)["text"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Operator:
    """Adroit with its own namespaces and settings; start(), stop(), start() again."""

    def __init__(self, tmp: Path, webhook: Webhook | None = None, **settings: Any) -> None:
        suffix = uuid.uuid4().hex[:5]
        self.ns = f"adroit-t{suffix}"
        self.staging = f"{self.ns}-staging"
        self.production = f"{self.ns}-production"
        timeouts = {
            "stagingTimeout": "60s",
            "verifyFor": "3s",
            "promotionLeadTime": "0s",
            "promotionTimeout": "60s",
            "pollInterval": "1s",
        }
        timeouts.update(settings.pop("timeouts", {}))
        self.settings: dict[str, Any] = {
            "namespaces": {
                "control": self.ns,
                "staging": self.staging,
                "production": self.production,
            },
            "deployWindow": {"alwaysOpen": True},
            "timeouts": timeouts,
            "runtimes": {"scikit-learn-2022-10": IMAGE},
            "defaultRuntime": "scikit-learn-2022-10",
            "admission": {"port": free_port()},
            **settings,
        }
        if webhook is not None:
            self.settings["notifications"] = {"webhookUrl": webhook.url}
        self.path = tmp / f"settings-{suffix}.yaml"
        self.runner: KopfRunner | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.log = tmp / f"operator-{suffix}.log"
        for name in (self.ns, self.staging, self.production):
            kubectl("create", "namespace", name)
        bind_in(self.ns)

    def write_settings(self) -> None:
        self.path.write_text(yaml.safe_dump(self.settings))
        self.install_webhook_configuration()

    def admission_enabled(self) -> bool:
        return bool(self.settings.get("admission", {}).get("enabled", True))

    def install_webhook_configuration(self) -> None:
        """As `make run` does: an administrator applies it, the operator adds only caBundle."""
        if self.admission_enabled():
            settings = parse_settings(self.path.read_text(), str(self.path))
            manifest = yaml.safe_dump(configuration_for(settings))
            kubectl(
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=adroit-install",
                "-f",
                "-",
                stdin=manifest,
            )

    def start(self) -> None:
        self.write_settings()
        os.environ["ADROIT_SETTINGS"] = str(self.path)
        args = ["run", "--standalone", "--namespace", self.ns, "-m", "adroit.handlers"]
        self.runner = KopfRunner(args, timeout=60)
        self.runner.__enter__()
        self.wait_ready()

    def wait_ready(self) -> None:
        """Ready when its certificate is in its webhook configuration (Flavors never wait)."""
        if self.admission_enabled():
            hook = f"mutatingwebhookconfiguration/adroit-{self.ns}"

            def has_certificate() -> bool:
                out = kubectl("get", hook, "-o", "json", check=False).stdout
                hooks = json.loads(out or "{}").get("webhooks") or [{}]
                return all(h.get("clientConfig", {}).get("caBundle") for h in hooks)

            eventually(has_certificate, what="its certificate in its webhook configuration")

    def stop(self) -> None:
        if self.runner is not None:
            runner, self.runner = self.runner, None
            runner.__exit__(None, None, None)
            assert runner.exit_code == 0, runner.output
            assert runner.exception is None, runner.exception

    def spawn(
        self,
        kubeconfig: Path | None = None,
        replica: str = "replica-0",
        args: tuple[str, ...] = ("--metrics-bind-address=0", "--health-probe-bind-address=0"),
    ) -> None:
        """Run `adroit run` as its own process, as in a cluster, to kill it at will; several
        replicas may run at once, each named as its pod would be (POD_NAME)."""
        self.write_settings()
        env = dict(os.environ, POD_NAME=replica)
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        with self.log.open("ab") as log:
            self.processes[replica] = subprocess.Popen(
                [sys.executable, "-m", "adroit", "run", "--settings", str(self.path), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.wait_ready()

    def kill(self, replica: str | None = None) -> None:
        """SIGKILL (one replica, or every one): no cleanup, no last words, like a node that
        dies."""
        for name in [replica] if replica else list(self.processes):
            process = self.processes.pop(name, None)
            if process is not None:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)

    def cleanup(self) -> None:
        self.stop()
        self.kill()
        asyncio.run(forget_finalizers(self.ns))
        kubectl(
            "delete",
            "namespace",
            self.ns,
            self.staging,
            self.production,
            "--wait=false",
            check=False,
        )
        hook = f"mutatingwebhookconfiguration/adroit-{self.ns}"
        kubectl("delete", hook, "--ignore-not-found", check=False)

    def rbac(self) -> str:
        """deploy/rbac/operator.yaml, for this operator's namespaces and names."""
        text = (REPO / "deploy" / "rbac" / "operator.yaml").read_text()
        text = text.replace("adroit-adroit", f"adroit-{self.ns}")
        text = text.replace("adroit-staging", self.staging)
        text = text.replace("adroit-production", self.production)
        text = text.replace("namespace: adroit\n", f"namespace: {self.ns}\n")
        text = text.replace("namespace: adroit}", f"namespace: {self.ns}}}")
        text = text.replace("name: adroit-operator-stage", f"name: {self.ns}-operator-stage")
        text = text.replace("name: adroit-operator\n", f"name: {self.ns}-operator\n")
        return text.replace("name: adroit-operator,", f"name: {self.ns}-operator,")

    # --- looking at it ---------------------------------------------------

    def events(self, train: str, field: str = "message") -> str:
        """The train's Events, one field of each (message, reason), space-separated."""
        return kubectl(
            "get",
            "events",
            "-n",
            self.ns,
            "--field-selector",
            f"involvedObject.name={train}",
            "-o",
            f"jsonpath={{.items[*].{field}}}",
        ).stdout

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        out = kubectl("get", kind, name, "-n", namespace or self.ns, "-o", "json")
        return json.loads(out.stdout)

    def trains(self) -> list[dict[str, Any]]:
        items = json.loads(kubectl("get", "trains", "-n", self.ns, "-o", "json").stdout)["items"]
        return sorted(
            items, key=lambda t: (t["metadata"]["creationTimestamp"], t["metadata"]["name"])
        )

    def phase(self, train: str) -> str | None:
        return self.get("train", train).get("status", {}).get("phase")

    def wait_phase(self, train: str, phase: str, timeout: float = 90) -> dict[str, Any]:
        eventually(
            lambda: self.phase(train) == phase,
            timeout=timeout,
            what=f"train {train} to be {phase} (is {self.phase(train)})",
        )
        return self.get("train", train)

    def new_train(self, known: set[str] | None = None, timeout: float = 30) -> str:
        known = known or set()

        def fresh() -> str | None:
            names = [t["metadata"]["name"] for t in self.trains()]
            return next((n for n in names if n not in known), None)

        return str(eventually(fresh, timeout=timeout, what="a train to form"))

    def approve(self, train: str, user: str = "alice") -> None:
        kubectl("annotate", "train", train, "-n", self.ns, "adroit.dev/approved=true", user=user)

    def approve_once_served(self, train: str, user: str = "alice") -> None:
        """Approve as soon as a webhook answers again (after a restart or an outage)."""

        refusal: list[str] = [""]

        def approved() -> bool:
            done = kubectl(
                "annotate",
                "train",
                train,
                "-n",
                self.ns,
                "adroit.dev/approved=true",
                user=user,
                check=False,
            )
            refusal[0] = done.stderr.strip()
            return done.returncode == 0

        try:
            eventually(approved, what="the approval to pass the webhook")
        except AssertionError as error:
            raise AssertionError(f"{error}; the last answer: {refusal[0]}") from None

    def ship(self, manifest: dict[str, Any], author: str = "bob", approver: str = "alice") -> str:
        """Apply a Flavor, approve the train it forms, wait until Deployed; the train's name."""
        known = {t["metadata"]["name"] for t in self.trains()}
        apply(manifest, user=author)
        train = self.new_train(known)
        self.wait_phase(train, "AwaitingApproval")
        self.approve(train, approver)
        self.wait_phase(train, "Deployed")
        return train

    def deployments(self, stage: str, flavor: str) -> list[dict[str, Any]]:
        namespace = self.staging if stage == "staging" else self.production
        out = kubectl(
            "get", "deployments", "-n", namespace, "-l", f"adroit.dev/flavor={flavor}", "-o", "json"
        )
        return list(json.loads(out.stdout)["items"])

    def model_version(self, stage: str, flavor: str) -> str | None:
        versions = [
            env["value"]
            for d in self.deployments(stage, flavor)
            for env in d["spec"]["template"]["spec"]["containers"][0]["env"]
            if env["name"] == "MODEL_VERSION"
        ]
        return versions[0] if len(versions) == 1 else (None if not versions else ",".join(versions))

    def flavor(self, name: str, version: str = "694a577a", **spec: Any) -> dict[str, Any]:
        from tests.kube import flavor

        manifest = flavor(name, **spec)
        manifest["metadata"]["namespace"] = self.ns
        manifest["spec"]["model"]["version"] = version
        return manifest


def window_closing_in(seconds: int) -> dict[str, Any]:
    """A deploy window, in a zone where it is daytime now, that closes `seconds` from now."""
    now = datetime.now(UTC)
    for offset in range(-12, 13):
        local = now + timedelta(hours=offset)
        if 2 <= local.hour <= 21:
            zone = "Etc/GMT" + (f"{-offset:+d}" if offset else "")
            start = (local - timedelta(hours=1)).strftime("%H:%M:%S")
            end = (local + timedelta(seconds=seconds)).strftime("%H:%M:%S")
            return {
                "timezone": zone,
                "days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
                "start": start,
                "end": end,
            }
    raise AssertionError("no zone has daytime now")


def frozen_today() -> dict[str, Any]:
    """A deploy window frozen from yesterday to tomorrow, everywhere."""
    today = datetime.now(UTC).date()
    return {
        "timezone": "UTC",
        "freezes": [
            {
                "start": str(today - timedelta(days=1)),
                "end": str(today + timedelta(days=1)),
                "reason": "test freeze",
            }
        ],
    }


@contextmanager
def own_operator(tmp: Path, **kwargs: Any) -> Iterator[Operator]:
    """An Operator whose namespaces are deleted afterwards."""
    op = Operator(tmp, **kwargs)
    try:
        yield op
    finally:
        op.cleanup()
