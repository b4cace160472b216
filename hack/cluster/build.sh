#!/usr/bin/env bash
# Build the local control plane from Go modules, once per version.
#
#   hack/cluster/build.sh            build whatever is missing from the cache
#   hack/cluster/build.sh --print    print the cache directory of each binary
#
# Nothing built here goes into the repository: binaries live in
# ${ADROIT_CACHE:-${XDG_CACHE_HOME:-~/.cache}/adroit}/bin/<name>-<version>/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${ADROIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/adroit}"
kube_dir="$cache/bin/kubernetes-$KUBE_VERSION"
etcd_dir="$cache/bin/etcd-$ETCD_VERSION"
kwok_dir="$cache/bin/kwok-$KWOK_VERSION"

if [[ "${1:-}" == "--print" ]]; then
  echo "KUBE_BIN=$kube_dir"
  echo "ETCD_BIN=$etcd_dir"
  echo "KWOK_BIN=$kwok_dir"
  exit 0
fi

export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
log() { printf '[build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# One build at a time: a second caller waits for the first and then finds
# everything cached.
mkdir -p "$cache"
exec 9>"$cache/build.lock"
flock 9

scratch_module() {  # scratch_module DIR: an empty module to build others from
  rm -rf "$1" && mkdir -p "$1"
  (cd "$1" && go mod init adroit.dev/localcluster/build >/dev/null 2>&1)
}

build_kubernetes() {
  [[ -x "$kube_dir/kube-apiserver" && -x "$kube_dir/kube-controller-manager" \
     && -x "$kube_dir/kube-scheduler" ]] && return
  log "building kube-apiserver, kube-controller-manager, kube-scheduler $KUBE_VERSION"
  local src="$cache/src/kubernetes-$KUBE_VERSION" minor staging
  scratch_module "$src"
  minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them
  # with local paths, which do not apply to a dependency: point each one at
  # its published release instead.
  staging="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" \
    | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' | xargs grep -E '=> \./staging/' \
    | awk '{print $1}')"
  {
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    for m in $staging; do echo "replace $m => $m v0.${KUBE_VERSION#v1.}"; done
  } >>"$src/go.mod"
  local version_pkgs="k8s.io/component-base/version k8s.io/client-go/pkg/version"
  local ldflags="-s -w" p
  for p in $version_pkgs; do
    ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$kube_dir.tmp"
  (cd "$src" && go mod tidy >/dev/null 2>&1 || true
   go get "k8s.io/kubernetes@$KUBE_VERSION" \
   && go build -mod=mod -trimpath -ldflags "$ldflags" -o "$kube_dir.tmp/" \
        k8s.io/kubernetes/cmd/kube-apiserver \
        k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler)
  rm -rf "$kube_dir" && mv "$kube_dir.tmp" "$kube_dir"
}

build_etcd() {
  [[ -x "$etcd_dir/etcd" ]] && return
  log "building etcd $ETCD_VERSION"
  local src="$cache/src/etcd-$ETCD_VERSION"
  scratch_module "$src"
  mkdir -p "$etcd_dir.tmp"
  # server/v3 is etcd's main package; its own go.mod replaces siblings with
  # local paths, so it is built as a dependency rather than with go install.
  (cd "$src" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" \
   && go build -mod=mod -trimpath -ldflags "-s -w" -o "$etcd_dir.tmp/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$etcd_dir" && mv "$etcd_dir.tmp" "$etcd_dir"
}

build_kwok() {
  [[ -x "$kwok_dir/kwok" ]] && return
  log "building kwok $KWOK_VERSION"
  mkdir -p "$kwok_dir.tmp"
  GOBIN="$kwok_dir.tmp" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  rm -rf "$kwok_dir" && mv "$kwok_dir.tmp" "$kwok_dir"
}

start=$SECONDS
build_etcd
build_kwok
build_kubernetes
log "control plane binaries ready in $((SECONDS - start)) s under $cache/bin"
