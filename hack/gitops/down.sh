#!/usr/bin/env bash
# Stop what hack/gitops/up.sh started, and nothing else. The repositories under
# $ADROIT_CLUSTER_DIR/gitops/git stay (up.sh serves them again).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${ADROIT_CLUSTER_DIR:-$here/../../.cluster}/gitops"
[[ -d "$dir/pids" ]] || exit 0
dir="$(cd "$dir" && pwd)"

# shellcheck source=../lib/processes.sh
source "$here/../lib/processes.sh"
stop kustomize-controller source-controller git-server
rm -f "$dir/env"
printf '[gitops] stopped %d process(es)\n' "$stopped" >&2
