#!/usr/bin/env bash
# Every CUDA check and the whole GPU benchmark table in one go, for one (expensive) GPU run:
#   1. ops_tests (every op on the cuda param), engine_tests with FALCON_TEST_DEVICE=cuda
#      (fixture cases in fp32 parity mode, 1e-3 relative L2);
#   2. `falcon detect|segment|ocr --device cuda --dump` on every fixture case, compared with
#      tests/tools/compare_dump.py: fp32 (--dtype f32, must PASS) and bf16 (default; reported);
#   3. random full-size models made on the device (`falcon make-model`, into $TMPDIR) and
#      `falcon bench --device cuda` on each PERF.md workload; table beside the reference;
#   4. the server load test (scripts/load_test.sh, `falcon serve --device cuda`);
#   5. per-op time splits of the main workloads (FALCON_OP_PROFILE=1, src/ops/op_profile.h);
#   6. the kernel and copy timeline of single requests (engine_timeline: where the device waits).
# Logs go to $OUT when set (the device runner's output folder), else ./cuda-logs.
# usage: scripts/cuda_run.sh [BIN_DIR (default build-cuda/bin)] ; SKIP_TESTS=1 / SKIP_BENCH=1 /
#        SKIP_LOAD=1 / SKIP_PROFILE=1 / SKIP_TIMELINE=1
#        scripts/cuda_run.sh --pack   (here, before a run: strips falcon, engine_tests,
#        ops_tests, core_tests, cuda_ops_bench and engine_timeline into build-cuda/pack/bins.tar.xz (~10 MB; the binaries are ~170 MB, over
#        the 64 MiB carry limit) with the shared libraries the GPU host lacks (libjpeg, libpng,
#        libwebp, oniguruma, utf8proc; CUPTI for cuda_ops_bench's timeline) in build-cuda/pack/lib; carry ["build-cuda/pack"]: the
#        script unpacks it on the device when BIN_DIR has no falcon).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--pack" ]; then
  rm -rf build-cuda/pack build-cuda/strip && mkdir -p build-cuda/pack/lib build-cuda/strip
  for b in falcon engine_tests ops_tests core_tests cuda_ops_bench engine_timeline; do strip -o build-cuda/strip/$b build-cuda/bin/$b; done
  # One xz stream with a dictionary larger than a binary: the binaries share their ~25 MB of
  # kernels, which then compress once (10 MB in all instead of 43).
  tar -C build-cuda/strip -cf - falcon engine_tests ops_tests core_tests cuda_ops_bench engine_timeline |
    xz -T4 --lzma2=preset=6,dict=192MiB > build-cuda/pack/bins.tar.xz
  # wrk (and its LuaJIT) for the load test: the GPU host has no wrk.
  command -v wrk > /dev/null && cp "$(command -v wrk)" build-cuda/pack/
  for l in libjpeg.so.62 libonig.so.5 libpng16.so.16 libutf8proc.so.2 libwebp.so.7 libluajit-5.1.so.2 \
           libcpp-httplib.so.0.11 libbrotlidec.so.1 libbrotlienc.so.1 libbrotlicommon.so.1 libcupti.so.13; do
    p=$(ldd build-cuda/bin/falcon build-cuda/bin/engine_tests build-cuda/bin/cuda_ops_bench build-cuda/bin/engine_timeline $(command -v wrk) | awk -v l=$l '$1 == l {print $3; exit}')
    [ -n "$p" ] && cp -L "$p" build-cuda/pack/lib/
  done
  du -sh build-cuda/pack
  exit 0
fi
BIN=${1:-build-cuda/bin}
if [ ! -x "$BIN/falcon" ] && [ -f build-cuda/pack/bins.tar.xz ]; then
  mkdir -p "$BIN" && tar -C "$BIN" -xJf build-cuda/pack/bins.tar.xz
fi
[ -d build-cuda/pack/lib ] && export LD_LIBRARY_PATH="$PWD/build-cuda/pack/lib:${LD_LIBRARY_PATH:-}"
[ -x build-cuda/pack/wrk ] && ! command -v wrk > /dev/null && export PATH="$PWD/build-cuda/pack:$PATH"
LOG=${OUT:-./cuda-logs}
TMP=${TMPDIR:-/tmp}/falcon-cuda-run
mkdir -p "$LOG" "$TMP"
status=0
note() { echo "== $*" | tee -a "$LOG/summary.txt"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$LOG/gpu.txt"

if [ -z "${SKIP_TESTS:-}" ]; then
  if [ -x "$BIN/core_tests" ]; then
    timeout 120 "$BIN/core_tests" --gtest_brief=1 > "$LOG/core_tests.log" 2>&1; rc=$?
    note "core_tests rc=$rc $(grep -E '^\[  (PASSED|FAILED)' "$LOG/core_tests.log" | tr '\n' ' ')"
    [ $rc -eq 0 ] || status=1
  fi
  if [ -x "$BIN/ops_tests" ]; then
    timeout 180 "$BIN/ops_tests" --gtest_brief=1 > "$LOG/ops_tests.log" 2>&1; rc=$?
    note "ops_tests rc=$rc $(grep -E '^\[  (PASSED|FAILED)' "$LOG/ops_tests.log" | tr '\n' ' ')"
    [ $rc -eq 0 ] || status=1
  fi
  if [ -x "$BIN/engine_tests" ]; then
    FALCON_TEST_DEVICE=cuda timeout 120 "$BIN/engine_tests" --gtest_brief=1 > "$LOG/engine_tests_cuda.log" 2>&1; rc=$?
    note "engine_tests (cuda, fp32) rc=$rc $(grep -E '^\[  (PASSED|FAILED)' "$LOG/engine_tests_cuda.log" | tr '\n' ' ')"
    [ $rc -eq 0 ] || status=1
  fi
  if [ -x "$BIN/engine_tests" ]; then
    # The segmentation stage on the CPU under a CUDA engine (the FALCON_CUDA_SEGMENTATION=0 fallback).
    FALCON_CUDA_SEGMENTATION=0 FALCON_TEST_DEVICE=cuda timeout 120 "$BIN/engine_tests" --gtest_brief=1 \
      --gtest_filter='*seg*:*greedy*' > "$LOG/engine_tests_cuda_cpuseg.log" 2>&1; rc=$?
    note "engine_tests (cuda, fp32, FALCON_CUDA_SEGMENTATION=0) rc=$rc $(grep -E '^\[  (PASSED|FAILED)' "$LOG/engine_tests_cuda_cpuseg.log" | tr '\n' ' ')"
  fi
  # Fixture cases through the CLI, fp32 and bf16.
  python3 - "$BIN/falcon" "$LOG" "$TMP" <<'PY' || status=1
import json, os, subprocess, sys
falcon, log, tmp = sys.argv[1:4]
root = "tests/fixtures"
fails = 0
with open(f"{log}/fixtures.txt", "w") as out:
    for model in ["perception-tiny", "ocr-tiny"]:
        for case in sorted(os.listdir(f"{root}/{model}/cases")):
            cdir = f"{root}/{model}/cases/{case}"
            c = json.load(open(f"{cdir}/case.json"))
            cmd = {"detection": "detect", "segmentation": "segment", "ocr_plain": "ocr"}[c["task"]]
            for dtype in ["f32", "bf16"]:
                dump, res = f"{tmp}/{model}-{case}-{dtype}.safetensors", f"{tmp}/{model}-{case}-{dtype}.json"
                args = [falcon, cmd, "--model", f"{root}/{model}/model", "--image", f"{root}/{model}/images/{c['image']}",
                        "--device", "cuda", "--dtype", dtype, "--dump", dump, "--json", res, "--quiet",
                        "--min-image-size", str(c["min_image_size"]), "--max-image-size", str(c["max_image_size"])]
                if "query" in c: args += ["--query", c["query"]]
                if "forced_tokens_str" in c: args += ["--force-tokens", ",".join(c["forced_tokens_str"])]
                else: args += ["--max-new-tokens", str(c["greedy_steps"])]
                r = subprocess.run(args, capture_output=True, text=True)
                if r.returncode != 0:
                    txt = f"RUN FAILED rc={r.returncode}: {r.stderr.strip()[-400:]}"
                else:
                    k = subprocess.run(["python3", "tests/tools/compare_dump.py", cdir, dump, res], capture_output=True, text=True)
                    txt = k.stdout
                    if k.returncode != 0 and dtype == "f32": fails += 1
                if r.returncode != 0 and dtype == "f32": fails += 1
                out.write(f"### {model}/{case} {dtype}\n{txt}\n")
                last = txt.strip().splitlines()[-1] if txt.strip() else ""
                print(f"{model}/{case} {dtype}: {last}")
sys.exit(1 if fails else 0)
PY
  note "fixture compare_dump (f32 must pass; bf16 reported): see fixtures.txt"
  cat "$LOG/fixtures.txt" | grep -E "^###|FAIL|PASS|err" > "$LOG/fixtures_short.txt"
fi

if [ -z "${SKIP_BENCH:-}" ]; then
  TOK=tests/fixtures/perception-tiny/model
  for v in perception ocr; do
    [ -f "$TMP/$v/model.safetensors" ] || "$BIN/falcon" make-model --variant $v --out "$TMP/$v" --tokenizer-from $TOK --dtype bf16 --quiet > "$LOG/make-model-$v.log" 2>&1 || { note "make-model $v failed"; status=1; }
  done
  # name | model | args | reference wall ms | reference prefill | reference ms/token | reference img/s
  bench() {  # name variant ref_wall ref_prefill ref_tok ref_ips args... 
    local name=$1 v=$2; shift 2; local rw=$1 rp=$2 rt=$3 ri=$4; shift 4
    timeout ${BENCH_TIMEOUT:-150} "$BIN/falcon" bench --model "$TMP/$v" --device cuda --quiet --json "$LOG/bench-$name.json" "$@" > "$LOG/bench-$name.log" 2>&1
    local rc=$?
    echo "$name $rc $rw $rp $rt $ri" >> "$LOG/bench-index.txt"
    note "bench $name rc=$rc $(tail -1 "$LOG/bench-$name.log")"
  }
  : > "$LOG/bench-index.txt"
  bench seg-1024x768     perception 281 48 1.29 0   --task segmentation --image-size 1024x768 --new-tokens 32 --runs 3
  FALCON_CUDA_ASYNC_ALLOC=0 bench seg-1024x768-cudamalloc perception 281 48 1.29 0 --task segmentation --image-size 1024x768 --new-tokens 32 --runs 3
  bench det-1024x768     perception 266 43 1.29 0   --task detection --image-size 1024x768 --new-tokens 32
  bench det-640x480      perception 588 42 1.20 0   --task detection --image-size 640x480 --new-tokens 128
  # Quantised weights (quantised at load from the bf16 file): the INT8/INT4 decode rows.
  bench det-1024x768-q8  perception 266 43 1.29 0   --task detection --image-size 1024x768 --new-tokens 32 --dtype q8
  bench det-1024x768-q4  perception 266 43 1.29 0   --task detection --image-size 1024x768 --new-tokens 32 --dtype q4
  bench det-64x640x480   perception 2420 0 0 26.4   --task detection --image-size 640x480 --new-tokens 64 --batch 64 --runs 3
  bench det-64x640x480-q8 perception 2420 0 0 26.4  --task detection --image-size 640x480 --new-tokens 64 --batch 64 --runs 3 --dtype q8
  FALCON_CUDA_PDL=0 bench det-640x480-nopdl perception 588 42 1.20 0 --task detection --image-size 640x480 --new-tokens 128
  bench ocr-1024x768     ocr        233 40 0.52 0   --task ocr --image-size 1024x768 --new-tokens 32
  bench ocr-640x480      ocr        439 35 0.50 0   --task ocr --image-size 640x480 --new-tokens 128
  bench ocr-64x640x480   ocr        2630 0 0 24.3   --task ocr --image-size 640x480 --new-tokens 64 --batch 64 --runs 3
  python3 - "$LOG" <<'PY' | tee "$LOG/bench_table.md"
import json, sys
log = sys.argv[1]
print("| workload | wall ms (ref) | ratio | preprocess ms | prefill ms (ref) | decode ms/token (ref) | img/s (ref) | first result after start |")
print("|---|---|---|---|---|---|---|---|")
for line in open(f"{log}/bench-index.txt"):
    name, rc, rw, rp, rt, ri = line.split()
    try:
        j = json.load(open(f"{log}/bench-{name}.json"))
    except Exception:
        print(f"| {name} | failed (rc {rc}) | | | | | | |"); continue
    first = j.get("first_result_ms")
    fr = f"{first/1000:.2f} s" if first else ""
    if "images_per_s" in j:
        wall = j["wall_s"] * 1000
        print(f"| {name} | {wall:.0f} ({rw}) | {float(rw)/wall:.2f}x | | | | {j['images_per_s']:.1f} ({ri}) | {fr} |")
    else:
        wall = j["total_ms"]
        seg = f", seg {j['segmentation_ms']:.0f}" if j.get("segmentation_ms") else ""
        print(f"| {name} | {wall:.1f} ({rw}{seg}) | {float(rw)/wall:.2f}x | {j.get('preprocess_ms', 0):.1f} | {j['prefill_ms']:.1f} ({rp}; host {j.get('prefill_host_ms', 0):.1f}) | {j['decode_ms_per_token']:.3f} ({rt}) | | {fr} |")
PY
fi
if [ -z "${SKIP_LOAD:-}" ] && [ -f "$TMP/perception/model.safetensors" ]; then
  # Server load test on the GPU (docs/server.md): full-size random perception model, BF16,
  # a 640x480 random-pixel image, image cache off so every request runs its whole prefill.
  python3 -c 'import numpy as np, PIL.Image as I, sys; I.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(sys.argv[1])' "$TMP/load.png"
  for spec in "detection 32 1 64" "detection 32 16 256" "detection 32 64 512" "segmentation 16 4 16"; do
    set -- $spec
    timeout 300 scripts/load_test.sh --model "$TMP/perception" --falcon "$BIN/falcon" --image "$TMP/load.png" \
      --task $1 --max-tokens $2 --concurrency $3 --requests $4 --min-size 256 --max-size 1024 \
      -- --device cuda --image-cache 0 --max-batch 64 > "$LOG/load-$1-c$3.log" 2>&1
    note "load $1 max_tokens=$2 concurrency=$3 requests=$4 rc=$? $(grep -E '^concurrency|^server|^one' "$LOG/load-$1-c$3.log" | tr '\n' ' ')"
  done
fi
if [ -z "${SKIP_PROFILE:-}" ] && [ -f "$TMP/perception/model.safetensors" ]; then
  # Where the time goes: per-op totals (FALCON_OP_PROFILE, synchronised per op, graphs off).
  prof() {  # name variant args...
    local name=$1 v=$2; shift 2
    FALCON_OP_PROFILE=1 FALCON_CUDA_GRAPHS=0 timeout 150 "$BIN/falcon" bench --model "$TMP/$v" --device cuda --quiet \
      --runs 1 "$@" > "$LOG/prof-$name.log" 2>&1
    note "profile $name rc=$? $(grep -E '^total' "$LOG/prof-$name.log")"
  }
  prof seg-1024x768 perception --task segmentation --image-size 1024x768 --new-tokens 32
  prof det-640x480 perception --task detection --image-size 640x480 --new-tokens 128
  # With graphs on: only the host phases of each step are timed (the captured ops are not).
  FALCON_OP_PROFILE=1 timeout 150 "$BIN/falcon" bench --model "$TMP/perception" --device cuda --quiet --runs 1 \
    --task detection --image-size 640x480 --new-tokens 128 > "$LOG/prof-det-640x480-graphs.log" 2>&1
  prof det-64x640x480 perception --task detection --image-size 640x480 --new-tokens 64 --batch 64
  prof ocr-1024x768 ocr --task ocr --image-size 1024x768 --new-tokens 32
fi
if [ -z "${SKIP_TIMELINE:-}" ] && [ -x "$BIN/engine_timeline" ] && [ -f "$TMP/perception/model.safetensors" ]; then
  for spec in "det-1024x768 detection 1024x768 32 bf16" "det-1024x768-q8 detection 1024x768 32 q8" \
              "seg-1024x768 segmentation 1024x768 32 bf16"; do
    set -- $spec
    timeout 150 "$BIN/engine_timeline" "$TMP/perception" $2 $3 $4 $5 > "$LOG/timeline-$1.log" 2>&1
    note "timeline $1 rc=$? $(head -1 "$LOG/timeline-$1.log")"
  done
fi
note "status=$status"
exit $status
