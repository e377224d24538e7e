#!/usr/bin/env bash
# The CLI's answers to bad input: a clear message and the documented exit status, never a
# crash. Also checks inspect, make-model and bench end to end on small models.
# usage: cli_errors.sh FALCON_BIN FIXTURES_DIR
set -uo pipefail
falcon=$1 fx=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
# expect STATUS NEEDLE -- command...
expect() {
  local want=$1 needle=$2
  shift 3
  local out status
  out=$("$@" 2>&1)
  status=$?
  if [[ $status -ne $want || "$out" != *"$needle"* ]]; then
    echo "FAIL: $* -> status $status (want $want), output: ${out:0:300}"
    fails=$((fails + 1))
  else
    echo "ok   status $status: ${needle}"
  fi
}
pm=$fx/perception-tiny/model om=$fx/ocr-tiny/model img=$fx/perception-tiny/images/shapes-200x120.png
echo "plain text" >"$tmp/not-an-image.png"
head -c 200 "$img" >"$tmp/truncated.png"
expect 2 "usage: falcon" -- "$falcon"
expect 2 "unknown command" -- "$falcon" frobnicate
expect 2 "unknown option --colour" -- "$falcon" detect --model "$pm" --image "$img" --query q --colour red
expect 2 "--query is required" -- "$falcon" detect --model "$pm" --image "$img"
expect 3 "not a directory" -- "$falcon" detect --model "$tmp/nope" --image "$img" --query q
expect 3 "No such file" -- "$falcon" detect --model "$pm" --image "$tmp/missing.png" --query q
expect 3 "" -- "$falcon" detect --model "$pm" --image "$tmp/not-an-image.png" --query q --quiet
expect 3 "" -- "$falcon" detect --model "$pm" --image "$tmp/truncated.png" --query q --quiet
expect 2 "UTF-8" -- "$falcon" detect --model "$pm" --image "$img" --query $'bad \xff' --quiet
expect 4 "OCR model" -- "$falcon" segment --model "$om" --image "$img" --query q --quiet
expect 4 "not OCR" -- "$falcon" ocr --model "$pm" --image "$img" --quiet
expect 2 "expects an integer" -- "$falcon" detect --model "$pm" --image "$img" --query q --max-new-tokens ten
expect 2 "not a token of this model" -- "$falcon" detect --model "$pm" --image "$img" --query q --force-tokens "<|nope|>"
expect 4 "no CUDA" -- "$falcon" detect --model "$pm" --image "$img" --query q --device cuda --quiet
expect 0 "variant:      perception" -- "$falcon" inspect --model "$pm"
expect 0 "wrote ocr model" -- "$falcon" make-model --variant ocr --layers 1 --vocab-size 1024 --out "$tmp/m" \
  --tokenizer-from "$om"
expect 0 "prefill_ms" -- "$falcon" bench --model "$tmp/m" --image-size 64x48 --new-tokens 3 --runs 1 --no-bandwidth --quiet
expect 0 "images/s" -- "$falcon" bench --model "$tmp/m" --image-size 64x48 --new-tokens 3 --runs 1 --batch 3 --quiet
# A segment run writes its overlay and mask pictures.
expect 0 '"counts"' -- "$falcon" segment --model "$pm" --image "$img" --query "a shape" --min-image-size 64 \
  --max-image-size 128 --force-tokens "<|coord|>,<|size|>,<|seg|>,<|end_of_text|>" --overlay "$tmp/o.png" \
  --masks-dir "$tmp/masks" --quiet
[[ -s "$tmp/o.png" && -s "$tmp/masks/mask_0_0.png" ]] || { echo "FAIL: overlay or mask file missing"; fails=$((fails + 1)); }
echo "$(( 20 - fails )) passed, $fails failed"
exit $(( fails > 0 ))
