#!/usr/bin/env bash
# Start a local model server and Prometheus for verification checks, on loopback:
#   hack/verification/up.sh DIR
# MLServer (its own virtualenv, hack/verification/mlserver.sh) serves the models of
# models.py, trained here into DIR/models; Prometheus (the Debian package) scrapes its
# metrics every second, with its data in DIR/prometheus. Writes DIR/endpoints.env
# (MLSERVER_URL, PROMETHEUS_URL) and DIR/pids; hack/verification/down.sh DIR stops exactly
# those processes. Waits until both answer.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$(mkdir -p "$1" && cd "$1" && pwd)"
command -v prometheus >/dev/null || {
  echo "hack/verification/up.sh: no prometheus: apt-get install prometheus (hack/tools/debs.sh)" >&2
  exit 1
}
venv="$("$here/mlserver.sh")"
if [[ -f "$dir/pids" ]]; then "$here/down.sh" "$dir"; fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# MLSERVER_PORT and PROMETHEUS_PORT fix the two ports people use (make verification-up).
http=${MLSERVER_PORT:-$(free_port)}; prom=${PROMETHEUS_PORT:-$(free_port)}
grpc=$(free_port); metrics=$(free_port)

rm -rf "$dir/models"
"$venv/bin/python" "$here/models.py" "$dir/models"
cat >"$dir/models/settings.json" <<JSON
{"host": "127.0.0.1", "http_port": $http, "grpc_port": $grpc, "metrics_port": $metrics,
 "parallel_workers": 0, "load_models_at_startup": true}
JSON
cat >"$dir/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
- job_name: mlserver
  static_configs: [{targets: ["127.0.0.1:$metrics"]}]
YAML

: >"$dir/pids"
(cd "$dir/models" && exec "$venv/bin/mlserver" start . >"$dir/mlserver.log" 2>&1) &
echo $! >>"$dir/pids"
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/prometheus" \
  --web.listen-address="127.0.0.1:$prom" >"$dir/prometheus.log" 2>&1 &
echo $! >>"$dir/pids"

cat >"$dir/endpoints.env" <<ENV
MLSERVER_URL=http://127.0.0.1:$http
PROMETHEUS_URL=http://127.0.0.1:$prom
ENV
wait_for() {  # url what log
  for _ in $(seq 1 240); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.25
  done
  echo "hack/verification/up.sh: $2 did not start; see $3" >&2
  "$here/down.sh" "$dir"
  exit 1
}
wait_for "http://127.0.0.1:$http/v2/models/iris/ready" MLServer "$dir/mlserver.log"
wait_for "http://127.0.0.1:$prom/-/ready" Prometheus "$dir/prometheus.log"
cat "$dir/endpoints.env"
