#!/usr/bin/env bash
# Load-balancer test: three `falcon serve` backends behind nginx on loopback
# (scripts/nginx-lb.sh). Checks that requests are spread over every backend, and that
# after one backend is killed every request still succeeds on the others.
#   scripts/test_nginx_lb.sh [FALCON_BINARY]     (default build/bin/falcon)
# Skips (exit 0) when nginx is not installed (apt-get install nginx).
set -euo pipefail
cd "$(dirname "$0")/.."
falcon=${1:-build/bin/falcon}
if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
  echo "SKIP load-balancer test: nginx not found (apt-get install nginx)"
  exit 0
fi
[[ -x "$falcon" ]] || { echo "load-balancer test: $falcon not built" >&2; exit 1; }

work=$(mktemp -d)
lb_pid=""
cleanup() {
  [[ -n "$lb_pid" ]] && kill -TERM "$lb_pid" 2>/dev/null && wait "$lb_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
scripts/nginx-lb.sh --model tests/fixtures/perception-tiny/model --backends 3 --port "$port" --falcon "$falcon" \
  --dir "$work/lb" >"$work/lb.out" 2>&1 &
lb_pid=$!
for _ in $(seq 1 600); do
  grep -q '^ready:' "$work/lb.out" 2>/dev/null && break
  kill -0 "$lb_pid" 2>/dev/null || { cat "$work/lb.out" >&2; exit 1; }
  sleep 0.1
done
grep -q '^ready:' "$work/lb.out" || { echo "load balancer did not start" >&2; cat "$work/lb.out" >&2; exit 1; }
cat "$work/lb.out"

image=$(base64 -w0 tests/fixtures/perception-tiny/images/shapes-40x30-rgba.png)
printf '{"image":{"base64":"%s"},"query":"a shape","task":"detection","max_tokens":3}' "$image" >"$work/body.json"
fails=0
# Sends N predictions through nginx; counts answers other than 200 into $fails.
send() {
  local n=$1 code
  for _ in $(seq 1 "$n"); do
    code=$(curl -s -o "$work/answer.json" -w '%{http_code}' -H 'Content-Type: application/json' \
      --data-binary @"$work/body.json" "http://127.0.0.1:$port/v1/predictions")
    if [[ "$code" != 200 ]]; then
      fails=$((fails + 1))
      echo "answer $code: $(head -c 300 "$work/answer.json")"
    fi
  done
}
# Predictions each backend has completed, from its own /v1/status.
completed() {
  curl -fsS "http://127.0.0.1:$1/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["workers"][0]["completed"])'
}

status=0
send 30
mapfile -t lines <"$work/lb/backends"
counts=()
for line in "${lines[@]}"; do counts+=("$(completed "${line#* }")"); done
echo "30 requests: per backend ${counts[*]}; failures $fails"
for c in "${counts[@]}"; do
  ((c >= 5)) || { echo "FAIL: a backend got only $c of 30 requests"; status=1; }
done
((fails == 0)) || { echo "FAIL: $fails requests failed with every backend up"; status=1; }

# Kill one backend outright (no draining), then keep sending.
victim_pid=${lines[0]%% *}
kill -KILL "$victim_pid"
echo "killed backend ${lines[0]#* } (pid $victim_pid)"
fails=0
send 30
after=()
for line in "${lines[@]:1}"; do after+=("$(completed "${line#* }")"); done
served=$(( after[0] - counts[1] + after[1] - counts[2] ))
echo "30 requests with one backend down: survivors served $served; failures $fails"
((fails == 0)) || { echo "FAIL: $fails requests failed after a backend died"; status=1; }
((served == 30)) || { echo "FAIL: the surviving backends served $served of 30"; status=1; }
grep -c 'upstream_status=502\|upstream=.*, ' "$work/lb/access.log" >/dev/null && \
  echo "nginx retried on another backend: $(grep -c ', ' "$work/lb/access.log") time(s)"

kill -TERM "$lb_pid"
wait "$lb_pid" || true
lb_pid=""
((status == 0)) && echo "load-balancer test passed"
exit $status
