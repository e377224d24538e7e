#!/usr/bin/env bash
# Installs what is missing, builds, and runs detection and OCR on the bundled example.
# The bundled models are tiny random-weight test models: their output is meaningless until
# you point --model at a real export (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target falcon
fx=tests/fixtures
echo "== falcon detect (tiny random model: output is meaningless)"
build/bin/falcon detect --model $fx/perception-tiny/model --image $fx/perception-tiny/images/shapes-200x120.png \
  --query "the red circle" --max-new-tokens 12
echo "== falcon ocr (tiny random model: output is meaningless)"
build/bin/falcon ocr --model $fx/ocr-tiny/model --image $fx/ocr-tiny/images/text-240x64.png --max-new-tokens 12
