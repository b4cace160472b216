"""Flux beside the local cluster (`make gitops-up`, hack/gitops/up.sh) and a Git repository
on its Git server that tests commit to, as a team pushes to theirs."""

import json
import os
import shutil
import subprocess
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.operator import Operator
from tests.integration.users import is_local_cluster
from tests.kube import REPO, apply, eventually, kubectl

AUTHOR = "adroit.dev/author"
# How long Flux waits between two looks at Git and at the cluster: short, so the tests are quick.
SOURCE_INTERVAL = "2s"
APPLY_INTERVAL = "5s"


@dataclass(frozen=True)
class Flux:
    """What hack/gitops/up.sh wrote into .cluster/gitops/env."""

    git_url: str  # http://127.0.0.1:PORT, the Git server
    git_root: Path  # where it keeps its bare repositories
    user: str  # kustomize-controller's identity, as the API server knows it
    metrics: dict[str, str]  # controller -> its /metrics URL


def running_flux() -> Flux:
    """The Flux that `make gitops-up` started, or a skip (a failure under CI) saying how."""
    cluster = Path(os.environ.get("ADROIT_CLUSTER_DIR", REPO / ".cluster"))
    env_file = cluster / "gitops" / "env"
    why = None
    if not is_local_cluster():
        why = "Flux runs beside the local cluster only (KUBECONFIG names another one)"
    elif not env_file.exists():
        why = "Flux is not running: `make gitops-up` builds and starts it (several minutes once)"
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{why}; .ci/run starts it before `make test`", pytrace=False)
        pytest.skip(why)
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return Flux(
        git_url=env["GIT_URL"],
        git_root=Path(env["GIT_ROOT"]),
        user=env["FLUX_USER"],
        metrics={
            "source-controller": env["SOURCE_CONTROLLER_METRICS"],
            "kustomize-controller": env["KUSTOMIZE_CONTROLLER_METRICS"],
        },
    )


def git(checkout: Path, *args: str, author: str = "adroit") -> str:
    person = {
        "GIT_AUTHOR_NAME": author,
        "GIT_AUTHOR_EMAIL": f"{author}@example.com",
        "GIT_COMMITTER_NAME": author,
        "GIT_COMMITTER_EMAIL": f"{author}@example.com",
    }
    done = subprocess.run(
        ["git", *args],
        cwd=checkout,
        capture_output=True,
        text=True,
        env={**os.environ, **person},
        timeout=60,
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr.strip()}"
    return done.stdout.strip()


def stamp_author(manifest: dict[str, Any], author: str) -> dict[str, Any]:
    """What the team's pipeline does before it commits: the commit author's Kubernetes user
    name goes into the Flavor's adroit.dev/author annotation (README, GitOps)."""
    manifest["metadata"].setdefault("annotations", {})[AUTHOR] = author
    return manifest


class Repository:
    """A bare repository on the local Git server and a clone of it that commits and pushes."""

    def __init__(self, flux: Flux, workdir: Path) -> None:
        self.name = f"flavors-{uuid.uuid4().hex[:6]}"
        self.bare = flux.git_root / f"{self.name}.git"
        self.url = f"{flux.git_url}/{self.name}.git"
        subprocess.run(
            ["git", "init", "--quiet", "--bare", "--initial-branch=main", str(self.bare)],
            check=True,
        )
        self.checkout = workdir / self.name
        subprocess.run(
            ["git", "clone", "--quiet", self.url, str(self.checkout)],
            check=True,
            capture_output=True,
        )
        git(self.checkout, "checkout", "--quiet", "-b", "main")

    def commit(
        self, files: dict[str, dict[str, Any] | str | None], author: str, message: str
    ) -> str:
        """Write (a manifest as YAML, or text) or, for None, remove files, commit them as
        `author` and push; the commit."""
        for path, manifest in files.items():
            file = self.checkout / path
            if manifest is None:
                file.unlink()
                continue
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(manifest if isinstance(manifest, str) else yaml.safe_dump(manifest))
        git(self.checkout, "add", "--all")
        git(self.checkout, "commit", "--quiet", "--message", message, author=author)
        return self.push()

    def revert(self, commit: str, author: str) -> str:
        git(self.checkout, "revert", "--no-edit", commit, author=author)
        return self.push()

    def push(self) -> str:
        git(self.checkout, "push", "--quiet", "origin", "main")
        return git(self.checkout, "rev-parse", "HEAD")

    def remove(self) -> None:
        shutil.rmtree(self.bare, ignore_errors=True)


def flavor_file(op: Operator, name: str, version: str, author: str, **spec: Any) -> dict[str, Any]:
    """A Flavor as a team keeps it in Git: no namespace (Flux sets it), its author stamped."""
    manifest = op.flavor(name, version=version, **spec)
    del manifest["metadata"]["namespace"]
    return stamp_author(manifest, author)


def follow(
    op: Operator,
    repo: Repository,
    path: str,
    *,
    wait: bool = False,
    health: list[dict[str, str]] | None = None,
) -> None:
    """A GitRepository and a Kustomization in the operator's control namespace that apply
    `path` of `repo` there, as a team's cluster would; `wait`: Ready only once what it
    applied is healthy, judged by kstatus or the CEL `health` expressions."""
    readme = f"Flavors of {op.ns}, applied by Flux.\n"
    revision = repo.commit({f"{path}/README.md": readme}, "adroit", f"{path}: a folder of Flavors")
    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "flavors", "namespace": op.ns},
        "spec": {"url": repo.url, "ref": {"branch": "main"}, "interval": SOURCE_INTERVAL},
    }
    spec: dict[str, Any] = {
        "sourceRef": {"kind": "GitRepository", "name": "flavors"},
        "path": f"./{path}",
        "targetNamespace": op.ns,
        "prune": True,
        "interval": APPLY_INTERVAL,
        "wait": wait,
        "timeout": "2m",
    }
    if health:
        spec["healthCheckExprs"] = health
    apply(source)
    apply(
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "flavors", "namespace": op.ns},
            "spec": spec,
        }
    )
    applied(op, revision)


def kustomization(op: Operator) -> dict[str, Any]:
    return op.get("kustomization.kustomize.toolkit.fluxcd.io", "flavors")


def condition(obj: dict[str, Any], kind: str = "Ready") -> dict[str, Any]:
    conditions = obj.get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == kind), {})


def applied(op: Operator, commit: str, timeout: float = 60) -> dict[str, Any]:
    """The Kustomization once Flux has applied `commit` (Ready, at that revision)."""

    def done() -> dict[str, Any] | None:
        k = kustomization(op)
        ready = condition(k)
        at = k.get("status", {}).get("lastAppliedRevision", "")
        return k if ready.get("status") == "True" and at.endswith(commit) else None

    return dict(
        eventually(
            done,
            timeout=timeout,
            what=f"Flux to apply {commit[:8]} (Ready: {condition(kustomization(op))})",
        )
    )


def refused(op: Operator, commit: str, timeout: float = 60) -> str:
    """The message of the Kustomization's Ready=False for `commit`."""

    def failed() -> str | None:
        k = kustomization(op)
        ready = condition(k)
        at = k.get("status", {}).get("lastAttemptedRevision", "")
        if ready.get("status") == "False" and at.endswith(commit):
            return str(ready.get("message", ""))
        return None

    return str(eventually(failed, timeout=timeout, what=f"Flux to refuse {commit[:8]}"))


def reconcile_now(op: Operator) -> None:
    """Ask Flux to reconcile the Kustomization at once (as `flux reconcile` does) and wait
    until it has."""
    token = uuid.uuid4().hex
    kubectl(
        "annotate",
        "--overwrite",
        "kustomization.kustomize.toolkit.fluxcd.io/flavors",
        "-n",
        op.ns,
        f"reconcile.fluxcd.io/requestedAt={token}",
    )
    eventually(
        lambda: kustomization(op).get("status", {}).get("lastHandledReconcileAt") == token,
        what="Flux to reconcile on request",
    )


def scrape(url: str, metric: str) -> list[tuple[dict[str, str], float]]:
    """The samples of one metric on a Prometheus /metrics page: (labels, value) each."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples = []
    for line in text.splitlines():
        if line.startswith(metric + "{"):
            labels, value = line[len(metric) + 1 :].rsplit("} ", 1)
            pairs = (pair.split("=", 1) for pair in labels.split('",') if "=" in pair)
            samples.append(({k: v.strip('"') for k, v in pairs}, float(value)))
    return samples


def request_counts(url: str) -> dict[str, float]:
    """rest_client_requests_total of a Flux controller, summed by HTTP method."""
    counts: dict[str, float] = {}
    for labels, value in scrape(url, "rest_client_requests_total"):
        counts[labels["method"]] = counts.get(labels["method"], 0) + value
    return counts


def reconciles(flux: Flux, namespace: str) -> float:
    """How many times kustomize-controller has reconciled the Kustomizations of `namespace`."""
    samples = scrape(flux.metrics["kustomize-controller"], "gotk_reconcile_duration_seconds_count")
    return sum(value for labels, value in samples if labels.get("namespace") == namespace)


def flux_events(namespace: str) -> dict[str, int]:
    """The Events about Flux's own objects in `namespace`: name -> how often each was said."""
    counts = {}
    for kind in ("GitRepository", "Kustomization"):
        out = kubectl(
            "get", "events", "-n", namespace, "--field-selector", f"involvedObject.kind={kind}",
            "-o", "json",
        ).stdout  # fmt: skip
        counts.update(
            {e["metadata"]["name"]: int(e["count"] or 1) for e in json.loads(out)["items"]}
        )
    return counts


def resource_versions(namespaces: list[str], kinds: str) -> dict[str, str]:
    """Every object of `kinds` in `namespaces`, as KIND/NAMESPACE/NAME -> resourceVersion."""
    versions = {}
    for namespace in namespaces:
        out = kubectl("get", kinds, "-n", namespace, "-o", "json").stdout
        for item in json.loads(out)["items"]:
            meta = item["metadata"]
            versions[f"{item['kind']}/{namespace}/{meta['name']}"] = meta["resourceVersion"]
    return versions
