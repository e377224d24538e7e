#!/usr/bin/env bash
# Runs several `falcon serve` backends on free loopback ports with nginx in front of them,
# as the current user, everything under one work directory. Ctrl-C / SIGTERM stops all.
#   scripts/nginx-lb.sh --model DIR [--backends N] [--port P] [--falcon BIN] [--dir DIR]
#                       [-- more `falcon serve` options]
# Writes DIR/nginx.conf (from scripts/nginx-lb.conf.template), DIR/backends (one
# "pid port" line per backend), logs, and prints "ready: http://127.0.0.1:P" when serving.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/serve_port.sh"
model="" backends=2 port=8080 falcon="$here/../build/bin/falcon" dir="" extra=()
while (($#)); do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --backends) backends=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --falcon) falcon=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "nginx-lb.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n "$model" ]] || { echo "nginx-lb.sh: --model is required" >&2; exit 2; }
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x "$nginx" ]] || { echo "nginx-lb.sh: nginx not found (apt-get install nginx)" >&2; exit 1; }
[[ -x "$falcon" ]] || { echo "nginx-lb.sh: $falcon not built" >&2; exit 1; }
[[ -n "$dir" ]] || dir=$(mktemp -d)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

pids=()
nginx_pid=""
stop_all() {
  trap - INT TERM EXIT
  [[ -n "$nginx_pid" ]] && kill -QUIT "$nginx_pid" 2>/dev/null || true
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

: >"$dir/backends"
upstreams=""
for i in $(seq 1 "$backends"); do
  "$falcon" serve --model "$model" --host 127.0.0.1 --port 0 "${extra[@]}" \
    >"$dir/backend$i.out" 2>"$dir/backend$i.log" &
  pids+=($!)
  p=$(serve_port "$dir/backend$i.out" "${pids[-1]}" "$dir/backend$i.log") ||
    { echo "nginx-lb.sh: backend $i did not start" >&2; exit 1; }
  echo "${pids[-1]} $p" >>"$dir/backends"
  upstreams+="server 127.0.0.1:$p max_fails=1 fail_timeout=5s;"$'\n    '
done

# Every backend has its model loaded before nginx sends it anything.
for p in $(awk '{print $2}' "$dir/backends"); do
  for _ in $(seq 1 6000); do
    curl -fsS "http://127.0.0.1:$p/v1/health" 2>/dev/null | grep -q '"status":"ready"' && break
    sleep 0.1
  done
done

user_line=""
[[ $(id -u) -eq 0 ]] && user_line="user root;"  # workers keep our identity, not nobody's
sed -e "s|@WORKDIR@|$dir|g" -e "s|@LISTEN@|127.0.0.1:$port|g" -e "s|@USER@|$user_line|g" \
  "$here/nginx-lb.conf.template" | awk -v ups="$upstreams" '{ sub(/@BACKENDS@/, ups); print }' >"$dir/nginx.conf"
"$nginx" -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
"$nginx" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/v1/health" >/dev/null 2>&1 && break
  kill -0 "$nginx_pid" 2>/dev/null || { cat "$dir/error.log" >&2; exit 1; }
  sleep 0.1
done
echo "backends: $(awk '{printf "127.0.0.1:%s ", $2}' "$dir/backends")(work dir $dir)"
echo "ready: http://127.0.0.1:$port"
wait "$nginx_pid"
