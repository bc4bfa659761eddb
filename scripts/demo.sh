#!/usr/bin/env bash
# `make demo`: what a newcomer wants to see -- a model exported from PyTorch, inspected
# and run by pillar, checked against ONNX Runtime, and the conformance score.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
P=build/pillar
out=build/demo
mkdir -p "$out"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. A model: ResNet-18 (64x64 input, random weights) exported from PyTorch to ONNX"
"$PY" bench/models/export.py --models resnet18_small --out "$out" | tail -n 2

say "2. pillar inspect: layers, shapes, weights and cost (first and last lines)"
$P inspect "$out/resnet18_small.onnx" > "$out/inspect.txt"
head -n 14 "$out/inspect.txt"
echo "   ..."
tail -n 6 "$out/inspect.txt"

say "3. pillar run on a seeded random image"
$P run "$out/resnet18_small.onnx" --input "input=$out/resnet18_small.inputs/input.npy" --output "$out/pillar_out"

say "4. The same models in ONNX Runtime: pillar's outputs compared (max |diff| / max |ORT|)"
bash bench/compare_models.sh --models small --out "$out"

say "5. The ONNX backend conformance suite (Debian's libonnx-testdata)"
build/conformance -q -j "$(nproc)" | tail -n 1

say "6. Doing less work: the same ResNet-18 pruned to 90% zeros runs on sparse kernels"
$P prune "$out/resnet18_small.onnx" --sparsity 0.9 --out "$out/resnet18_small_s90.onnx" | tail -n 2
ms() { $P bench "$1" --threads "$(nproc)" --time 2 --warmup 0.5 --json | tail -n 1 |
       "$PY" -c 'import json, sys; print(json.load(sys.stdin)["median_ms"])'; }
dense=$(ms "$out/resnet18_small.onnx")
sparse=$(ms "$out/resnet18_small_s90.onnx")
"$PY" -c 'import sys; d, s = map(float, sys.argv[1:]); print("dense %.2f ms, 90%% pruned %.2f ms: %.1fx faster (pillar bench, median, batch 1)" % (d, s, d / s))' "$dense" "$sparse"
echo "(bench/compare_sparse.sh times pruned and INT8 models against ONNX Runtime)"
echo
echo "Next: build/pillar help, README.md, docs/DESIGN.md"
