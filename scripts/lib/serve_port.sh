# Sourced by the scripts that start `falcon serve --port 0`: the port it printed.
#   serve_port OUT_FILE PID LOG_FILE [TRIES]  -> prints the port once OUT_FILE shows the
#   server's address; prints the log and returns 1 if the process died or never printed it
#   (TRIES x 0.1 s, default 600).
serve_port() {
  local out=$1 pid=$2 log=$3 tries=${4:-600} p=""
  for _ in $(seq 1 "$tries"); do
    p=$(grep -o 'http://127.0.0.1:[0-9]*' "$out" 2>/dev/null | head -1 | sed 's/.*://') || true
    [[ -n "$p" ]] && { echo "$p"; return 0; }
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; return 1; }
    sleep 0.1
  done
  cat "$log" >&2
  return 1
}
