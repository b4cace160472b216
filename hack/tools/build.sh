#!/usr/bin/env bash
# Build the tools the install tests use from Go modules, once per version:
# helm (renders and lints deploy/chart/) and lua-health (runs Argo CD health
# checks in gopher-lua, from hack/lua-health/).
#
#   hack/tools/build.sh            build whatever is missing from the cache
#   hack/tools/build.sh --print    print each binary's path (HELM=..., LUA_HEALTH=...)
#
# Nothing built here goes into the repository: binaries live in
# ${ADROIT_CACHE:-${XDG_CACHE_HOME:-~/.cache}/adroit}/bin/<name>-<version>/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${ADROIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/adroit}"
lua_src="$repo/hack/lua-health"
# The runner is ours: its version is a hash of its sources (go.mod, go.sum, *.go).
lua_version="$(cat "$lua_src"/go.mod "$lua_src"/go.sum "$lua_src"/*.go | sha256sum | cut -c1-12)"
helm_bin="$cache/bin/helm-$HELM_VERSION/helm"
lua_bin="$cache/bin/lua-health-$lua_version/lua-health"

if [[ "${1:-}" == "--print" ]]; then
  echo "HELM=$helm_bin"
  echo "LUA_HEALTH=$lua_bin"
  exit 0
fi

export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
log() { printf '[tools %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# One build at a time: a second caller waits for the first and then finds
# everything cached.
mkdir -p "$cache"
exec 9>"$cache/tools.lock"
flock 9

build_helm() {
  [[ -x "$helm_bin" ]] && return
  log "building helm $HELM_VERSION (a few minutes, once)"
  local dir="${helm_bin%/*}"
  mkdir -p "$dir.tmp"
  GOBIN="$dir.tmp" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

build_lua_health() {
  [[ -x "$lua_bin" ]] && return
  log "building lua-health $lua_version (gopher-lua, as Argo CD runs health checks)"
  local dir="${lua_bin%/*}"
  mkdir -p "$dir.tmp"
  (cd "$lua_src" && go build -trimpath -ldflags "-s -w" -o "$dir.tmp/lua-health" .)
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

start=$SECONDS
build_helm
build_lua_health
log "tools ready in $((SECONDS - start)) s under $cache/bin"
