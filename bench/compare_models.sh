#!/usr/bin/env bash
# Side-by-side accuracy check of pillar against ONNX Runtime on whole models: exports the
# models (bench/models/export.py, random weights from a fixed seed, seeded random
# inputs), runs ONNX Runtime (bench/ort_run.js) and `pillar run` on the same inputs, and
# compares every output (bench/compare.py: max|pillar - ort| / max|ort|). Prints one row
# per model and exits 1 if any model fails or exceeds the tolerance.
#
#   bench/compare_models.sh [--models "resnet50 mobilenet_v2 bert_like"] [--out DIR]
#                           [--pillar PATH] [--tol 1e-4] [--threads N] [--force]
#
# --models takes names or groups of export.py (big = the default three, small, all; see
# `/usr/bin/python3 bench/models/export.py --list`). --out defaults to bench/out
# (git-ignored; exports are reused unless --force). --pillar defaults to $PILLAR, then
# build/pillar. Per model, OUT holds NAME.onnx, NAME.inputs/, NAME.torch/ (PyTorch's
# outputs), NAME.ort/ and NAME.pillar/ (outputs), NAME.log (what pillar and ORT printed).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
models="big"
out="$root/bench/out"
pillar="${PILLAR:-$root/build/pillar}"
tol=1e-4
threads=""
force=""

die() { echo "compare_models: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --models) models="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --pillar) pillar="$2"; shift 2 ;;
        --tol) tol="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --force) force="--force"; shift ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
done

[ -x "$pillar" ] || die "no pillar CLI at $pillar (build it: make build, or pass --pillar)"
[ -d "$root/bench/node_modules/onnxruntime-node" ] ||
    die "onnxruntime-node is not installed in bench/node_modules (run scripts/install-deps.sh)"
command -v node >/dev/null || die "node is not installed (run scripts/install-deps.sh)"
"$PY" -c "import torch, torchvision, onnx, numpy" 2>/dev/null ||
    die "$PY lacks torch/torchvision/onnx/numpy (run scripts/install-deps.sh)"

mkdir -p "$out" || die "cannot create $out"
# expand groups into names (export.py knows them), then export what is missing
names=$("$PY" "$root/bench/models/export.py" --models "$models" --resolve) || exit 2
"$PY" "$root/bench/models/export.py" --models "${names// /,}" --out "$out" $force ||
    die "export failed"

thr_ort=(); thr_pl=()
if [ -n "$threads" ]; then thr_ort=(--threads "$threads"); thr_pl=(--threads "$threads"); fi

ms() { date +%s%N | cut -b1-13; }
# max rel diff from compare.py's summary line ("... worst max rel diff X (tol ...)")
worst() { sed -n 's/.*worst max rel diff \([^ ]*\) .*/\1/p' | tail -1; }

printf '%-20s %14s %14s %10s %10s  %s\n' model "pillar vs ort" "torch vs ort" "ort ms" \
    "pillar ms" result
failed=0
for m in $names; do
    log="$out/$m.log"
    : >"$log"
    inputs=()
    for f in "$out/$m.inputs"/*.npy; do
        n=$(basename "$f" .npy)
        inputs+=(--input "$n=$f")
    done
    shapes=()
    while read -r s; do [ -n "$s" ] && shapes+=(--shape "$s"); done <"$out/$m.shape"
    rm -rf "$out/$m.ort" "$out/$m.pillar"

    t0=$(ms)
    if ! node "$root/bench/ort_run.js" "$out/$m.onnx" "$out/$m.ort" "${inputs[@]}" \
            "${thr_ort[@]}" >>"$log" 2>&1; then
        printf '%-20s %14s %14s %10s %10s  %s\n' "$m" - - - - "FAIL (ONNX Runtime: $(tail -1 "$log"))"
        failed=$((failed + 1)); continue
    fi
    t1=$(ms)
    ref=$("$PY" "$root/bench/compare.py" "$out/$m.ort" "$out/$m.torch" --quiet --tol 1e-3 | worst)
    echo "+ $pillar run $out/$m.onnx ${inputs[*]} ${shapes[*]} --output $out/$m.pillar" >>"$log"
    t2=$(ms)
    if ! "$pillar" run "$out/$m.onnx" "${inputs[@]}" "${shapes[@]}" "${thr_pl[@]}" \
            --output "$out/$m.pillar" >>"$log" 2>&1; then
        printf '%-20s %14s %14s %10s %10s  %s\n' "$m" - "$ref" $((t1 - t0)) - \
            "FAIL (pillar: $(grep -v '^+ ' "$log" | tail -1))"
        failed=$((failed + 1)); continue
    fi
    t3=$(ms)
    "$PY" "$root/bench/compare.py" "$out/$m.ort" "$out/$m.pillar" --tol "$tol" --label "$m" \
        >>"$log" 2>&1
    rc=$?
    diff=$(worst <"$log")
    if [ $rc -eq 0 ]; then
        res=pass
    else
        res="FAIL (see $log)"
        failed=$((failed + 1))
    fi
    printf '%-20s %14s %14s %10s %10s  %s\n' "$m" "${diff:--}" "$ref" $((t1 - t0)) \
        $((t3 - t2)) "$res"
done
echo "(max rel diff = max|x - ort| / max|ort| over each output, worst output shown;" \
     "tolerance $tol; times are whole-process wall times, load included)"
n=$(echo $names | wc -w)
echo "$((n - failed)) passed, $failed failed"
[ $failed -eq 0 ]
