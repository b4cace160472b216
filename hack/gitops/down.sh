#!/usr/bin/env bash
# Stop what hack/gitops/up.sh started, and nothing else. The repositories under
# $ADROIT_CLUSTER_DIR/gitops/git stay (up.sh serves them again).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${ADROIT_CLUSTER_DIR:-$here/../../.cluster}/gitops"
[[ -d "$dir/pids" ]] || exit 0
dir="$(cd "$dir" && pwd)"

ours() {  # ours PID: the process was started from this directory
  [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF "$dir/"
}
pids=()
for name in kustomize-controller source-controller git-server; do
  file="$dir/pids/$name.pid"
  [[ -f "$file" ]] || continue
  pid="$(cat "$file")"
  if ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid")
  fi
  rm -f "$file"
done
for pid in "${pids[@]}"; do
  for _ in $(seq 50); do ours "$pid" || break; sleep 0.1; done
  ours "$pid" && kill -KILL "$pid" 2>/dev/null || true
done
rm -f "$dir/env"
printf '[gitops] stopped %d process(es)\n' "${#pids[@]}" >&2
