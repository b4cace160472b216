#!/usr/bin/env bash
# Stop what hack/cluster/up.sh started, and nothing else.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${ADROIT_CLUSTER_DIR:-$here/../../.cluster}"
[[ -d "$dir/pids" ]] || exit 0
dir="$(cd "$dir" && pwd)"

# shellcheck source=../lib/processes.sh
source "$here/../lib/processes.sh"
# Clients first, etcd last, so nothing logs a storm of connection errors.
stop kwok kube-scheduler kube-controller-manager kube-apiserver etcd
printf '[cluster] stopped %d process(es)\n' "$stopped" >&2
