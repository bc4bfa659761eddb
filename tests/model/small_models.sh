#!/usr/bin/env bash
# ctest label "model": whole small models (ResNet-18 and MobileNetV2 at 64x64, a 2-layer
# BERT-like encoder, ResNet-18 with a symbolic batch run at batch 3 through --shape)
# exported from PyTorch with random weights, run by pillar and by ONNX Runtime on the
# same seeded inputs; every output must agree within 1e-4 of its scale
# (max|pillar - ort| / max|ort|). Env: $PILLAR (the CLI), $PILLAR_SOURCE_DIR; optional
# PILLAR_MODEL_TOL (default 1e-4), PILLAR_MODEL_THREADS (passed as --threads to both).
set -uo pipefail

src="${PILLAR_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
pillar="${PILLAR:-$src/build/pillar}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pillar-small-models.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

threads=()
[ -n "${PILLAR_MODEL_THREADS:-}" ] && threads=(--threads "$PILLAR_MODEL_THREADS")
bash "$src/bench/compare_models.sh" --models small --out "$tmp" --pillar "$pillar" \
    --tol "${PILLAR_MODEL_TOL:-1e-4}" "${threads[@]}"
rc=$?
if [ $rc -eq 2 ]; then
    echo "small_models: FAILED -- could not set up the comparison (message above)" >&2
    exit 1
elif [ $rc -ne 0 ]; then
    for log in "$tmp"/*.log; do
        [ -f "$log" ] || continue
        echo "---- $(basename "$log")"
        tail -n 20 "$log"
    done
    echo "small_models: FAILED -- pillar disagrees with ONNX Runtime (or could not run) on" \
         "the models marked FAIL above; logs above" >&2
    exit 1
fi
echo "small_models: all small models match ONNX Runtime"
