"""GitOps for real: Flux applies Flavors from a Git repository, the operator runs the trains.

Every change here is a commit pushed to the local Git server (`make gitops-up`); Flux's
source-controller fetches it, its kustomize-controller applies it to the operator's
control namespace, and people approve with `kubectl annotate`, as the README says.
"""

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adroit.kube.metrics import API_REQUESTS
from tests.integration.gitops import (
    Flux,
    Repository,
    applied,
    condition,
    flavor_file,
    flux_events,
    follow,
    kustomization,
    reconcile_now,
    reconciles,
    refused,
    request_counts,
    resource_versions,
    running_flux,
)
from tests.integration.operator import Operator, own_operator
from tests.kube import eventually, kubectl

V1, V2 = "694a577a", "c80c6746"
# Figures for the report (pytest -rP shows them): the operator in-process holds stdout.
log = logging.getLogger("gitops")
# Everything the operator, Flux and the cluster's controllers write for a flavor.
WRITTEN = (
    "flavors,trains,controllerrevisions,events,deployments,replicasets,pods,services,"
    "poddisruptionbudgets,httproutes.gateway.networking.k8s.io,"
    "kustomizations.kustomize.toolkit.fluxcd.io,gitrepositories.source.toolkit.fluxcd.io"
)


@pytest.fixture(scope="module")
def flux() -> Flux:
    return running_flux()


@pytest.fixture(scope="module")
def repo(flux: Flux, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repository]:
    """One repository for the module's tests, each of them in a folder of its own."""
    repository = Repository(flux, tmp_path_factory.mktemp("git"))
    yield repository
    repository.remove()


def gitops_operator(tmp_path: Path, flux: Flux, **settings: Any) -> Any:
    """An operator that trusts Flux's identity to name the author of a change."""
    return own_operator(tmp_path, approval={"trustedAuthors": [flux.user]}, **settings)


@pytest.fixture
def op(tmp_path: Path, flux: Flux) -> Iterator[Operator]:
    with gitops_operator(tmp_path, flux) as running:
        running.start()
        yield running


def ship(op: Operator, known: set[str], approver: str = "alice") -> str:
    """The train a commit formed, approved once it waits, until Deployed."""
    train = op.new_train(known)
    op.wait_phase(train, "AwaitingApproval")
    op.approve(train, approver)
    op.wait_phase(train, "Deployed")
    return train


def names(op: Operator) -> set[str]:
    return {t["metadata"]["name"] for t in op.trains()}


def cars(op: Operator, train: str) -> list[str]:
    return [c["flavor"] for c in op.get("train", train)["spec"]["cars"]]


def test_a_committed_flavor_reaches_production_once_approved(
    op: Operator, repo: Repository
) -> None:
    follow(op, repo, op.ns)
    pushed = time.monotonic()
    commit = repo.commit(
        {f"{op.ns}/ads.yaml": flavor_file(op, "ads", V1, "bob")}, "bob", "ads: a first model"
    )
    eventually(lambda: op.deployments("staging", "ads"), what="the staging Deployment")
    log.info("commit to staging Deployment: %.1f s", time.monotonic() - pushed)
    applied(op, commit)
    train = op.new_train()
    waiting = op.wait_phase(train, "AwaitingApproval")
    assert waiting["spec"]["engineer"] == "bob", "the commit's author drives the train"
    assert op.model_version("staging", "ads") == V1
    assert op.deployments("production", "ads") == [], "production waits for a person"
    op.approve(train, "alice")
    op.wait_phase(train, "Deployed")
    assert op.model_version("production", "ads") == V1
    labels = op.get("flavor", "ads")["metadata"]["labels"]
    assert labels["kustomize.toolkit.fluxcd.io/name"] == "flavors", "Flux applied it"


def test_a_commit_while_a_train_runs_boards_the_next_train(op: Operator, repo: Repository) -> None:
    follow(op, repo, op.ns)
    repo.commit({f"{op.ns}/ads.yaml": flavor_file(op, "ads", V1, "bob")}, "bob", "ads")
    first = op.new_train()
    op.wait_phase(first, "AwaitingApproval")
    commit = repo.commit(
        {f"{op.ns}/search.yaml": flavor_file(op, "search", V1, "bob")}, "bob", "search"
    )
    applied(op, commit)
    eventually(
        lambda: condition(op.get("flavor", "search"), "PendingChanges").get("status") == "True",
        what="search to wait for a train",
    )
    assert cars(op, first) == ["ads"], "a train's cars never change"
    assert [t["metadata"]["name"] for t in op.trains()] == [first], "one train on the tracks"
    op.approve(first, "alice")
    op.wait_phase(first, "Deployed")
    second = ship(op, {first})
    assert cars(op, second) == ["search"]
    assert op.model_version("production", "search") == V1


def test_git_revert_ships_the_earlier_revision(op: Operator, repo: Repository) -> None:
    follow(op, repo, op.ns)
    path = f"{op.ns}/ads.yaml"
    repo.commit({path: flavor_file(op, "ads", V1, "bob")}, "bob", "ads v1")
    first = ship(op, set())
    bad = repo.commit({path: flavor_file(op, "ads", V2, "bob")}, "bob", "ads v2")
    second = ship(op, {first})
    assert op.model_version("production", "ads") == V2
    revert = repo.revert(bad, "bob")
    applied(op, revert)
    train = ship(op, {first, second})
    assert op.model_version("production", "ads") == V1
    assert op.get("flavor", "ads")["spec"]["model"]["version"] == V1
    assert cars(op, train) == ["ads"]


def test_a_refused_commit_shows_in_flux_and_touches_nothing(op: Operator, repo: Repository) -> None:
    follow(op, repo, op.ns)
    good = f"{op.ns}/ads.yaml"
    repo.commit({good: flavor_file(op, "ads", V1, "bob")}, "bob", "ads v1")
    ship(op, set())
    before = op.get("flavor", "ads")
    known = names(op)
    climbing = {"model": {**before["spec"]["model"], "configPath": "../secrets/config.yaml"}}
    mirrored = {"shadow": {"model": {"version": V2}, "mirrorPercent": 80, "trafficPercent": 0}}
    for refused_spec, says in [
        (climbing, "may not climb"),  # the CRD's rule, from the API server
        (mirrored, "over the mirror cap of 50"),  # the webhook's, from the settings
    ]:
        commit = repo.commit(
            {
                good: flavor_file(op, "ads", V2, "bob"),  # a valid change in the same commit
                f"{op.ns}/bad.yaml": flavor_file(op, "bad", V1, "bob", **refused_spec),
            },
            "bob",
            f"bad: refused ({says})",
        )
        message = refused(op, commit)
        log.info("Flux's Kustomization says: %s", message)
        assert says in message, message
        assert f"Flavor/{op.ns}/bad" in message, message
    after = op.get("flavor", "ads")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert kubectl("get", "flavor", "bad", "-n", op.ns, check=False).returncode != 0
    assert names(op) == known, "no train formed"
    assert op.model_version("staging", "ads") == V1
    assert op.model_version("production", "ads") == V1
    # The next good commit goes through as usual.
    fixed = repo.commit({f"{op.ns}/bad.yaml": None}, "bob", "bad: removed")
    applied(op, fixed)
    ship(op, known)
    assert op.model_version("production", "ads") == V2


def test_the_commit_author_cannot_approve_the_train_of_their_change(
    op: Operator, repo: Repository
) -> None:
    follow(op, repo, op.ns)
    repo.commit({f"{op.ns}/ads.yaml": flavor_file(op, "ads", V1, "alice")}, "alice", "ads")
    train = op.new_train()
    op.wait_phase(train, "AwaitingApproval")
    annotations = op.get("flavor", "ads")["metadata"]["annotations"]
    assert annotations["adroit.dev/changed-by"] == "alice", "the commit's author, not Flux"
    refusal = kubectl(
        "annotate", "train", train, "-n", op.ns, "adroit.dev/approved=true", user="alice",
        check=False,
    )  # fmt: skip
    assert refusal.returncode != 0
    assert "separation of duties" in refusal.stderr, refusal.stderr
    log.info("alice's approval: %s", refusal.stderr.strip())
    op.approve(train, "carol")
    assert op.wait_phase(train, "Deployed")["status"]["approval"]["by"] == "carol"


def writes(op: Operator) -> float:
    """The write requests the operator in this process has made so far."""
    return sum(
        sample.value
        for metric in API_REQUESTS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels["verb"] not in ("GET", "WATCH")
    )


# Long enough for six of Flux's looks at the cluster (APPLY_INTERVAL): a fight would show
# at each of them.
IDLE = 30


def test_flux_and_the_operator_do_not_fight(tmp_path: Path, flux: Flux, repo: Repository) -> None:
    # Without leader election: a Lease renewed every 2 s is the one write an idle leader makes.
    with gitops_operator(tmp_path, flux, leaderElection={"enabled": False}) as op:
        op.start()
        follow(op, repo, op.ns)
        repo.commit({f"{op.ns}/ads.yaml": flavor_file(op, "ads", V1, "bob")}, "bob", "ads")
        ship(op, set())
        eventually(
            lambda: condition(op.get("flavor", "ads")).get("status") == "True",
            what="the flavor to be Ready",
        )
        reconcile_now(op)  # Flux has seen the world the operator made
        flavor = op.get("flavor", "ads")
        namespaces = [op.ns, op.staging, op.production]
        before = resource_versions(namespaces, WRITTEN)
        said = flux_events(op.ns)
        operator_writes, flux_reconciles = writes(op), reconciles(flux, op.ns)
        flux_requests = {name: request_counts(url) for name, url in flux.metrics.items()}
        time.sleep(IDLE)
        after = resource_versions(namespaces, WRITTEN)
        told = flux_events(op.ns)
        looked = reconciles(flux, op.ns) - flux_reconciles
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        # Flux keeps its own books at every reconcile, whatever it finds: the Kustomization's
        # status (history, Ready's time) and an Event each from kustomize-controller
        # ("Reconciliation finished") and source-controller ("no changes since ...").
        own = {f"Kustomization/{op.ns}/flavors"} | {f"Event/{op.ns}/{name}" for name in told}
        log.info(
            "idle %d s: the operator wrote %.0f times; Flux reconciled %.0f times and wrote "
            "%d Events and its Kustomization's status, nothing else",
            IDLE,
            writes(op) - operator_writes,
            looked,
            sum(told.values()) - sum(said.values()),
        )
        for name, url in flux.metrics.items():
            now = request_counts(url)
            delta = {m: now[m] - flux_requests[name].get(m, 0) for m in now}
            log.info("  %s requests: %s", name, json.dumps(delta))
        others = [k for k in changed if k not in own]
        assert others == [], f"written while idle: {others}"
        assert writes(op) == operator_writes, "the operator wrote while idle"
        assert looked >= 1, "Flux looked at the world (its drift correction) meanwhile"
        # Flux's drift correction left what the operator and its webhook write.
        kept = op.get("flavor", "ads")
        assert kept["metadata"]["resourceVersion"] == flavor["metadata"]["resourceVersion"]
        assert "adroit.dev/finalizer" in kept["metadata"]["finalizers"]
        for key in ("adroit.dev/changed-by", "adroit.dev/authors"):
            assert kept["metadata"]["annotations"][key] == flavor["metadata"]["annotations"][key]
        assert condition(kept)["status"] == "True"


# Flux's CEL health check for Flavors (README, GitOps), the same judgement as the Argo CD
# health check: kstatus alone counts a Flavor the operator has not yet written a status
# for as Current, this waits for its Ready condition.
FLAVOR_HEALTH = {
    "apiVersion": "adroit.dev/v1alpha1",
    "kind": "Flavor",
    "current": "has(status.conditions) && "
    "status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')",
    "failed": "has(status.conditions) && status.conditions.exists(c, c.type == 'Ready' && "
    "c.status == 'False' && c.reason in ['NotDeployed', 'RemovalNotDeployed'])",
}


@pytest.mark.parametrize("health", ["kstatus", "cel"])
def test_a_kustomization_that_waits_is_ready_when_its_flavors_are(
    op: Operator, repo: Repository, health: str
) -> None:
    follow(op, repo, op.ns, wait=True, health=[FLAVOR_HEALTH] if health == "cel" else [])
    commit = repo.commit({f"{op.ns}/ads.yaml": flavor_file(op, "ads", V1, "bob")}, "bob", "ads")
    train = op.new_train()
    op.wait_phase(train, "AwaitingApproval")
    flavor = op.get("flavor", "ads")
    assert flavor["status"]["observedGeneration"] == flavor["metadata"]["generation"]
    assert condition(flavor)["status"] == "False"
    waiting = condition(kustomization(op))
    assert waiting.get("status") != "True", "Flux waits for the Flavor"
    assert waiting.get("reason") == "Progressing", waiting
    op.approve(train, "alice")
    op.wait_phase(train, "Deployed")
    ready = applied(op, commit)
    assert "Applied revision" in condition(ready)["message"]
    assert condition(op.get("flavor", "ads"))["status"] == "True"
