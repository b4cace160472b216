"""The reconciler's figures at scale, printed side by side with what the control plane does alone.

    make bench-scale N=2000      (N flavors; default 2,000)

Works only through the operator's public surface: the Kubernetes API, and
`python -m adroit run --settings FILE` as a separate process in namespaces of
the benchmark's own. In one run, in this order:

0. Extra kwok nodes (the shape of hack/cluster/nodes.yaml) for about 3N pods.
1. Reference: N plain Deployments (one replica, the flavors' pod shape) written
   at once in a scratch namespace, timed until all are Available, then deleted.
   Then the floor of a two-stage rollout: what Adroit writes for N flavors (in
   staging a Deployment and two Services each; once they are Available, in
   production a Deployment, two Services, a budget and a route each), written
   the same way by a plain client, with no train in between.
2. The operator starts. N Flavors are written at once (server-side apply, in
   parallel); every train that reaches AwaitingApproval is approved by alice;
   timed until every Flavor is InProduction. verifyFor is reported apart.
   Meanwhile server-side dry runs time the admission webhook: a Flavor change
   (admin) once a second, a train annotation (alice) every 10 seconds. The CPU
   that each process of the control plane and the operator spent is printed.
3. An idle minute: the operator's API writes, CPU and RSS. Then the train
   annotation of step 2, ten times a second apart, on the largest train at
   rest: what its review costs when the API server has a core to spare.
4. apply -> staging Deployment created, one probe Flavor at a time with the N
   present (each probe's train is then aborted, so the next one departs), and
   the same for a minimal client written here (watch Flavors, create a
   Deployment) in a namespace of its own.
5. From the operator's log, its own warnings: every single step of its event
   loop longer than 50 ms, with how much of it the loop's thread ran.

Writes are counted by a small HTTP proxy (this file, `--proxy`) between the
operator and the API server: the operator's kubeconfig points at the proxy on
127.0.0.1 with the token of a ServiceAccount bound to cluster-admin, the proxy
forwards every request over TLS to the API server and counts the ones that are
not GET, HEAD or OPTIONS. It sees everything the operator sends, whatever
client library the operator uses, and nothing any other client sends.

Every wait is bounded: a figure that does not finish says TIMEOUT or FAILED
and the run goes on. Everything made here is removed at the end, on Ctrl-C too.
Environment: IDLE (seconds, default 60), PROBES (default 50), TIMEOUT (seconds
for each of the two rollouts, default max(300, N * 0.75)), KEEP_LOG=0 to drop
the operator's log, REFERENCES=0 to skip step 1 (for a quicker look at the operator).
"""

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from scratch import install_webhook_configuration

REPO = Path(__file__).resolve().parents[1]
FINISHED = {"Deployed", "RolledBack", "Aborted", "Failed"}
RUNTIME = "scikit-learn-2022-10"
MEMORY_MIB = 64
PODS_PER_NODE = 500
PROBE_EVERY = 1.0  # s between two admission probes of a Flavor while the rollout runs
# s between two probes of the moving Train. A metadata change of a 2,000-car Train costs
# the API server about 0.6 s of CPU (decoding, the JSON patch, schema and CEL validation of
# every car, managedFields), dry run or not: probed every second, the probes alone took
# more than half of its core, and the rollout they were measuring waited for them.
TRAIN_PROBE_EVERY = 10.0
TRAIN_AT_REST = 10  # dry-run annotations of the largest train once everything has settled


# --- the API, raw JSON over aiohttp ----------------------------------------------------------


RETRIES = 4  # of a request the API server was too busy to finish


class ApiError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"{status}: {text[:300]}")
        self.status = status


def kubectl(*args: str, timeout: float = 60, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["kubectl", *args],
        input=stdin,
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.stdout


class Kube:
    """One kubeconfig context's identity (client certificate or token), JSON in and out."""

    def __init__(self, context: str | None, secrets: Path) -> None:
        args = ["config", "view", "--raw", "--minify", "-o", "json"]
        if context:
            args += ["--context", context]
        cfg = json.loads(kubectl(*args))
        cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
        self.server = cluster["server"].rstrip("/")
        self.ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
        self.ssl = ssl.create_default_context(cadata=self.ca)
        self.headers = {"Accept": "application/json"}
        if "token" in user:
            self.headers["Authorization"] = f"Bearer {user['token']}"
        if "client-certificate-data" in user:
            name = context or "default"
            cert, key = secrets / f"{name}.crt", secrets / f"{name}.key"
            for path, data in ((cert, "client-certificate-data"), (key, "client-key-data")):
                path.write_bytes(base64.b64decode(user[data]))
                path.chmod(0o600)
            self.ssl.load_cert_chain(cert, key)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.ssl, limit=64),
                # A watch event is one line: a Train of 2,000 cars is about a megabyte.
                read_bufsize=2**22,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        ctype: str = "application/json",
        params: dict[str, str] | None = None,
        seconds: float = 30,
        ok: Iterable[int] = (),
        retries: int = RETRIES,
    ) -> Any:
        headers = dict(self.headers)
        data = None
        if body is not None:
            headers["Content-Type"] = ctype
            data = json.dumps(body)
        # A request that may be sent twice (a read, an apply or merge patch, a delete) is
        # sent again when the API server is too busy to finish it (429, 5xx), after the
        # Retry-After it gives or a growing pause, as client-go does; a create is not (a
        # second one would meet the first).
        if method == "POST" or ctype == "application/json-patch+json":
            retries = 0
        attempt = 0
        while True:
            async with self.session.request(
                method,
                self.server + path,
                data=data,
                params=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=seconds),
            ) as resp:
                status, text = resp.status, await resp.text()
                pause = resp.headers.get("Retry-After", "")
            if (status == 429 or status >= 500) and attempt < retries:
                await asyncio.sleep(float(pause) if pause.isdigit() else min(2**attempt, 8))
                attempt += 1
                continue
            if status >= 400 and status not in ok:
                raise ApiError(status, text)
            return json.loads(text) if text and status < 400 else None

    async def apply(self, path: str, obj: dict[str, Any], **kw: Any) -> Any:
        params = {"fieldManager": "adroit-bench", "force": "true", **kw.pop("params", {})}
        return await self.call(
            "PATCH", path, obj, ctype="application/apply-patch+yaml", params=params, **kw
        )

    async def mirror(
        self, path: str, on_event: Callable[[str, dict[str, Any]], None], ready: asyncio.Event
    ) -> None:
        """List then watch `path` for ever (until cancelled), relisting when the watch expires.

        on_event(type, object) sees every object of each list as "SYNC" and every watch event;
        the time of the call is when the event reached this process.
        """
        while True:
            try:
                listed = await self.call("GET", path, seconds=120)
            except (aiohttp.ClientError, TimeoutError, ApiError):
                # A kind installed a moment ago is not served yet (404) for a few seconds.
                await asyncio.sleep(0.5)
                continue
            for item in listed["items"]:
                on_event("SYNC", item)
            ready.set()
            rv = listed["metadata"]["resourceVersion"]
            params = {
                "watch": "1",
                "resourceVersion": rv,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": "240",
            }
            try:
                async with self.session.get(
                    self.server + path,
                    params=params,
                    headers=self.headers,
                    timeout=aiohttp.ClientTimeout(total=300, sock_read=280),
                ) as resp:
                    if resp.status >= 400:
                        raise ApiError(resp.status, await resp.text())
                    async for line in resp.content:
                        event = json.loads(line)
                        kind = event["type"]
                        if kind == "ERROR":
                            break  # 410 Gone, most likely: list again
                        if kind != "BOOKMARK":
                            on_event(kind, event["object"])
            except (aiohttp.ClientError, TimeoutError, ApiError, ValueError):
                await asyncio.sleep(0.5)


def crd_path(ns: str, plural: str, name: str = "") -> str:
    return f"/apis/adroit.dev/v1alpha1/namespaces/{ns}/{plural}" + (f"/{name}" if name else "")


def deploy_path(ns: str, name: str = "") -> str:
    return f"/apis/apps/v1/namespaces/{ns}/deployments" + (f"/{name}" if name else "")


# --- what the benchmark writes -------------------------------------------------------------


def flavor(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "adroit.dev/v1alpha1",
        "kind": "Flavor",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "owner": "bench",
            "stagingOnly": False,
            "model": {
                "name": name.replace("-", "_"),
                "version": str(uuid.uuid4()),
                "configPath": f"{name.replace('-', '_')}/config.yaml",
                "runtime": RUNTIME,
            },
            "instances": {
                "memoryPerProcMiB": MEMORY_MIB,
                "procsPerContainer": 1,
                "minProdContainers": 1,
                "stagingContainers": 1,
            },
        },
    }


def plain_deployment(ns: str, name: str, image: str) -> dict[str, Any]:
    """A Deployment of the flavors' shape: one replica, one container, the model's env."""
    labels = {"app.kubernetes.io/name": name, "adroit.dev/flavor": name}
    env = {
        "MODEL_NAME": name.replace("-", "_"),
        "MODEL_VERSION": str(uuid.uuid4()),
        "MODEL_CONFIG_PATH": f"{name.replace('-', '_')}/config.yaml",
        "ADROIT_FLAVOR": name,
    }
    memory = f"{MEMORY_MIB}Mi"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "model",
                            "image": image,
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                            "resources": {
                                "requests": {"memory": memory},
                                "limits": {"memory": memory},
                            },
                        }
                    ]
                },
            },
        },
    }


async def gather_limited(jobs: Iterable[Awaitable[Any]], limit: int = 16) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[Any]) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(one(j) for j in jobs), return_exceptions=True)


def failures(results: list[Any]) -> list[BaseException]:
    return [r for r in results if isinstance(r, BaseException)]


# --- the write-counting proxy (a process of its own) ---------------------------------------


async def _proxy(port: int, upstream: str, ca_file: str) -> None:
    from aiohttp import web

    sys.path.insert(0, str(REPO))
    from tests.integration.api_proxy import relay

    writes: list[list[Any]] = []
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=ca_file), limit=0),
        auto_decompress=False,
    )

    async def forward(request: web.Request) -> web.StreamResponse:
        if request.path == "/_bench/writes":
            return web.json_response(writes)

        def note(status: int) -> None:
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                writes.append([time.time(), request.method, request.path, status])

        return await relay(session, upstream, request, note)

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


# --- figures -------------------------------------------------------------------------------


@dataclass
class Figure:
    """One line of the report: a value, or why there is none."""

    value: str = "not run"
    note: str = ""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def p50_p99(ms: list[float]) -> str:
    if not ms:
        return "no samples"
    return f"p50 {statistics.median(ms):.1f} ms, p99 {pct(ms, 0.99):.1f} ms (n={len(ms)})"


@dataclass
class Run:
    n: int
    probes: int
    idle: float
    timeout: float
    references: bool = True
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:5])
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="adroit-scale-")))
    figures: dict[str, Figure] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)
    operator: subprocess.Popen[bytes] | None = None
    proxy: subprocess.Popen[bytes] | None = None
    verify_for: float = 0.0
    proxy_url: str = ""
    metrics_url: str = ""  # the operator's own /metrics
    baseline_s: float | None = None
    floor_s: float | None = None
    rollout_s: float | None = None

    def __post_init__(self) -> None:
        ns = f"adroit-scale-{self.tag}"
        self.ns = ns
        self.staging, self.production = f"{ns}-staging", f"{ns}-production"
        self.baseline, self.minimal = f"{ns}-baseline", f"{ns}-minimal"
        self.namespaces = [ns, self.staging, self.production, self.baseline, self.minimal]
        self.hook = f"adroit-{ns}"
        self.binding = f"adroit-scale-{self.tag}-operator"
        self.secrets = self.workdir / "secrets"
        self.secrets.mkdir(mode=0o700)

    def fig(self, key: str) -> Figure:
        return self.figures.setdefault(key, Figure())

    def operator_gone(self) -> str | None:
        if self.operator is not None and self.operator.poll() is not None:
            return f"operator exited with code {self.operator.returncode}: see {self.log}"
        return None

    @property
    def log(self) -> Path:
        return self.workdir / "operator.log"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(check: Callable[[], bool], within: float, run: Run | None = None) -> bool:
    """Wait for check() (fed by watches), at most `within` seconds; False if it never held."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        if run is not None and run.operator_gone():
            return False
        await asyncio.sleep(0.02)
    return True


# --- setup ---------------------------------------------------------------------------------


def setup_cluster(run: Run) -> None:
    template = next(yaml.safe_load_all((REPO / "hack/cluster/nodes.yaml").read_text()))
    count = math.ceil((3 * run.n + 2 * run.probes + 100) / PODS_PER_NODE)
    docs = []
    for i in range(count):
        node = json.loads(json.dumps(template))
        name = f"adroit-scale-{run.tag}-{i}"
        node["metadata"]["name"] = name
        node["metadata"]["labels"]["kubernetes.io/hostname"] = name
        for key in ("capacity", "allocatable"):
            node["status"][key]["pods"] = str(PODS_PER_NODE)
        docs.append(node)
        run.nodes.append(name)
    for name in run.namespaces:
        kubectl("create", "namespace", name)
    manifest = "\n---\n".join(json.dumps(d) for d in docs)
    kubectl("apply", "--server-side", "--field-manager=adroit-bench", "-f", "-", stdin=manifest)
    kubectl("wait", "--for=condition=Ready", "--timeout=90s", *[f"node/{n}" for n in run.nodes])
    # The operator's own identity, so that the proxy sees only its requests.
    kubectl("create", "serviceaccount", "-n", run.ns, "adroit-operator")
    kubectl(
        "create",
        "clusterrolebinding",
        run.binding,
        "--clusterrole=cluster-admin",
        f"--serviceaccount={run.ns}:adroit-operator",
    )


def start_operator(run: Run, admin: Kube) -> None:
    token = kubectl("create", "token", "-n", run.ns, "adroit-operator", "--duration=6h").strip()
    ca_file = run.secrets / "ca.crt"
    ca_file.write_text(admin.ca)
    port = free_port()
    run.proxy = subprocess.Popen(
        [sys.executable, __file__, "--proxy", str(port), admin.server, str(ca_file)],
        stdout=subprocess.PIPE,
        stderr=open(run.workdir / "proxy.log", "wb"),  # noqa: SIM115 (the process keeps it)
        start_new_session=True,
    )
    assert run.proxy.stdout is not None
    if run.proxy.stdout.readline().strip() != b"ready":
        raise RuntimeError(f"the counting proxy did not start: see {run.workdir}/proxy.log")
    run.proxy_url = f"http://127.0.0.1:{port}"
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "proxy", "cluster": {"server": run.proxy_url}}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "proxy", "user": "operator"}}],
        "current-context": "operator",
    }
    (run.secrets / "operator.kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    settings = yaml.safe_load((REPO / "settings/local.yaml").read_text())
    settings["namespaces"] = {
        "control": run.ns,
        "staging": run.staging,
        "production": run.production,
    }
    settings["admission"] = {"port": free_port()}
    # Long stage timeouts: the figure is how long it takes, not whether 2 minutes suffice.
    settings["timeouts"]["stagingTimeout"] = "60m"
    settings["timeouts"]["promotionTimeout"] = "60m"
    run.verify_for = parse_duration(settings["timeouts"]["verifyFor"])
    (run.workdir / "settings.yaml").write_text(yaml.safe_dump(settings))
    install_webhook_configuration(run.workdir / "settings.yaml")
    env = dict(os.environ, KUBECONFIG=str(run.secrets / "operator.kubeconfig"))
    env.pop("ADROIT_SETTINGS", None)
    metrics = free_port()
    run.metrics_url = f"http://127.0.0.1:{metrics}/metrics"
    run.operator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adroit",
            "run",
            "--settings",
            str(run.workdir / "settings.yaml"),
            f"--metrics-bind-address=127.0.0.1:{metrics}",
            "--health-probe-bind-address=0",
        ],
        cwd=REPO,
        env=env,
        stdout=open(run.log, "wb"),  # noqa: SIM115 (the process keeps it)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def parse_duration(text: str) -> float:
    total, number = 0.0, ""
    for ch in str(text):
        if ch.isdigit() or ch == ".":
            number += ch
        else:
            total += float(number) * {"h": 3600, "m": 60, "s": 1}[ch]
            number = ""
    return total + (float(number) if number else 0.0)


async def proxy_writes(run: Run) -> list[list[Any]]:
    async with (
        aiohttp.ClientSession() as s,
        s.get(run.proxy_url + "/_bench/writes", timeout=aiohttp.ClientTimeout(total=30)) as r,
    ):
        return list(await r.json())


# --- 1. the reference: N plain Deployments -------------------------------------------------


def plain_service(ns: str, name: str, target: str, headless: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"app.kubernetes.io/name": target},
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
    }
    if headless:
        spec["clusterIP"] = "None"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def plain_pdb(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
        },
    }


def plain_route(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "parentRefs": [{"group": "", "kind": "Service", "name": f"{name}-stable", "port": 80}],
            "rules": [{"backendRefs": [{"name": name, "port": 80, "weight": 100}]}],
        },
    }


def object_path(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    ns, name = meta["namespace"], meta["name"]
    return {
        "Deployment": deploy_path(ns, name),
        "Service": f"/api/v1/namespaces/{ns}/services/{name}",
        "PodDisruptionBudget": f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/{name}",
        "HTTPRoute": f"/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes/{name}",
    }[obj["kind"]]


# Stages of a reference: a prefix for the names, and what is written for each name.
Stages = tuple[tuple[str, Callable[[str, str, str], list[dict[str, Any]]]], ...]
PLAIN: Stages = (("plain", lambda ns, n, image: [plain_deployment(ns, n, image)]),)
# What Adroit writes for a flavor with no shadow, stage by stage, with no train, approval
# or verification in between: in staging a Deployment, its headless Service and the
# stable Service; in production a Deployment, its Service, the stable Service, a budget
# and the route.
LIKE_ADROIT: Stages = (
    (
        "stg",
        lambda ns, n, image: [
            plain_deployment(ns, n, image),
            plain_service(ns, n, n, headless=True),
            plain_service(ns, f"{n}-stable", n),
        ],
    ),
    (
        "prd",
        lambda ns, n, image: [
            plain_deployment(ns, n, image),
            plain_service(ns, n, n),
            plain_service(ns, f"{n}-stable", n),
            plain_pdb(ns, n),
            plain_route(ns, n),
        ],
    ),
)


async def reference(run: Run, admin: Kube, image: str, key: str, stages: Stages) -> float | None:
    """Write each stage's objects for N names at once (16 at a time), and wait until that
    stage's Deployments are all Available before the next stage; the time to the last."""
    available: set[str] = set()

    def seen(kind: str, obj: dict[str, Any]) -> None:
        if (obj.get("status") or {}).get("availableReplicas", 0) >= 1:
            available.add(obj["metadata"]["name"])

    ready = asyncio.Event()
    watch = asyncio.create_task(admin.mirror(deploy_path(run.baseline), seen, ready))
    fig = run.fig(key)
    made: list[str] = []
    try:
        await asyncio.wait_for(ready.wait(), 30)
        writes = await server_writes(admin)
        cpu = cpu_by_process(None)
        start = time.monotonic()
        for prefix, objects in stages:
            names = [f"{prefix}-{i:05d}" for i in range(run.n)]
            manifests = [m for n in names for m in objects(run.baseline, n, image)]
            made += [object_path(m) for m in manifests if m["kind"] != "Deployment"]
            errors = failures(
                await gather_limited(admin.apply(object_path(m), m) for m in manifests)
            )
            if errors:
                fig.value = f"FAILED: {len(errors)} writes refused, first: {errors[0]}"
                return None
            if not await until(lambda names=names: available.issuperset(names), run.timeout):
                fig.value = f"TIMEOUT after {run.timeout:.0f} s ({prefix})"
                return None
        took = time.monotonic() - start
        fig.value = f"{took:.1f} s"
        run.figures[f"{key}-writes"] = throughput(writes, await server_writes(admin), took)
        run.figures[f"{key}-cpu"] = Figure(cpu_spent(cpu, cpu_by_process(None), took))
        return took
    finally:
        watch.cancel()
        await gather_limited(admin.call("DELETE", path, ok=(404,), seconds=60) for path in made)
        await admin.call(
            "DELETE",
            deploy_path(run.baseline),
            params={"propagationPolicy": "Background"},
            ok=(404,),
            seconds=120,
        )
        # Let the garbage collector take the pods away before the next part.
        deadline = time.monotonic() + 60 + run.n * 0.1
        while time.monotonic() < deadline:
            pods = await admin.call(
                "GET", f"/api/v1/namespaces/{run.baseline}/pods", params={"limit": "1"}
            )
            if not pods["items"]:
                break
            await asyncio.sleep(1)
        else:
            fig.note = "its pods were still going away when the next part started"


# --- 2. the operator: N flavors to production, the webhook meanwhile ------------------------


@dataclass
class World:
    """The control namespace as the watches see it."""

    flavors: dict[str, dict[str, Any]] = field(default_factory=dict)
    trains: dict[str, dict[str, Any]] = field(default_factory=dict)
    staging_seen: dict[str, float] = field(default_factory=dict)  # flavor -> first Deployment
    staging_ready: dict[str, float] = field(default_factory=dict)  # flavor -> it is Available

    def on_flavor(self, kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            self.flavors.pop(name, None)
        else:
            self.flavors[name] = obj

    def on_train(self, kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            self.trains.pop(name, None)
        else:
            self.trains[name] = obj

    def on_staging(self, kind: str, obj: dict[str, Any]) -> None:
        label = (obj["metadata"].get("labels") or {}).get("adroit.dev/flavor")
        if label and kind in ("ADDED", "SYNC"):
            self.staging_seen.setdefault(label, time.monotonic())
        if label and (obj.get("status") or {}).get("availableReplicas"):
            self.staging_ready.setdefault(label, time.monotonic())

    def in_production(self, names: Iterable[str]) -> int:
        count = 0
        for name in names:
            conditions = (self.flavors.get(name, {}).get("status") or {}).get("conditions") or []
            if any(c["type"] == "InProduction" and c["status"] == "True" for c in conditions):
                count += 1
        return count

    def phase(self, train: str) -> str:
        return str((self.trains.get(train, {}).get("status") or {}).get("phase") or "Queued")

    def moving(self) -> str | None:
        """A train not finished yet (the newest), else any train, else None."""
        names = sorted(self.trains)
        live = [t for t in names if self.phase(t) not in FINISHED]
        return (live or names or [None])[-1]

    def carrying(self, flavor: str) -> list[str]:
        return [
            name
            for name, t in self.trains.items()
            if any(c.get("flavor") == flavor for c in (t.get("spec") or {}).get("cars") or [])
        ]


async def admission_probes(
    run: Run, admin: Kube, alice: Kube, world: World, stop: asyncio.Event
) -> tuple[list[float], list[float], dict[str, int]]:
    """Server-side dry runs through the webhook, a Flavor change then a train annotation,
    until stop: a Flavor change once a second, the train every TRAIN_PROBE_EVERY seconds
    (each dry run of a 2,000-car train costs the API server about as much as a real write
    of it), so the probes are paced, not back to back."""
    flavor_ms: list[float] = []
    train_ms: list[float] = []
    answers: dict[str, int] = {}
    target = "scale-00000"
    next_train = 0.0
    await until(lambda: target in world.flavors or stop.is_set(), 120)
    while not stop.is_set():
        round_started = time.perf_counter()
        patch = {"spec": {"model": {"version": str(uuid.uuid4())}}}
        train = world.moving()
        abort = {"metadata": {"annotations": {"adroit.dev/abort": "true"}}}
        probes = [(admin, crd_path(run.ns, "flavors", target), patch, flavor_ms, "flavor")]
        if train is not None and round_started >= next_train:
            next_train = round_started + TRAIN_PROBE_EVERY
            probes.append((alice, crd_path(run.ns, "trains", train), abort, train_ms, "train"))
        for api, path, body, into, what in probes:
            start = time.perf_counter()
            try:
                await api.call(
                    "PATCH",
                    path,
                    body,
                    ctype="application/merge-patch+json",
                    params={"dryRun": "All"},
                    seconds=15,
                    retries=0,  # each answer counts as it came
                )
                outcome = "200"
            except ApiError as error:
                outcome = str(error.status)
            except TimeoutError:
                outcome = "client timeout (15 s)"
            into.append((time.perf_counter() - start) * 1000)
            key = f"{what} {outcome}"
            answers[key] = answers.get(key, 0) + 1
        pause = max(0.05, PROBE_EVERY - (time.perf_counter() - round_started))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
    return flavor_ms, train_ms, answers


async def train_at_rest(run: Run, admin: Kube, alice: Kube, world: World) -> None:
    """The same train annotation as during the rollout, on the largest train once everything
    has settled: what the review of that Train costs when the API server has a core to spare."""
    if not world.trains:
        return
    train = max(world.trains, key=lambda t: len(world.trains[t]["spec"]["cars"]))
    cars = len(world.trains[train]["spec"]["cars"])
    abort = {"metadata": {"annotations": {"adroit.dev/abort": "true"}}}
    hooks_before = await webhook_buckets(admin, run.ns)
    answered_before = await operator_buckets(run)
    sums_before = await webhook_sums(admin, run.ns)
    took: list[float] = []
    for _ in range(TRAIN_AT_REST):
        start = time.perf_counter()
        with contextlib.suppress(ApiError, TimeoutError):
            await alice.call(
                "PATCH",
                crd_path(run.ns, "trains", train),
                abort,
                ctype="application/merge-patch+json",
                params={"dryRun": "All"},
                seconds=15,
                retries=0,
            )
        took.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(1.0)  # one at a time, the API server at rest in between
    (s0, c0), (s1, c1) = (
        sums.get("trains", (0.0, 0.0)) for sums in (sums_before, await webhook_sums(admin, run.ns))
    )
    server = bucket_quantiles(
        hooks_before.get("trains", {}), (await webhook_buckets(admin, run.ns)).get("trains", {})
    )
    mean = f"; mean {1000 * (s1 - s0) / (c1 - c0):.0f} ms" if c1 > c0 else ""
    run.fig("rest-train").value = f"{server}{mean}"
    run.fig("rest-train").note = f"{cars} cars; client {p50_p99(took)}; " + (
        "operator's answer "
        + bucket_quantiles(
            answered_before.get("trains", {}), (await operator_buckets(run)).get("trains", {})
        )
    )


async def approver(run: Run, alice: Kube, world: World, approved: dict[str, float]) -> None:
    """alice approves every train that waits for it, once, as soon as the watch shows it."""
    while True:
        for name in list(world.trains):
            if name not in approved and world.phase(name) == "AwaitingApproval":
                approved[name] = time.monotonic()
                body = {"metadata": {"annotations": {"adroit.dev/approved": "true"}}}
                try:
                    await alice.call(
                        "PATCH",
                        crd_path(run.ns, "trains", name),
                        body,
                        ctype="application/merge-patch+json",
                    )
                except (ApiError, TimeoutError) as error:
                    print(f"  approval of {name} refused: {error}", file=sys.stderr)
        await asyncio.sleep(0.02)


async def rollout(run: Run, admin: Kube, alice: Kube, world: World) -> None:
    fig = run.fig("rollout")
    names = [f"scale-{i:05d}" for i in range(run.n)]
    approved: dict[str, float] = {}
    stop = asyncio.Event()
    approving = asyncio.create_task(approver(run, alice, world, approved))
    hooks_before = await webhook_buckets(admin, run.ns)
    answered_before = await operator_buckets(run)
    writes_before = await server_writes(admin)
    cpu_before = cpu_by_process(run.operator.pid if run.operator else None)
    start, wall = time.monotonic(), datetime.now(UTC)
    probes = asyncio.create_task(admission_probes(run, admin, alice, world, stop))
    try:
        errors = failures(
            await gather_limited(
                admin.apply(crd_path(run.ns, "flavors", n), flavor(run.ns, n)) for n in names
            )
        )
        applied = time.monotonic() - start
        run.fig("apply").value = f"{applied:.1f} s (16 requests at a time)"
        if errors:
            fig.value = f"FAILED: {len(errors)} Flavor writes refused, first: {errors[0]}"
            return

        def settled() -> bool:
            return world.in_production(names) >= run.n and all(
                world.phase(t) in FINISHED for t in world.trains
            )

        def broken() -> list[str]:
            return [
                f"{t} {world.phase(t)}: {(world.trains[t].get('status') or {}).get('message')}"
                for t in world.trains
                if world.phase(t) in FINISHED - {"Deployed"}
            ]

        ok = await until(lambda: settled() or bool(broken()), run.timeout, run)
        took = time.monotonic() - start
        trains = len(world.trains)
        verified = sum(
            1
            for t in world.trains.values()
            if any(
                h.get("phase") == "Verifying" for h in (t.get("status") or {}).get("history", [])
            )
        )
        if broken():
            fig.value = f"FAILED after {took:.0f} s: " + "; ".join(broken()[:3])
        elif not ok:
            why = run.operator_gone() or f"TIMEOUT after {run.timeout:.0f} s"
            fig.value = (
                f"{why} ({world.in_production(names)}/{run.n} InProduction, "
                f"{trains} train(s): "
                + ", ".join(f"{t} {world.phase(t)}" for t in list(world.trains)[:3])
                + ")"
            )
        else:
            run.figures["server-writes"] = throughput(
                writes_before, await server_writes(admin), took - verified * run.verify_for
            )
            excluded = took - verified * run.verify_for
            run.fig("rollout-cpu").value = cpu_spent(
                cpu_before, cpu_by_process(run.operator.pid if run.operator else None), took
            )
            run.rollout_s = excluded
            fig.value = f"{excluded:.1f} s"
            fig.note = (
                f"{took:.1f} s wall, minus verifyFor {run.verify_for:.0f} s x {verified} "
                f"train(s); {trains} train(s), {len(approved)} approval(s) by alice"
            )
            largest = max(world.trains.values(), key=lambda t: len(json.dumps(t)))
            run.fig("timeline").value = timeline(largest, wall, world, start)
            run.fig(
                "train-size"
            ).value = f"{len(json.dumps(largest))} bytes, {len(largest['spec']['cars'])} cars"
            run.fig("train-size").note = "as JSON, status included; etcd takes 1.5 MiB"
            (run.workdir / "largest-train.json").write_text(json.dumps(largest))
    finally:
        stop.set()
        approving.cancel()
        flavor_ms, train_ms, answers = await probes
        run.fig("hook-flavor").value = p50_p99(flavor_ms)
        run.fig("hook-train").value = p50_p99(train_ms)
        run.fig("hook-train").note = "answers: " + ", ".join(
            f"{k} x{v}" for k, v in sorted(answers.items())
        )
        hooks_after = await webhook_buckets(admin, run.ns)
        answered_after = await operator_buckets(run)
        for kind in ("flavors", "trains"):
            run.fig(f"hook-server-{kind}").value = bucket_quantiles(
                hooks_before.get(kind, {}), hooks_after.get(kind, {})
            )
            run.fig(f"hook-operator-{kind}").value = bucket_quantiles(
                answered_before.get(kind, {}), answered_after.get(kind, {})
            )


HOOK_METRIC = "apiserver_admission_webhook_admission_duration_seconds"


async def server_metrics(admin: Kube) -> str:
    async with admin.session.get(
        admin.server + "/metrics", headers={**admin.headers, "Accept": "text/plain"}
    ) as resp:
        return await resp.text()


WRITE_VERBS = ('verb="POST"', 'verb="PUT"', 'verb="PATCH"', 'verb="DELETE"')


async def server_writes(admin: Kube) -> dict[str, float]:
    """Every write the API server has served, from any client (dry runs left out), by
    `VERB resource[/subresource]`."""
    counts: dict[str, float] = {}
    for line in (await server_metrics(admin)).splitlines():
        if (
            line.startswith("apiserver_request_total{")
            and 'dry_run=""' in line
            and any(verb in line for verb in WRITE_VERBS)
        ):
            labels_text, value = line[len("apiserver_request_total{") :].rsplit("} ", 1)
            labels = dict(kv.split("=", 1) for kv in labels_text.split(","))
            key = labels["verb"].strip('"') + " " + labels["resource"].strip('"')
            if labels["subresource"].strip('"'):
                key += "/" + labels["subresource"].strip('"')
            counts[key] = counts.get(key, 0.0) + float(value)
    return counts


def throughput(before: dict[str, float], after: dict[str, float], seconds: float) -> Figure:
    delta = {k: v - before.get(k, 0.0) for k, v in after.items()}
    total = sum(delta.values())
    top = sorted(((v, k) for k, v in delta.items() if v), reverse=True)[:8]
    return Figure(
        f"{total:.0f} writes, {total / seconds:.0f}/s",
        ", ".join(f"{k} x{v:.0f}" for v, k in top),
    )


def histogram(text: str, metric: str, label: str) -> dict[str, dict[float, float]]:
    """A Prometheus histogram's buckets in `text`, summed per value of `label`: that value ->
    upper bound -> observations at most that long."""
    buckets: dict[str, dict[float, float]] = {}
    for line in text.splitlines():
        if not line.startswith(metric + "_bucket{"):
            continue
        labels_text, value = line[len(metric) + len("_bucket{") :].rsplit("} ", 1)
        labels = dict(kv.split("=", 1) for kv in labels_text.split(","))
        per = buckets.setdefault(labels.get(label, "").strip('"'), {})
        le = float(labels["le"].strip('"'))
        per[le] = per.get(le, 0.0) + float(value)
    return buckets


async def webhook_buckets(admin: Kube, ns: str) -> dict[str, dict[float, float]]:
    """The API server's own histogram of its calls to this operator's webhooks (every call,
    the dry runs and the real writes), per webhook: upper bound -> calls at most that long."""
    by_name = histogram(await server_metrics(admin), HOOK_METRIC, "name")
    suffix = f".{ns}.adroit.dev"
    return {name.split(".")[0]: b for name, b in by_name.items() if name.endswith(suffix)}


def series(text: str, metric: str, label: str) -> dict[str, float]:
    """A Prometheus series in `text` (a histogram's _sum or _count, say), summed per value of
    `label`."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(metric + "{"):
            labels_text, value = line[len(metric) + 1 :].rsplit("} ", 1)
            labels = dict(kv.split("=", 1) for kv in labels_text.split(","))
            key = labels.get(label, "").strip('"')
            totals[key] = totals.get(key, 0.0) + float(value)
    return totals


async def webhook_sums(admin: Kube, ns: str) -> dict[str, tuple[float, float]]:
    """The same histogram's sum (seconds) and count, per webhook of this operator."""
    text = await server_metrics(admin)
    sums, counts = (series(text, HOOK_METRIC + part, "name") for part in ("_sum", "_count"))
    suffix = f".{ns}.adroit.dev"
    return {n.split(".")[0]: (sums[n], counts[n]) for n in sums if n.endswith(suffix)}


async def operator_buckets(run: Run) -> dict[str, dict[float, float]]:
    """The operator's own histogram of its answers, per webhook: from the request's headers
    read to the answer written (the review's body read and parsed included)."""
    deadline = time.monotonic() + 30  # it serves /metrics once it has started
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(run.metrics_url) as r:
                    text = await r.text()
                return histogram(text, "adroit_admission_duration_seconds", "webhook")
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    return {}
                await asyncio.sleep(0.2)


def bucket_quantiles(before: dict[float, float], after: dict[float, float]) -> str:
    counts = {le: after[le] - before.get(le, 0.0) for le in sorted(after)}
    total = counts.get(math.inf, 0.0)
    if not total:
        return "no calls"

    def bound(q: float) -> str:
        le = next(le for le, n in counts.items() if n >= q * total)
        return "> 25 s" if le == math.inf else f"<= {le * 1000:.0f} ms"

    within = counts.get(0.1, 0.0) / total * 100
    return f"p50 {bound(0.5)}, p99 {bound(0.99)}; {within:.1f} % within 100 ms (n={total:.0f})"


def timeline(train: dict[str, Any], wall: datetime, world: World, start: float) -> str:
    """Where the rollout's time went: seconds from the first Flavor write to each phase of
    the largest train, and to the last staging Deployment created and Available."""
    marks = [
        f"{h['phase']} {(datetime.fromisoformat(h['at']) - wall).total_seconds():.0f}"
        for h in (train.get("status") or {}).get("history", [])
    ]
    last = [
        f"last staging Deployment {what} {max(seen.values()) - start:.0f}"
        for what, seen in (("created", world.staging_seen), ("Available", world.staging_ready))
        if seen
    ]
    marks[2:2] = last
    return ", ".join(marks)


# --- 3. an idle minute ---------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# The processes whose CPU a rollout costs, by what their command line starts with.
CPU_OF = (
    ("kube-apiserver", "/kube-apiserver "),
    ("etcd", "/etcd "),
    ("kube-controller-manager", "/kube-controller-manager "),
    ("kube-scheduler", "/kube-scheduler "),
    ("kwok", "/kwok "),
)


def cpu_by_process(operator: int | None) -> dict[str, float]:
    """CPU seconds so far of the control plane's processes (and the operator's)."""
    seconds: dict[str, float] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            for name, part in CPU_OF:
                if part in command.split(" --", 1)[0] + " ":
                    seconds[name] = seconds.get(name, 0.0) + cpu_seconds(int(proc.name))
        except (OSError, ValueError):
            continue  # gone meanwhile
    if operator is not None:
        with contextlib.suppress(OSError, ValueError):
            seconds["operator"] = cpu_seconds(operator)
    return seconds


def cpu_spent(before: dict[str, float], after: dict[str, float], wall: float) -> str:
    """Each process's CPU over `wall` seconds, as a share of one core, most first."""
    spent = {k: after[k] - before.get(k, 0.0) for k in after}
    return ", ".join(
        f"{k} {100 * v / wall:.0f} %" for k, v in sorted(spent.items(), key=lambda kv: -kv[1])
    )


def by_kind(writes: list[list[Any]], most: int) -> str:
    """The commonest writes, as `METHOD resource[/status] STATUS xCOUNT`."""
    counts: dict[str, int] = {}
    for _, method, path, status in writes:
        parts = path.split("?")[0].strip("/").split("/")
        if "namespaces" in parts and len(parts) > parts.index("namespaces") + 2:
            resource = parts[parts.index("namespaces") + 2]
        else:
            resource = parts[-1]
        sub = "/status" if parts[-1] == "status" else ""
        key = f"{method} {resource}{sub} {status}"
        counts[key] = counts.get(key, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:most]
    return ", ".join(f"{k} x{v}" for k, v in top)


async def idle(run: Run) -> None:
    assert run.operator is not None
    gone = run.operator_gone()
    if gone:
        run.fig("idle-writes").value = f"FAILED: {gone}"
        return
    await asyncio.sleep(5)  # the last status writes of the rollout
    pid = run.operator.pid
    before, cpu0, t0 = await proxy_writes(run), cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(run.idle)
    after, cpu1, t1 = await proxy_writes(run), cpu_seconds(pid), time.monotonic()
    new = after[len(before) :]
    # The leader renews its Lease every retryPeriod, as every controller-runtime operator does:
    # counted apart, since that write is leader election's, not the reconciler's.
    lease = [w for w in new if "/leases/" in w[2]]
    new = [w for w in new if "/leases/" not in w[2]]
    run.fig("idle-writes").value = f"{len(new)} (+{len(lease)} Lease renewals)"
    if not run.rollout_s:
        run.fig("idle-writes").note = "the rollout had not settled: "
    run.fig("idle-writes").note += by_kind(new, 4)
    run.fig("rollout-writes").note = by_kind(before, 10)
    run.fig("idle-cpu").value = f"{100 * (cpu1 - cpu0) / (t1 - t0):.2f} %"
    run.fig("idle-rss").value = f"{rss_mb(pid):.0f} MB (VmRSS)"
    run.fig("rollout-writes").value = f"{len(before)} (start to settled)"


# --- 4. apply -> staging Deployment, the operator and a minimal client ----------------------


async def operator_probes(run: Run, admin: Kube, alice: Kube, world: World) -> None:
    fig = run.fig("probe-operator")
    took: list[float] = []
    misses = 0
    for i in range(run.probes):
        if gone := run.operator_gone():
            fig.note = gone
            break
        name = f"probe-{i:03d}"
        start = time.monotonic()
        try:
            await admin.call("POST", crd_path(run.ns, "flavors"), flavor(run.ns, name))
        except (ApiError, TimeoutError) as error:
            fig.note = f"probe {name} refused: {error}"
            break
        if await until(lambda n=name: n in world.staging_seen, 30, run):
            took.append((world.staging_seen[name] - start) * 1000)
            misses = 0
        else:
            misses += 1
            fig.note = f"{misses} probe(s) in a row saw no staging Deployment within 30 s"
            if misses >= 3:
                break
        # Abort the probe's train, so that the next probe finds the tracks free.
        await until(lambda n=name: bool(world.carrying(n)), 10, run)
        for train in world.carrying(name):
            if world.phase(train) not in FINISHED:
                with contextlib.suppress(ApiError, TimeoutError):
                    await alice.call(
                        "PATCH",
                        crd_path(run.ns, "trains", train),
                        {"metadata": {"annotations": {"adroit.dev/abort": "true"}}},
                        ctype="application/merge-patch+json",
                    )
            if not await until(lambda t=train: world.phase(t) in FINISHED, 60, run):
                fig.note = f"train {train} was not Aborted within 60 s ({world.phase(train)})"
                misses = 3
        if misses >= 3:
            break
    fig.value = p50_p99(took)


async def minimal_client(kube: Kube, ns: str, image: str) -> None:
    """The least an operator can do: a Flavor appears, its Deployment is created."""
    made: set[str] = set()
    pending: set[asyncio.Task[Any]] = set()

    def on_flavor(kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if kind in ("ADDED", "SYNC") and name not in made:
            made.add(name)
            task = asyncio.create_task(
                kube.call("POST", deploy_path(ns), plain_deployment(ns, name, image), ok=(409,))
            )
            pending.add(task)
            task.add_done_callback(pending.discard)

    await kube.mirror(crd_path(ns, "flavors"), on_flavor, asyncio.Event())


async def minimal_probes(run: Run, admin: Kube, image: str) -> None:
    fig = run.fig("probe-minimal")
    client = Kube(None, run.secrets)
    seen: dict[str, float] = {}

    def on_deploy(kind: str, obj: dict[str, Any]) -> None:
        label = (obj["metadata"].get("labels") or {}).get("adroit.dev/flavor")
        if label and kind in ("ADDED", "SYNC"):
            seen.setdefault(label, time.monotonic())

    ready = asyncio.Event()
    watcher = asyncio.create_task(admin.mirror(deploy_path(run.minimal), on_deploy, ready))
    worker = asyncio.create_task(minimal_client(client, run.minimal, image))
    took: list[float] = []
    try:
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.sleep(1)  # the client's own list and watch
        for i in range(run.probes):
            name = f"probe-{i:03d}"
            start = time.monotonic()
            await admin.call("POST", crd_path(run.minimal, "flavors"), flavor(run.minimal, name))
            if await until(lambda n=name: n in seen, 30):
                took.append((seen[name] - start) * 1000)
            else:
                fig.note = f"probe {name}: no Deployment within 30 s"
                break
        fig.value = p50_p99(took)
    finally:
        watcher.cancel()
        worker.cancel()
        await client.close()


# --- the run -------------------------------------------------------------------------------


async def measure(run: Run) -> None:
    admin = Kube(None, run.secrets)
    contexts = kubectl("config", "get-contexts", "-o", "name").split()
    alice = Kube("alice" if "alice" in contexts else None, run.secrets)
    image = yaml.safe_load((REPO / "settings/local.yaml").read_text())["runtimes"][RUNTIME]
    world = World()
    tasks: list[asyncio.Task[Any]] = []
    try:
        if run.references:
            print(f"[bench] 1/4 reference: {run.n} plain Deployments", file=sys.stderr)
            run.baseline_s = await reference(run, admin, image, "baseline", PLAIN)
            print(
                "[bench] 1/4 reference: the same objects as two stages, no train", file=sys.stderr
            )
            run.floor_s = await reference(run, admin, image, "floor", LIKE_ADROIT)
        else:
            print("[bench] 1/4 reference: skipped (REFERENCES=0)", file=sys.stderr)

        print("[bench] 2/4 operator: start, then N flavors to production", file=sys.stderr)
        start_operator(run, admin)
        ready = [asyncio.Event() for _ in range(3)]
        tasks += [
            asyncio.create_task(
                admin.mirror(crd_path(run.ns, "flavors"), world.on_flavor, ready[0])
            ),
            asyncio.create_task(admin.mirror(crd_path(run.ns, "trains"), world.on_train, ready[1])),
            asyncio.create_task(admin.mirror(deploy_path(run.staging), world.on_staging, ready[2])),
        ]
        hook = f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{run.hook}"

        async def hook_published() -> bool:
            return await admin.call("GET", hook, ok=(404,)) is not None

        deadline = time.monotonic() + 60
        while not await hook_published():
            if time.monotonic() > deadline or run.operator_gone():
                raise RuntimeError(
                    run.operator_gone() or f"the operator published no {run.hook} within 60 s"
                )
            await asyncio.sleep(0.2)
        for event in ready:
            await asyncio.wait_for(event.wait(), 30)
        await rollout(run, admin, alice, world)

        print(f"[bench] 3/4 idle for {run.idle:.0f} s", file=sys.stderr)
        await idle(run)
        await train_at_rest(run, admin, alice, world)

        print(f"[bench] 4/4 apply -> staging Deployment, {run.probes} probes", file=sys.stderr)
        await operator_probes(run, admin, alice, world)
        await minimal_probes(run, admin, image)
    finally:
        for task in tasks:
            task.cancel()
        await admin.close()
        await alice.close()


STEP = re.compile(
    r"one step of the event loop took (\d+) ms \(its thread ran (\d+) ms of them"
    r"(; garbage collection \d+ ms)?\): (.*)"
)
BLOCKED = re.compile(r"the event loop was blocked for (\d+) ms")


def loop_held(run: Run) -> None:
    """The operator's own warnings (adroit.handlers.stalls, limit 50 ms): every single step of
    its event loop that took longer, with how much of it the loop's thread ran (the rest it
    waited for the interpreter or a CPU) and garbage collections took, and the turns of the
    loop held that long."""
    try:
        text = run.log.read_text(errors="replace")
    except OSError:
        return
    steps = sorted(
        ((int(m[1]), f"{m[2]} ms{m[3] or ''}", m[4].strip()) for m in STEP.finditer(text)),
        reverse=True,
    )
    blocked = [int(m[1]) for m in BLOCKED.finditer(text)]
    run.fig("loop-steps").value = str(len(steps))
    run.fig("loop-steps").note = "; ".join(
        f"{took} ms, its thread ran {ran}: {where}" for took, ran, where in steps[:3]
    )
    run.fig("loop-blocked").value = str(len(blocked))
    if blocked:
        run.fig("loop-blocked").note = f"{min(blocked)} to {max(blocked)} ms"


def report(run: Run) -> None:
    loop_held(run)
    f = run.figures

    def val(key: str) -> str:
        return f.get(key, Figure()).value.strip()

    def row(label: str, key: str, ref: str = "", goal: str = "") -> None:
        print(f"  {label:30s} {val(key):34s} {ref:34s} {goal}")
        if f.get(key, Figure()).note:
            print(f"  {'':30s}   {f[key].note}")

    ratio = (
        f"ratio {run.rollout_s / run.baseline_s:.2f}" if run.rollout_s and run.baseline_s else ""
    )
    print()
    print(f"bench-scale: N={run.n} flavors, verifyFor {run.verify_for:.0f} s (tag {run.tag})")
    print(f"  {'':30s} {'adroit':34s} {'reference':34s} goal")
    row(
        "1 N flavors -> production", "rollout", f"N plain Deployments: {val('baseline')}", "<= 1.5x"
    )
    if ratio:
        print(f"  {'':30s}   {ratio} (adroit, verifyFor excluded / plain Deployments)")
    if f.get("baseline", Figure()).note:
        print(f"  {'':30s}   reference: {f['baseline'].note}")
    row(
        "  the same objects, 2 stages",
        "floor",
        "a plain client, no train",
        "",
    )
    if run.rollout_s and run.floor_s:
        print(
            f"  {'':30s}   ratio {run.rollout_s / run.floor_s:.2f} (adroit / a plain client "
            "writing what adroit writes, stage after stage)"
        )
    row("  writing the N Flavors", "apply")
    row("  operator's API writes", "rollout-writes")
    row("  API writes, every client", "server-writes", f"plain: {val('baseline-writes')}")
    if f.get("baseline-writes", Figure()).note:
        print(f"  {'':30s}   plain: {f['baseline-writes'].note}")
    row("  CPU, share of one core", "rollout-cpu", "", "")
    for key, what in (("baseline-cpu", "plain"), ("floor-cpu", "2 stages")):
        if key in f:
            print(f"  {'':30s}   {what}: {val(key)}")
    row("  largest Train", "train-size")
    print(f"  {'':30s}   seconds from the first write: {val('timeline')}")
    row(
        "2 apply -> staging Deployment",
        "probe-operator",
        f"minimal client: {val('probe-minimal')}",
        "p50 <= 2x, p99 <= 500 ms",
    )
    if f.get("probe-minimal", Figure()).note:
        print(f"  {'':30s}   minimal client: {f['probe-minimal'].note}")
    row("3 admission, Flavor change", "hook-flavor", "", "p99 <= 100 ms")
    row("  admission, train annotation", "hook-train", "", "p99 <= 100 ms")
    print(f"  {'':30s}   (the client's time: dry-run PATCHes through a loaded API server)")
    for kind in ("flavors", "trains"):
        row(f"  webhook, {kind}", f"hook-server-{kind}", "", "p99 <= 100 ms")
    row("  webhook, trains, at rest", "rest-train", "", "")
    print(f"  {'':30s}   (the API server's histogram of its webhook calls: upper bucket bounds)")
    for kind in ("flavors", "trains"):
        row(f"  operator's answer, {kind}", f"hook-operator-{kind}", "", "")
    print(f"  {'':30s}   (the operator's own histogram, adroit_admission_duration_seconds)")
    row(f"4 idle {run.idle:.0f} s: API writes", "idle-writes", "", "0")
    row("  operator CPU (of one core)", "idle-cpu", "", "<= 1 %")
    row("  operator RSS", "idle-rss", "", "<= 250 MB")
    row("5 event loop: steps > 50 ms", "loop-steps", "", "0")
    row("  turns held > 50 ms", "loop-blocked", "", "")
    print(f"  {'':30s}   (the operator's own warnings, from start to the last probe)")
    print(f"  operator log: {run.log}")


# --- cleanup -------------------------------------------------------------------------------


def step(what: str, fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception as error:
        print(f"[bench] cleanup: {what} failed: {error}", file=sys.stderr)


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def strip_finalizers(run: Run) -> None:
    admin = Kube(None, run.secrets)
    try:
        for plural in ("flavors", "trains"):
            listed = await admin.call("GET", crd_path(run.ns, plural), ok=(404,), seconds=60)
            await gather_limited(
                admin.call(
                    "PATCH",
                    crd_path(run.ns, plural, item["metadata"]["name"]),
                    {"metadata": {"finalizers": None}},
                    ctype="application/merge-patch+json",
                    ok=(404,),
                )
                for item in (listed or {}).get("items", [])
                if item["metadata"].get("finalizers")
            )
    finally:
        await admin.close()


def cleanup(run: Run) -> None:
    print("[bench] cleaning up", file=sys.stderr)
    step("stopping the operator", lambda: stop(run.operator))
    step("stopping the proxy", lambda: stop(run.proxy))
    step(
        "the webhook configuration",
        lambda: kubectl("delete", "mutatingwebhookconfiguration", run.hook, "--ignore-not-found"),
    )
    step("finalizers", lambda: asyncio.run(asyncio.wait_for(strip_finalizers(run), 300)))
    step(
        "the operator's binding",
        lambda: kubectl("delete", "clusterrolebinding", run.binding, "--ignore-not-found"),
    )
    step(
        "namespaces",
        lambda: kubectl(
            "delete", "namespace", "--ignore-not-found", "--wait=false", *run.namespaces
        ),
    )
    # The namespace controller deletes every object the run made, about 14 a flavor
    # with their pods and ReplicaSets: with 2,000 flavors that takes longer than 3 min.
    wait = max(180, run.n // 4)
    began = time.monotonic()

    def namespaces_gone() -> None:
        kubectl(
            "wait",
            "--for=delete",
            f"--timeout={wait}s",
            *[f"namespace/{n}" for n in run.namespaces],
            timeout=wait + 20,
        )
        print(f"[bench] namespaces gone in {time.monotonic() - began:.0f} s", file=sys.stderr)

    step("waiting for the namespaces", namespaces_gone)
    if run.nodes:
        step(
            "extra nodes",
            lambda: kubectl("delete", "node", "--ignore-not-found", *run.nodes, timeout=120),
        )
    shutil.rmtree(run.secrets, ignore_errors=True)
    if os.environ.get("KEEP_LOG", "1") == "0":
        shutil.rmtree(run.workdir, ignore_errors=True)


def interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--proxy":
        port, upstream, ca_file = sys.argv[2:5]
        asyncio.run(_proxy(int(port), upstream, ca_file))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavors", "-n", type=int, default=2000, help="N (default 2000)")
    args = parser.parse_args()
    n = args.flavors
    run = Run(
        n=n,
        probes=int(os.environ.get("PROBES", "50")),
        idle=float(os.environ.get("IDLE", "60")),
        references=os.environ.get("REFERENCES", "1") != "0",
        timeout=float(os.environ.get("TIMEOUT", str(max(300.0, n * 0.75)))),
    )
    # Ctrl-C and SIGTERM both clean up, even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupted)
    code = 0
    try:
        print(f"[bench] setting up: {run.tag}, nodes and namespaces", file=sys.stderr)
        setup_cluster(run)
        asyncio.run(measure(run))
    except KeyboardInterrupt:
        print("[bench] interrupted", file=sys.stderr)
        code = 130
    except Exception as error:
        print(f"[bench] stopped: {error!r}", file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        report(run)
        cleanup(run)
    return code


if __name__ == "__main__":
    sys.exit(main())
