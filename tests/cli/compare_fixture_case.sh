#!/usr/bin/env bash
# Runs one fixture case through the `falcon` CLI with --dump and --json, then checks the
# dump with the shared compare tool (tests/tools/compare_dump.py, the reference's checker).
# usage: compare_fixture_case.sh FALCON_BIN FIXTURE_MODEL_DIR CASE_NAME
set -euo pipefail
falcon=$1 root=$2 name=$3
case_dir=$root/cases/$name
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
read -r task query image min max forced greedy < <("${FALCON_PYTHON:-python3}" - "$case_dir/case.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
task = {"segmentation": "segment", "detection": "detect", "ocr_plain": "ocr"}[c["task"]]
print(task, json.dumps(c.get("query", "")).replace(" ", "\\u0020"), c["image"], c["min_image_size"],
      c["max_image_size"], ",".join(c.get("forced_tokens_str", [])) or "-", c.get("greedy_steps", 0))
PY
)
query=$("${FALCON_PYTHON:-python3}" -c 'import json,sys; print(json.loads(sys.argv[1]))' "$query")
args=(--model "$root/model" --image "$root/images/$image" --min-image-size "$min" --max-image-size "$max"
      --dump "$tmp/dump.safetensors" --json "$tmp/result.json" --quiet)
[[ "$task" != ocr ]] && args+=(--query "$query")
if [[ "$forced" != "-" ]]; then args+=(--force-tokens "$forced"); else args+=(--max-new-tokens "$greedy"); fi
"$falcon" "$task" "${args[@]}"
"${FALCON_PYTHON:-python3}" "$(dirname "$0")/../tools/compare_dump.py" "$case_dir" "$tmp/dump.safetensors" "$tmp/result.json"
