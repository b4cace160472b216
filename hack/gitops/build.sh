#!/usr/bin/env bash
# Build Flux's source-controller and kustomize-controller from their Go
# modules, once per version (several minutes each on two cores).
#
#   hack/gitops/build.sh            build whatever is missing from the cache
#   hack/gitops/build.sh --print    print the binaries, and the CRDs and roles of their modules
#
# Nothing built here goes into the repository: binaries live in
# ${ADROIT_CACHE:-${XDG_CACHE_HOME:-~/.cache}/adroit}/bin/<name>-<version>/.
# Each controller's go.mod replaces its ./api module with a local path, which
# the module zip does not hold: the module and its api module are copied out
# of the module cache into a writable folder and built there.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${ADROIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/adroit}"
source_dir="$cache/bin/source-controller-$FLUX_SOURCE_VERSION"
kustomize_dir="$cache/bin/kustomize-controller-$FLUX_KUSTOMIZE_VERSION"

module_dir() {  # module_dir MODULE@VERSION: its folder in the module cache
  go mod download -json "$1" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'
}

if [[ "${1:-}" == "--print" ]]; then
  export GOTOOLCHAIN=local  # reading the module cache needs no newer Go
  echo "SOURCE_CONTROLLER=$source_dir/source-controller"
  echo "KUSTOMIZE_CONTROLLER=$kustomize_dir/kustomize-controller"
  source_module="$(module_dir "github.com/fluxcd/source-controller@$FLUX_SOURCE_VERSION")"
  kustomize_module="$(module_dir "github.com/fluxcd/kustomize-controller@$FLUX_KUSTOMIZE_VERSION")"
  echo "SOURCE_CRDS=$source_module/config/crd/bases"
  echo "KUSTOMIZE_CRDS=$kustomize_module/config/crd/bases"
  echo "SOURCE_RBAC=$source_module/config/rbac/role.yaml"
  echo "KUSTOMIZE_RBAC=$kustomize_module/config/rbac/role.yaml"
  exit 0
fi

# The toolchain of versions.env, here only: a Flux release may need a newer Go than
# the project, which builds with the machine's.
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN="$FLUX_GO_TOOLCHAIN"
log() { printf '[gitops %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# One build at a time: a second caller waits for the first and then finds
# everything cached.
mkdir -p "$cache"
exec 9>"$cache/gitops.lock"
flock 9

build_controller() {  # build_controller NAME VERSION DIR
  local name="$1" version="$2" dir="$3" module="github.com/fluxcd/$1"
  [[ -x "$dir/$name" ]] && return
  log "building $name $version (several minutes, once)"
  local src="$cache/src/$name-$version" started=$SECONDS
  rm -rf "$src" && mkdir -p "$cache/src"
  cp -r "$(module_dir "$module@$version")" "$src"
  cp -r "$(module_dir "$module/api@$version")" "$src/api"
  chmod -R u+w "$src"
  mkdir -p "$dir.tmp"
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$dir.tmp/$name" .)
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  log "$name $version built in $((SECONDS - started)) s"
}

start=$SECONDS
build_controller source-controller "$FLUX_SOURCE_VERSION" "$source_dir"
build_controller kustomize-controller "$FLUX_KUSTOMIZE_VERSION" "$kustomize_dir"
log "Flux controllers ready in $((SECONDS - start)) s under $cache/bin"
