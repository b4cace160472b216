#!/usr/bin/env bash
# Print the paths of the traffic routers' CRD manifests, fetched with the go
# command into the module cache: Gateway API's standard channel and Istio's
# generated CRDs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
module_dir() {
  (cd "${TMPDIR:-/tmp}" && GOFLAGS=-mod=mod go mod download -json "$1") \
    | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'
}
gateway="$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")"
istio="$(module_dir "istio.io/api@$ISTIO_API_VERSION")"
ls "$gateway"/config/crd/standard/gateway.networking.k8s.io_*.yaml
echo "$istio/kubernetes/customresourcedefinitions.gen.yaml"
