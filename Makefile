# Adroit: `make run` and `make test` work on a fresh machine, alone or in order.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
SETTINGS ?= settings/local.yaml
N ?= 2000

# With no KUBECONFIG, everything runs against the local cluster of hack/cluster,
# started on demand. With one, against that cluster (kind, a real one).
ifeq ($(origin KUBECONFIG),undefined)
LOCAL_CLUSTER := 1
export KUBECONFIG := $(CURDIR)/.cluster/kubeconfig
endif

.PHONY: help venv crds check-crds webhooks check-webhooks lint typecheck imports unit static \
        cluster-up cluster-down cluster install test-users webhook-config run test \
        integration test-outage tools bench bench-scale bench-snapshot bench-status clean verification-up \
        gitops-up gitops-down \
        verification-down \
        bench-verification

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed ## create the virtualenv with the package and its dev tools

crds: venv ## write crds/ from the pydantic models
	adroit crds --out crds

check-crds: venv ## fail when crds/ is stale
	adroit crds --out crds --check

webhooks: venv ## write deploy/webhooks.yaml from adroit.plan.webhooks
	python hack/cluster/webhook-configuration.py --write deploy/webhooks.yaml

check-webhooks: venv ## fail when deploy/webhooks.yaml is stale
	python hack/cluster/webhook-configuration.py --write deploy/webhooks.yaml --check

lint: venv ## ruff: lint and format
	ruff check operator tests bench
	ruff format --check operator tests bench

typecheck: venv ## mypy (strict on adroit.api and adroit.plan)
	mypy

imports: venv ## the layer contract: handlers -> kube -> plan -> api
	lint-imports

static: check-crds check-webhooks lint typecheck imports

unit: venv ## tests that need no cluster
	pytest tests/unit -q

cluster-up: ## start the local cluster (builds its binaries once)
	hack/cluster/up.sh

cluster-down: gitops-down ## stop the local cluster (and Flux, if gitops-up started it)
	hack/cluster/down.sh

cluster:
ifdef LOCAL_CLUSTER
	hack/cluster/up.sh
endif

install: cluster ## install the namespaces, CRDs (ours and the routers') and user roles (no bindings)
	kubectl apply --server-side --force-conflicts --field-manager=adroit-install -f deploy/namespaces.yaml -f crds/ \
	  -f deploy/rbac/user-roles.yaml >/dev/null
	kubectl wait --for=condition=Established --timeout=60s crd/flavors.adroit.dev crd/trains.adroit.dev >/dev/null
	for crd in $$(hack/cluster/router-crds.sh); do \
	  kubectl apply --server-side --force-conflicts --field-manager=adroit-install -f "$$crd" >/dev/null; \
	done

# The test users' groups get the user roles cluster-wide (approve included): only
# on the local cluster, whose users exist nowhere else.
test-users: cluster ## bind alice, carol and bob to the user roles (the local cluster only)
	@hack/cluster/is-local.sh || { \
	  echo "make test-users: refused: it binds the test groups adroit:approvers and adroit:developers" \
	       "cluster-wide, and installs onto the local cluster only (unset KUBECONFIG, or point it at" \
	       "$(CURDIR)/.cluster/kubeconfig). On another cluster, bind the ClusterRoles of" \
	       "deploy/rbac/user-roles.yaml to your own groups in the control namespace, e.g." \
	       "kubectl -n adroit create rolebinding approvers --clusterrole=adroit-approver --group=GROUP" >&2; \
	  exit 1; }
	kubectl apply --server-side --field-manager=adroit-local -f hack/cluster/test-users.yaml >/dev/null

# The operator does not create its webhook configuration: it is applied here, with
# the kubeconfig's (admin) rights, for $(SETTINGS); the operator fills in caBundle.
webhook-config: venv install ## apply the webhook configuration for $(SETTINGS) (make run does)
	python hack/cluster/webhook-configuration.py --settings $(SETTINGS) \
	  | kubectl apply --server-side --force-conflicts --field-manager=adroit-install -f - >/dev/null

run: venv install webhook-config ## run the operator in the foreground against the cluster (Ctrl-C stops it)
	ADROIT_SETTINGS=$(SETTINGS) adroit run

# helm and lua-health (Argo CD's Lua engine), built from Go modules once per version.
tools: ## build the install tests' tools: helm, lua-health (cached under ~/.cache/adroit/bin)
	hack/tools/build.sh

# Two pytest workers, each test file on one of them (the tests wait on the cluster more than
# they compute); then, alone, the tests that stop the control plane.
test: venv static install tools ## lint, types, layers, unit and integration tests
	pytest -q -n 2 --dist loadfile -m "not outage"
	pytest -q -m outage

integration: venv install tools ## only the tests against the cluster
	pytest tests/integration -q

test-outage: venv install ## only the tests that stop kube-apiserver, then etcd, under a train (local cluster)
	pytest -q -rP -m outage tests/integration

bench: venv install ## time the README's flow, count API writes, measure the webhook's latency, failover and RSS
	python bench/train_flow.py
	python bench/webhook_latency.py
	python bench/shadow_route.py
	python bench/operating.py

bench-scale: venv install ## the reconciler's figures at scale, with N flavors (make bench-scale N=200; default 2000)
	python bench/scale.py --flavors $(N)

bench-snapshot: venv ## what the reconciler's wake-up holds the event loop for, with 2,000 flavors (no cluster)
	python bench/snapshot.py

bench-status: venv install ## time `kubectl adroit status` with 2,000 flavors and 50 finished trains
	python bench/status.py

# Flux's source-controller and kustomize-controller, built from Go modules once per version
# (several minutes each), and a Git server, as local processes beside the local cluster.
gitops-up: ## start Flux and a Git server beside the local cluster (tests/integration/test_gitops.py)
ifdef LOCAL_CLUSTER
	hack/cluster/up.sh
	hack/gitops/up.sh
else
	@echo "make gitops-up: runs Flux as local processes beside the local cluster only;" \
	     "on $$KUBECONFIG install Flux as usual (README, GitOps)" >&2; exit 1
endif

gitops-down: ## stop what gitops-up started
	hack/gitops/down.sh

# Fake nodes run no containers: a local MLServer stands in for every staged model server
# (settings/verification.yaml's endpoint template points there), scraped by Prometheus.
VERIFICATION := $(CURDIR)/.cluster/verification
verification-up: ## start MLServer (127.0.0.1:18080) and Prometheus (:19090) for settings/verification.yaml
	MLSERVER_PORT=18080 PROMETHEUS_PORT=19090 hack/verification/up.sh $(VERIFICATION)

verification-down: ## stop what verification-up started
	hack/verification/down.sh $(VERIFICATION)

bench-verification: venv install ## how much time verification checks add to a train
	python hack/verification/bench.py

clean: verification-down cluster-down ## stop the cluster, remove the virtualenv and caches
	rm -rf $(VENV) .cluster .mypy_cache .ruff_cache .pytest_cache .hypothesis
