# Local processes of hack/cluster and hack/gitops, sourced by their scripts, which set
# `dir` (their state folder) first. Each process NAME has its pid in $dir/pids/NAME.pid
# and its output in $dir/logs/NAME.log, and its command line names $dir/: a pid that
# another process took over is never mistaken for ours.

ours() {  # ours PID: the process was started from $dir
  [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF "$dir/"
}

alive() {  # alive NAME: the process NAME started from $dir is still running
  [[ -f "$dir/pids/$1.pid" ]] && ours "$(cat "$dir/pids/$1.pid")"
}

launch() {  # launch NAME COMMAND...: in its own session, detached from our output
  local name="$1"; shift
  setsid "$@" </dev/null >>"$dir/logs/$name.log" 2>&1 &
  echo $! >"$dir/pids/$name.pid"
}

wait_until() {  # wait_until NAME SECONDS COMMAND...: COMMAND succeeds, or say why and fail
  local name="$1" limit="$2"; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)) || ! alive "$name"; then
      echo "$name not ready after ${limit}s; last lines of its log:" >&2
      tail -n 30 "$dir/logs/$name.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

stop() {  # stop NAME...: TERM each, in this order, then KILL what is left after 5 s
  local name file pid pids=()
  for name in "$@"; do
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
  stopped=${#pids[@]}
}

free_ports() {  # free_ports N: N distinct TCP ports free on loopback right now
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}
