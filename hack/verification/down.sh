#!/usr/bin/env bash
# Stop what hack/verification/up.sh DIR started (the processes in DIR/pids, and no other).
set -euo pipefail
dir="$1"
[[ -f "$dir/pids" ]] || exit 0
while read -r pid; do
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
done <"$dir/pids"
while read -r pid; do
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
done <"$dir/pids"
rm -f "$dir/pids"
