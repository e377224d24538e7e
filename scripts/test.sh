#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite:
#   1. Release build with -Werror (and the CUDA code compiled when nvcc is present),
#   2. every GoogleTest under CTest, plus the shared compare tool on a CLI dump,
#   3. the parser, op and engine tests built with AddressSanitizer + UBSan,
#   4. the browser test of the web page (headless Chromium) and the nginx load-balancer test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
jobs=$(nproc)

echo "== build (Release, -Werror)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DFALCON_WERROR=ON -DFALCON_CUDA=OFF >/dev/null
cmake --build build -j "$jobs"
echo "== tests"
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 900

if command -v nvcc >/dev/null 2>&1 || [[ -x /usr/local/cuda/bin/nvcc ]]; then
  echo "== CUDA build (compile only: no GPU here)"
  cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DFALCON_WERROR=ON -DFALCON_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)" -DFALCON_BUILD_BENCH=OFF >/dev/null
  cmake --build build-cuda -j "$jobs" --target falcon
fi

echo "== sanitizers (ASan + UBSan)"
# The parsers, the ops and the engine end to end (every fixture case) under ASan + UBSan, at
# -O1 to keep CI short; the server's API tests run under ASan the same way when needed
# (docs/server.md).
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1" \
  -DFALCON_SANITIZE=address,undefined -DFALCON_CUDA=OFF -DFALCON_BUILD_BENCH=OFF -DFALCON_BUILD_SERVER=OFF >/dev/null
asan_tests=(core_tests ops_tests io_tests text_tests engine_tests)
cmake --build build-asan -j "$jobs" --target "${asan_tests[@]}"
for t in "${asan_tests[@]}"; do
  echo "-- $t"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "build-asan/bin/$t" --gtest_brief=1
done

echo "== browser test"
scripts/test_web.sh build/bin/falcon
echo "== load balancer (nginx)"
scripts/test_nginx_lb.sh build/bin/falcon
echo "all tests passed"
