#!/usr/bin/env bash
# Exit 0 when kubectl's current cluster (KUBECONFIG, --context unset) is the local
# cluster of hack/cluster/up.sh: the same server and the same certificate
# authority, which up.sh created for this cluster alone. Any other cluster, kind
# on 127.0.0.1 included, exits 1 with the reason on stderr.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${ADROIT_CLUSTER_DIR:-$here/../../.cluster}"
dir="$(cd "$dir" 2>/dev/null && pwd || echo "$dir")"
kubectl="${KUBECTL:-kubectl}"
local_config="$dir/kubeconfig"
fields='{.clusters[0].cluster.server} {.clusters[0].cluster.certificate-authority-data}'

if [[ ! -f "$local_config" ]]; then
  echo "no local cluster: $local_config does not exist (make cluster-up)" >&2
  exit 1
fi
ours="$("$kubectl" --kubeconfig "$local_config" config view --raw --minify -o jsonpath="$fields")"
current="$("$kubectl" config view --raw --minify -o jsonpath="$fields" 2>/dev/null || true)"
if [[ -z "$current" || "$current" != "$ours" ]]; then
  shown="${current%% *}"
  echo "the current cluster (${shown:-none}) is not the local one (${ours%% *}, $local_config)" >&2
  exit 1
fi
