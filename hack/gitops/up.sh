#!/usr/bin/env bash
# Start Flux beside the local cluster: a Git server over smart HTTP, source-controller
# and kustomize-controller as local processes, everything on loopback.
#
# Idempotent: when they already run, it returns at once. Needs the local cluster
# (hack/cluster/up.sh). State in $ADROIT_CLUSTER_DIR/gitops (default .cluster/gitops):
#   env           GIT_URL, GIT_ROOT, FLUX_USER, the controllers' metrics addresses
#   git/          the served repositories; flavors.git is created with a first commit
#   storage/      source-controller's artifacts, served on loopback
#   logs/, pids/  one of each per process; hack/gitops/down.sh stops exactly those
#
# Flux runs as two ServiceAccounts of flux-system, as in a cluster: source-controller
# with the rights of its own module's role, kustomize-controller with adroit-developer
# (it applies Flavors, nothing else). Their tokens come from the TokenRequest API.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cluster="${ADROIT_CLUSTER_DIR:-$repo/.cluster}"
[[ -f "$cluster/kubeconfig" ]] || {
  echo "hack/gitops/up.sh: no local cluster in $cluster: run make cluster-up first" >&2
  exit 1
}
cluster="$(cd "$cluster" && pwd)"
dir="$cluster/gitops"
kubeconfig="$cluster/kubeconfig"
k() { kubectl --kubeconfig "$kubeconfig" "$@"; }
log() { printf '[gitops %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
start=$SECONDS

# shellcheck source=../lib/processes.sh
source "$here/../lib/processes.sh"
processes=(git-server source-controller kustomize-controller)
running=0
for p in "${processes[@]}"; do alive "$p" && running=$((running + 1)); done
if ((running == ${#processes[@]})); then
  log "already running ($(grep GIT_URL "$dir/env"))"
  exit 0
fi
if ((running > 0)); then
  log "partly running: stopping it first"
  "$here/down.sh"
fi

"$here/build.sh"
eval "$("$here/build.sh" --print)"

rm -rf "$dir/pids" "$dir/logs" "$dir/storage"
mkdir -p "$dir/pids" "$dir/logs" "$dir/storage" "$dir/git"
read -r git_port storage_port source_metrics source_health kustomize_metrics kustomize_health \
  <<<"$(free_ports 6)"

log "installing Flux's CRDs from its modules"
k apply --server-side --force-conflicts --field-manager=adroit-gitops \
  -f "$SOURCE_CRDS" -f "$KUSTOMIZE_CRDS" >/dev/null
k wait --for=condition=Established --timeout=60s \
  crd/gitrepositories.source.toolkit.fluxcd.io crd/kustomizations.kustomize.toolkit.fluxcd.io >/dev/null

log "creating flux-system, its ServiceAccounts and their rights"
{
  sed 's/name: manager-role/name: flux-source-controller/' "$SOURCE_RBAC"
  echo ---
  sed 's/name: manager-role/name: flux-kustomize-controller/' "$KUSTOMIZE_RBAC"
  echo ---
  cat "$here/flux-system.yaml"
} | k apply --server-side --force-conflicts --field-manager=adroit-gitops -f - >/dev/null

controller_kubeconfig() {  # controller_kubeconfig NAME: a kubeconfig with the SA's token
  local token server ca
  token="$(k -n flux-system create token "$1" --duration=8760h)"
  server="$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
  ca="$(k config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')"
  cat >"$dir/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server", certificate-authority-data: $ca}}]
users: [{name: $1, user: {token: $token}}]
contexts: [{name: $1, context: {cluster: local, user: $1}}]
current-context: $1
KC
  chmod 600 "$dir/$1.kubeconfig"
}
controller_kubeconfig source-controller
controller_kubeconfig kustomize-controller

# Each runs through a link in $dir, so that its command line names $dir (down.sh checks).
mkdir -p "$dir/bin"
ln -sfn "$SOURCE_CONTROLLER" "$dir/bin/source-controller"
ln -sfn "$KUSTOMIZE_CONTROLLER" "$dir/bin/kustomize-controller"
wait_for() {  # wait_for NAME SECONDS COMMAND...: or stop everything and fail
  wait_until "$@" || { "$here/down.sh" >/dev/null 2>&1 || true; exit 1; }
}

log "starting the Git server on http://127.0.0.1:$git_port/"
launch git-server python3 "$here/git-server.py" "$dir/git" "$git_port"
wait_for git-server 30 curl -sS -o /dev/null "http://127.0.0.1:$git_port/"
if [[ ! -d "$dir/git/flavors.git" ]]; then
  git init --quiet --bare --initial-branch=main "$dir/git/flavors.git"
  scratch="$(mktemp -d)"
  (cd "$scratch" && git init --quiet --initial-branch=main \
   && mkdir flavors && cp "$here/repository/README.md" . && : >flavors/.keep \
   && git add . && git -c user.name=adroit -c user.email=adroit@localhost commit --quiet \
        -m "A repository of Flavors" \
   && git push --quiet "$dir/git/flavors.git" main)
  rm -rf "$scratch"
fi

log "starting source-controller (artifacts on 127.0.0.1:$storage_port)"
launch source-controller env KUBECONFIG="$dir/source-controller.kubeconfig" \
  RUNTIME_NAMESPACE=flux-system "$dir/bin/source-controller" \
  --storage-path="$dir/storage" --storage-addr="127.0.0.1:$storage_port" \
  --storage-adv-addr="127.0.0.1:$storage_port" \
  --metrics-addr="127.0.0.1:$source_metrics" --health-addr="127.0.0.1:$source_health" \
  --watch-all-namespaces=true --enable-leader-election=false --log-level=info
log "starting kustomize-controller"
launch kustomize-controller env KUBECONFIG="$dir/kustomize-controller.kubeconfig" \
  RUNTIME_NAMESPACE=flux-system "$dir/bin/kustomize-controller" \
  --metrics-addr="127.0.0.1:$kustomize_metrics" --health-addr="127.0.0.1:$kustomize_health" \
  --watch-all-namespaces=true --enable-leader-election=false --log-level=info
wait_for source-controller 60 curl -fsS "http://127.0.0.1:$source_health/readyz"
wait_for kustomize-controller 60 curl -fsS "http://127.0.0.1:$kustomize_health/readyz"

cat >"$dir/env" <<ENV
GIT_URL=http://127.0.0.1:$git_port
GIT_ROOT=$dir/git
FLUX_USER=system:serviceaccount:flux-system:kustomize-controller
SOURCE_CONTROLLER_METRICS=http://127.0.0.1:$source_metrics/metrics
KUSTOMIZE_CONTROLLER_METRICS=http://127.0.0.1:$kustomize_metrics/metrics
ENV
k apply --server-side --field-manager=adroit-gitops -f - >/dev/null <<YAML
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: flavors, namespace: flux-system}
spec: {url: "http://127.0.0.1:$git_port/flavors.git", ref: {branch: main}, interval: 10s}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: flavors, namespace: flux-system}
spec:
  sourceRef: {kind: GitRepository, name: flavors}
  path: ./flavors
  targetNamespace: adroit
  prune: true
  interval: 1m
YAML
log "ready in $((SECONDS - start)) s: git clone http://127.0.0.1:$git_port/flavors.git"
