#!/usr/bin/env bash
# run_bench.sh [OUT_DIR] -- issue 6's side-by-side benchmark, in one run:
#   1. a synthetic extreme-classification set (bench/xc/gen_xc.py; default 100,000
#      labels, 135,909 features, 200,000 training and 20,000 test points);
#   2. `pillar train-xc` with LSH-sampled outputs, `pillar train-xc --dense` (full
#      softmax) and PyTorch's full softmax (torch_xc.py, Debian's python3-torch), same
#      network, loss, Adam and threads; P@1 against training time for each, and how
#      much sooner LSH reaches the dense model's final P@1 (within 1 point);
#   3. HALOS-style inference (bench/xc/halos_bench.c) on the trained LSH model: time per
#      query, P@1 and recall against exact scoring.
# Outputs in OUT_DIR (default bench/out/xc): data, CSV logs, models, report.md.
#
# Environment (defaults in brackets): PILLAR [build/pillar], BUILD [dir of PILLAR],
# THREADS [2], LABELS [100000], FEATURES [135909], TRAIN [200000], TEST [20000],
# EPOCHS_LSH [3], EPOCHS_DENSE [3], EVAL_EVERY [200], EVAL_POINTS [10000],
# TORCH_LIMIT [seconds of PyTorch training; 0 = all epochs], LSH_ARGS, DENSE_ARGS (extra
# train-xc options of the dense run, e.g. "--time-limit 1200"), HALOS_ARGS [--topk 100
# --max-candidates 100 --head 50: candidates scored per query], KEEP=1 reuses
# finished runs in OUT_DIR, TORCH_BLAS [auto]: Debian's python3-torch calls the system
# libblas.so.3, which is the (slow, single-threaded) reference BLAS unless an optimised
# one is installed; TORCH_BLAS=openblas fetches Debian's libopenblas0-pthread with
# `apt-get download` into OUT_DIR (not installed) and points torch at it, TORCH_BLAS=system
# leaves torch as it is, auto = openblas unless the system BLAS is already OpenBLAS.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
OUT=${1:-$SRC/bench/out/xc}
PILLAR=${PILLAR:-$SRC/build/pillar}
BUILD=${BUILD:-$(dirname "$PILLAR")}
PY=/usr/bin/python3
THREADS=${THREADS:-2}
LABELS=${LABELS:-100000}
FEATURES=${FEATURES:-135909}
TRAIN=${TRAIN:-200000}
TEST=${TEST:-20000}
EPOCHS_LSH=${EPOCHS_LSH:-3}
EPOCHS_DENSE=${EPOCHS_DENSE:-3}
EVAL_EVERY=${EVAL_EVERY:-200}
EVAL_POINTS=${EVAL_POINTS:-10000}
TORCH_LIMIT=${TORCH_LIMIT:-0}
LSH_ARGS=${LSH_ARGS:---lsh simhash,10,32 --lsh-source examples --sample topk:500 --max-active 500 --bucket-policy fifo}
KEEP=${KEEP:-0}
HALOS_ARGS=${HALOS_ARGS:---topk 100 --max-candidates 100 --head 50}
mkdir -p "$OUT"
D="$OUT/xc${LABELS}"
REPORT="$OUT/report.md"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
done_run() { [ "$KEEP" = 1 ] && [ -s "$1" ] && grep -q "wrote\|epoch $2 " "$1.txt" 2>/dev/null; }

if [ ! -s "${D}_train.txt" ] || [ ! -s "${D}_test.txt" ]; then
    log "generating ${D}_{train,test}.txt"
    "$PY" "$HERE/gen_xc.py" "$D" --labels "$LABELS" --features "$FEATURES" --train "$TRAIN" --test "$TEST"
fi

common=(--threads "$THREADS" --eval-every "$EVAL_EVERY" --eval-points "$EVAL_POINTS" --quiet)
load_avg() { cut -d' ' -f1-3 /proc/loadavg; }

run_pillar() { # NAME EPOCHS ARGS...
    local name=$1 epochs=$2
    shift 2
    if done_run "$OUT/$name.csv" "$epochs"; then log "$name: kept"; return; fi
    log "$name: training (load $(load_avg))"
    /usr/bin/time -f "%e s wall, %U s user, %S s sys, peak RSS %M KB" \
        "$PILLAR" train-xc "${D}_train.txt" "${D}_test.txt" --epochs "$epochs" "${common[@]}" \
        --log "$OUT/$name.csv" --out "$OUT/$name.onnx" "$@" >"$OUT/$name.csv.txt" 2>&1
    echo "load after: $(load_avg)" >>"$OUT/$name.csv.txt"
    tail -3 "$OUT/$name.csv.txt" >&2
}

run_pillar lsh "$EPOCHS_LSH" $LSH_ARGS
run_pillar dense "$EPOCHS_DENSE" --dense ${DENSE_ARGS:-}

TORCH_BLAS=${TORCH_BLAS:-auto}
torch_env=()
if [ "$TORCH_BLAS" = auto ]; then
    if readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 | grep -q openblas; then TORCH_BLAS=system; else TORCH_BLAS=openblas; fi
fi
if [ "$TORCH_BLAS" = openblas ]; then
    ob="$OUT/openblas"
    if [ ! -e "$ob/lib/libblas.so.3" ]; then
        log "fetching Debian's libopenblas0-pthread for the PyTorch baseline"
        mkdir -p "$ob/lib" && (cd "$ob" && apt-get download libopenblas0-pthread >/dev/null &&
            dpkg-deb -x libopenblas0-pthread_*.deb root)
        for f in "$ob"/root/usr/lib/x86_64-linux-gnu/openblas-pthread/*.so*; do ln -sf "$f" "$ob/lib/"; done
    fi
    torch_env=(env "LD_LIBRARY_PATH=$ob/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
fi

if [ "$KEEP" = 1 ] && [ -s "$OUT/torch.csv" ]; then
    log "torch: kept"
else
    log "torch: training with BLAS=$TORCH_BLAS (load $(load_avg))"
    "${torch_env[@]}" /usr/bin/time -f "%e s wall, %U s user, %S s sys, peak RSS %M KB" \
        "$PY" "$HERE/torch_xc.py" "${D}_train.txt" "${D}_test.txt" --epochs "$EPOCHS_DENSE" \
        --threads "$THREADS" --eval-every "$EVAL_EVERY" --eval-points "$EVAL_POINTS" \
        --time-limit "$TORCH_LIMIT" --log "$OUT/torch.csv" >"$OUT/torch.csv.txt" 2>&1
    echo "load after: $(load_avg)" >>"$OUT/torch.csv.txt"
    tail -3 "$OUT/torch.csv.txt" >&2
fi

if [ "$KEEP" = 1 ] && [ -s "$OUT/halos.txt" ] && [ -s "$OUT/halos_wall.txt" ] && [ -s "$OUT/halos_neurons_only.txt" ]; then
    log "HALOS: kept"
else
log "HALOS"
cc -O2 -std=gnu11 -I"$SRC/include" -I"$SRC/src" -I"$BUILD/gen" "$HERE/halos_bench.c" \
    "$BUILD/libpillar.a" -lprotobuf-c -lm -lpthread -o "$OUT/halos_bench"
"$OUT/halos_bench" "$OUT/lsh.onnx" "${D}_test.txt" --points "$EVAL_POINTS" --cpu-time \
    --train "${D}_train.txt" --examples "$TRAIN" $HALOS_ARGS >"$OUT/halos.txt"
"$OUT/halos_bench" "$OUT/lsh.onnx" "${D}_test.txt" --points "$EVAL_POINTS" --cpu-time \
    >"$OUT/halos_neurons_only.txt"
"$OUT/halos_bench" "$OUT/lsh.onnx" "${D}_test.txt" --points "$EVAL_POINTS" \
    --train "${D}_train.txt" --examples "$TRAIN" $HALOS_ARGS >"$OUT/halos_wall.txt"
fi
{
    echo "# issue 6 benchmark: $LABELS labels, $FEATURES features, $TRAIN training points, $THREADS threads"
    echo
    echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo
    echo "LSH options: $LSH_ARGS; dense extra options: ${DENSE_ARGS:-none}; PyTorch BLAS: $TORCH_BLAS; HALOS: $HALOS_ARGS"
    echo
    "$PY" "$HERE/compare.py" "$OUT/lsh.csv" "$OUT/dense.csv" "$OUT/torch.csv"
    echo
    echo "process times (wall / user / peak memory) and machine load:"
    echo
    for r in lsh dense torch; do
        echo "- $r: $(grep 'peak RSS' "$OUT/$r.csv.txt" | tail -1); $(grep 'load after' "$OUT/$r.csv.txt" | tail -1)"
    done
    echo
    echo "## HALOS inference on the LSH-trained model (index learns from the training examples)"
    echo
    echo "CPU time of the querying thread (robust to other load on the machine):"
    echo
    echo '```'
    cat "$OUT/halos.txt"
    echo '```'
    echo
    echo "The same, wall-clock:"
    echo
    echo '```'
    cat "$OUT/halos_wall.txt"
    echo '```'
    echo
    echo "Neuron-only index (no examples), for comparison:"
    echo
    echo '```'
    cat "$OUT/halos_neurons_only.txt"
    echo '```'
} >"$REPORT"
cat "$REPORT"
