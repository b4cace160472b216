#!/usr/bin/env bash
# Stop what hack/cluster/up.sh started, and nothing else.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${ADROIT_CLUSTER_DIR:-$here/../../.cluster}"
[[ -d "$dir/pids" ]] || exit 0
dir="$(cd "$dir" && pwd)"

ours() {  # ours PID: the process was started from this cluster directory
  [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF "$dir/"
}
pids=()
# Clients first, etcd last, so nothing logs a storm of connection errors.
for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
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
printf '[cluster] stopped %d process(es)\n' "${#pids[@]}" >&2
