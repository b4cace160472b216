# Local processes of hack/cluster and hack/gitops, sourced by their scripts, which set
# `dir` (their state folder) first. Each process NAME has its pid in $dir/pids/NAME.pid
# and its output in $dir/logs/NAME.log, and its command line names $dir/: a pid that
# another process took over is never mistaken for ours.

ours() {  # ours PID: the process was started from $dir
  tr "\0" " " 2>/dev/null <"/proc/$1/cmdline" | grep -qF "$dir/"
}

alive() {  # alive NAME: the process NAME started from $dir is still running
  [[ -f "$dir/pids/$1.pid" ]] && ours "$(cat "$dir/pids/$1.pid")"
}

launch() {  # launch NAME COMMAND...: in its own session, detached from our output
  local name="$1"; shift
  setsid "$@" </dev/null >>"$dir/logs/$name.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/pids/$name.pid"
  # Until it execs COMMAND, the child is a copy of this shell, whose command line does
  # not name $dir: on a loaded machine `alive` would call it dead. Wait for the exec.
  local _
  for _ in $(seq 100); do
    ours "$pid" || [[ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" =~ ^(Z|)$ ]] && break
    sleep 0.05
  done
}

ended() {  # ended NAME: sets `how` to the way a process this shell launched ended
  local status=0
  wait "$(cat "$dir/pids/$1.pid")" 2>/dev/null || status=$?
  if ((status > 128 && status < 128 + 65)); then
    how="killed by signal $(kill -l $((status - 128)))"
  elif ((status == 127)); then
    how="exit status 127: its command was not found, or another shell started it"
  else
    how="exit status $status"
  fi
}

wait_until() {  # wait_until NAME SECONDS COMMAND...: COMMAND succeeds, or say why and fail
  local name="$1" limit="$2"; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ! alive "$name"; then
      ended "$name"
      echo "$name ended before it was ready ($how); last lines of its log:" >&2
      tail -n 30 "$dir/logs/$name.log" >&2 || true
      return 1
    fi
    if ((SECONDS >= deadline)); then
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
