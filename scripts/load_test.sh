#!/usr/bin/env bash
# Bounded load test of `falcon serve`: a fixed number of POST /v1/predictions through wrk
# (Debian package wrk) at a given concurrency; prints p50/p90/p99 latency and throughput.
#   scripts/load_test.sh --model DIR [--falcon BIN] [--requests N] [--concurrency C]
#                        [--image FILE] [--task T] [--query Q] [--max-tokens N]
#                        [--min-size N] [--max-size N] [--wrk-timeout S]
#                        [-- more `falcon serve` options]
# Starts its own server on a free loopback port and stops it afterwards. A warm-up request
# runs first and is not counted. --wrk-timeout (default 30 s) is the longest latency wrk
# records; its histogram takes 8 bytes per microsecond of it, so keep it modest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/serve_port.sh"
model="" falcon="$here/../build/bin/falcon" requests=100 concurrency=8 image="" task=detection
query="a shape" max_tokens=8 min_size="" max_size="" wrk_timeout=30 extra=()
while (($#)); do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --falcon) falcon=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --image) image=$2; shift 2 ;;
    --task) task=$2; shift 2 ;;
    --query) query=$2; shift 2 ;;
    --max-tokens) max_tokens=$2; shift 2 ;;
    --min-size) min_size=$2; shift 2 ;;
    --max-size) max_size=$2; shift 2 ;;
    --wrk-timeout) wrk_timeout=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "load_test.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n "$model" ]] || { echo "load_test.sh: --model is required" >&2; exit 2; }
command -v wrk >/dev/null || { echo "load_test.sh: wrk not found (apt-get install wrk)" >&2; exit 1; }
[[ -n "$image" ]] || image="$here/../tests/fixtures/perception-tiny/images/shapes-200x120.png"

work=$(mktemp -d)
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

python3 - "$image" "$task" "$query" "$max_tokens" "$min_size" "$max_size" >"$work/body.json" <<'PY'
import base64, json, sys
image, task, query, max_tokens, min_size, max_size = sys.argv[1:]
body = {"image": {"base64": base64.b64encode(open(image, "rb").read()).decode()}, "task": task,
        "max_tokens": int(max_tokens)}
if not task.startswith("ocr"):
    body["query"] = query
if min_size:
    body["min_image_size"] = int(min_size)
if max_size:
    body["max_image_size"] = int(max_size)
print(json.dumps(body))
PY

"$falcon" serve --model "$model" --port 0 --max-queue "$((requests + concurrency))" "${extra[@]}" \
  >"$work/out" 2>"$work/log" &
pid=$!
port=$(serve_port "$work/out" "$pid" "$work/log" 6000) || exit 1
for _ in $(seq 1 6000); do  # the model loads after the port is bound
  curl -fsS "http://127.0.0.1:$port/v1/health" 2>/dev/null | grep -q '"status":"ready"' && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/log" >&2; exit 1; }
  sleep 0.1
done
curl -fsS -o "$work/warmup.json" -H 'Content-Type: application/json' --data-binary @"$work/body.json" \
  "http://127.0.0.1:$port/v1/predictions"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("one request: input_tokens=%d output_tokens=%d total_ms=%.1f" % (j["input_tokens"], j["output_tokens"], j["total_time_ms"]))' "$work/warmup.json"

threads=$(( concurrency < 2 ? 1 : 2 ))
completed() {
  curl -fsS "http://127.0.0.1:$port/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["workers"][0]["completed"])'
}
before=$(completed)
# wrk's main thread sleeps for the whole -d even when the Lua script has stopped every
# thread; SIGINT once the server has answered them all ends it and prints the summary.
FALCON_BODY="$work/body.json" FALCON_REQUESTS="$requests" FALCON_THREADS="$threads" \
  wrk -t"$threads" -c"$concurrency" -d3600s --timeout "${wrk_timeout}s" -s "$here/wrk_predict.lua" \
  "http://127.0.0.1:$port" >"$work/wrk.out" 2>&1 &
wrk_pid=$!
while kill -0 "$wrk_pid" 2>/dev/null && (( $(completed) < before + requests )); do sleep 0.05; done
kill -INT "$wrk_pid" 2>/dev/null || true
wait "$wrk_pid" || true
grep '^RESULT' "$work/wrk.out" | sed "s/^RESULT/concurrency=$concurrency/" || cat "$work/wrk.out"
curl -fsS "http://127.0.0.1:$port/v1/status" | python3 -c 'import json,sys; w=json.load(sys.stdin)["workers"][0]; print("server: completed=%d failed=%d cancelled=%d rejected=%d" % (w["completed"], w["failed"], w["cancelled"], w["rejected"]))'
