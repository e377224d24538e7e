#!/usr/bin/env bash
# Browser test of the web page: starts `falcon serve` on a free loopback port with the
# perception fixture model, runs tests/web/web_test.mjs in headless Chromium through
# playwright-core (the system browser; nothing is downloaded), and stops the server.
#   scripts/test_web.sh [FALCON_BINARY]     (default build/bin/falcon)
# Skips (exit 0) when Chromium is not installed; CHROMIUM=/path overrides the browser.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/serve_port.sh
falcon=${1:-build/bin/falcon}
chromium=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x "$chromium" ]]; then
  echo "SKIP browser test: $chromium not found (apt-get install chromium, or set CHROMIUM)"
  exit 0
fi
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "browser test: $tool is missing (apt-get install nodejs npm)" >&2; exit 1; }
done
[[ -x "$falcon" ]] || { echo "browser test: $falcon not built" >&2; exit 1; }

# playwright-core only, pinned by the lock file, into the git-ignored node_modules.
if [[ ! -d tests/web/node_modules/playwright-core ]]; then
  (cd tests/web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$falcon" serve --model tests/fixtures/perception-tiny/model --host 127.0.0.1 --port 0 --allow-forced-tokens \
  >"$work/out" 2>"$work/log" &
server_pid=$!
port=$(serve_port "$work/out" "$server_pid" "$work/log" 300) ||
  { echo "browser test: the server did not start" >&2; exit 1; }

out_dir=${WEB_TEST_OUT:-$(dirname "$falcon")/../web-test}
status=0
CHROMIUM="$chromium" node tests/web/web_test.mjs "http://127.0.0.1:$port" \
  tests/fixtures/perception-tiny/images/shapes-200x120.png "$out_dir" || status=$?
echo "screenshot: $out_dir/segmentation.png"

kill -TERM "$server_pid"
if ! wait "$server_pid"; then
  echo "browser test: the server did not exit cleanly" >&2
  cat "$work/log" >&2
  status=1
fi
server_pid=""
exit $status
