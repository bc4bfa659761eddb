#!/usr/bin/env bash
# Sparse and INT8 speed, side by side with ONNX Runtime in one run: for ResNet-50,
# MobileNetV2 and the BERT-like encoder (bench/models/export.py), the dense float model,
# the model pruned to 50, 70, 80, 90 and 95% (`pillar prune`), quantized to INT8 (`pillar
# quantize`, QDQ) dense and at 90%; each timed with `pillar bench` and with ONNX Runtime
# (bench/ort_bench.js) on the same file, and ONNX Runtime on the dense float file, all
# ALTERNATELY for several rounds (the order flips every round, so drift in machine load
# hits both alike), each run a fresh process. One more row times ResNet-50 90% + INT8 with
# PILLAR_ISA=avx2. Prints a Markdown table (bench/sparse_table.py) of the median of the
# per-run medians: pillar ms, ORT ms on the same file, ORT ms on the dense float file,
# the speed-up against ORT dense and against ORT on the same file, with the date, the CPU
# and the load average.
#
#   bench/compare_sparse.sh [--threads 2] [--rounds 3] [--time S] [--warmup S]
#                           [--models "resnet50 mobilenet_v2 bert_like"]
#                           [--sparsities "50 70 80 90 95"] [--no-avx2] [--no-int8] [--int8-only]
#                           [--int8-variants "int8 s90_int8 s90b4_int8"]
#                           [--fresh] [--out DIR] [--pillar PATH]
#
# --no-int8 leaves out the INT8 rows (float32 sparse work only; implies --no-avx2).
# --int8-only keeps the dense float row (ORT dense is the baseline) and the INT8 rows
# (dense INT8, 90% + INT8, 90% blocks-of-4 + INT8 and its avx2 run): no pruned float32.
# --int8-variants picks the INT8 rows (default all three); e.g. --int8-only
# --int8-variants s90b4_int8 times only ORT dense, the 90% blocks-of-4 INT8 file and its
# avx2 run (the avx2 row needs s90b4_int8 in the list).
# --threads is the thread count of both tools (default 2; 1 for one thread), batch 1.
# --time is the timed seconds of each run (default 3) after --warmup seconds (default 1).
# Pruned/quantized files are kept in OUT/sparse/ (bench/sparse_lib.sh) and reused;
# --fresh remakes them (do so after changing pillar prune/quantize). Per-run logs go to
# OUT/sparse/runs/<UTC date-time>/, the table to table.md there. Exit 0 if every run
# worked, 1 if some failed (the table shows "error"), 2 if it cannot start.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
threads=2
rounds=3
time_s=3
warmup_s=1
models="resnet50 mobilenet_v2 bert_like"
sparsities="50 70 80 90 95"
avx2=1
int8=1
int8_only=0
int8_variants="int8 s90_int8 s90b4_int8"
fresh=0
out="$root/bench/out"
pillar="${PILLAR:-$root/build/pillar}"

die() { echo "compare_sparse: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in --no-avx2) avx2=0; shift; continue ;; --no-int8) int8=0; avx2=0; shift; continue ;; --int8-only) int8_only=1; shift; continue ;; --fresh) fresh=1; shift; continue ;; esac
    [ $# -ge 2 ] || case "$1" in -h|--help) ;; *) die "$1 needs a value" ;; esac
    case "$1" in
        --threads) threads="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --time) time_s="$2"; shift 2 ;;
        --warmup) warmup_s="$2"; shift 2 ;;
        --models) models="$2"; shift 2 ;;
        --sparsities) sparsities="$2"; shift 2 ;;
        --int8-variants) int8_variants="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --pillar) pillar="$2"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
done
[ "$int8_only" = 1 ] && { [ "$int8" = 1 ] || die "--int8-only and --no-int8 exclude each other"; sparsities=""; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer"
for s in $sparsities; do [[ "$s" =~ ^[1-9][0-9]$ ]] || die "--sparsities: '$s' is not a percentage 10..99"; done
for m in $models; do
    case "$m" in resnet50|mobilenet_v2|bert_like) ;; *) die "unknown model '$m' (known: resnet50 mobilenet_v2 bert_like)" ;; esac
done
[ -x "$pillar" ] || die "no pillar CLI at $pillar (build it, or pass --pillar)"
command -v node >/dev/null || die "node is not installed (run scripts/install-deps.sh)"
[ -d "$root/bench/node_modules/onnxruntime-node" ] ||
    die "onnxruntime-node is not installed in bench/node_modules (run scripts/install-deps.sh)"
"$PY" -c "import torch, torchvision, onnx, numpy" 2>/dev/null ||
    die "$PY lacks torch/torchvision/onnx/numpy (run scripts/install-deps.sh)"

source "$root/bench/sparse_lib.sh"
sparse_init "$out" "$pillar" || die "cannot create $out/sparse"
[ "$fresh" = 1 ] && rm -f "$SPARSE_DIR"/*.onnx

variants="dense"
for s in $sparsities; do variants="$variants s$s"; done
for v in $int8_variants; do
    case "$v" in int8|s90_int8|s90b4_int8) ;; *) die "--int8-variants: unknown '$v' (known: int8 s90_int8 s90b4_int8)" ;; esac
done
[ "$int8" = 1 ] && variants="$variants $int8_variants"
case " $variants " in *" s90b4_int8 "*) ;; *) avx2=0 ;; esac

# make every file first (pruning and calibration are not timed)
status=0
declare -A file
for m in $models; do
    for v in $variants; do
        f=$(sparse_variant "$m" "$v") || die "cannot make $m $v"
        file[$m.$v]=$f
    done
done

logs="$SPARSE_DIR/runs/$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$logs" || die "cannot create $logs"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
k=0

# run TOOL MODEL VARIANT ROUND [ISA]: one timed process; its log ends with a JSON line
run() {
    local tool=$1 m=$2 v=$3 r=$4 isa=${5:-} f log rc med tag
    f=${file[$m.$v]}
    tag=$tool${isa:+-$isa}
    log="$logs/$m.$v.$tag.r$r.log"
    k=$((k + 1))
    if [ "$tool" = ort ]; then
        node "$root/bench/ort_bench.js" "$f" --threads "$threads" --time "$time_s" --warmup "$warmup_s" \
            --json >"$log" 2>&1
    elif [ -n "$isa" ]; then
        PILLAR_ISA=$isa "$pillar" bench "$f" --threads "$threads" --time "$time_s" --warmup "$warmup_s" \
            --json >"$log" 2>&1
    else
        "$pillar" bench "$f" --threads "$threads" --time "$time_s" --warmup "$warmup_s" --json >"$log" 2>&1
    fi
    rc=$?
    echo "$rc" >"${log%.log}.rc"
    med=$(tail -1 "$log" | sed -n 's/.*"median_ms": *\([0-9.eE+-]*\).*/\1/p')
    if [ "$rc" -ne 0 ] || [ -z "$med" ]; then
        status=1
        echo "[$k] $m $v round $r $tag: FAILED (exit $rc): $(tail -1 "$log")" >&2
    else
        printf '[%d] %s %s round %d %-12s median %.2f ms\n' "$k" "$m" "$v" "$r" "$tag:" "$med" >&2
    fi
}

# one round over a model: ORT dense, then per variant pillar and ORT on the same file
# (the dense variant's ORT run is the ORT-dense run), in flipped order on even rounds
round() {
    local m=$1 r=$2 v
    run ort "$m" dense "$r"
    for v in $variants; do
        if ((r % 2)); then
            [ "$v" = dense ] || run ort "$m" "$v" "$r"
            run pillar "$m" "$v" "$r"
        else
            run pillar "$m" "$v" "$r"
            [ "$v" = dense ] || run ort "$m" "$v" "$r"
        fi
    done
    if [ "$m" = resnet50 ] && [ "$avx2" = 1 ]; then run pillar "$m" s90b4_int8 "$r" avx2; fi
}

for ((r = 1; r <= rounds; r++)); do
    for m in $models; do round "$m" "$r"; done
done

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(lscpu | grep -m1 "Model name" | sed 's/  */ /g')
ortv=$(node -p "require('$root/bench/node_modules/onnxruntime-node/package.json').version" 2>/dev/null)
isa=$(sed -n 's/.*"isa": *"\([a-z0-9]*\)".*/\1/p' "$logs"/*.pillar.r1.log 2>/dev/null | head -1)
header="$(date -u '+%Y-%m-%d %H:%M UTC'); $cpu; $(nproc) CPUs; pillar $("$pillar" --version | cut -d' ' -f2) ($isa) vs onnxruntime-node $ortv; $threads thread(s), batch 1; $rounds rounds of ${time_s} s (+${warmup_s} s warm-up) per tool and file, alternating; load average $load_start at the start, $load_end at the end"
"$PY" "$root/bench/sparse_table.py" "$logs" --models "$models" --variants "$variants" \
    --header "$header" | tee "$logs/table.md"
exit $status
