#!/usr/bin/env bash
# Training side by side: the same network (from `pillar zoo`, so both start from the same
# weights) trained on Fashion-MNIST by `pillar train` and by PyTorch (bench/train_torch.py,
# Debian's python3-torch) with the same data order, batch, optimizer, epochs and threads,
# one after the other in this run, at each thread count. Prints examples/s of both (training
# steps only), pillar's ratio over PyTorch, and the test accuracy of both after the last
# epoch. Before each PyTorch run, a short probe times OMP_WAIT_POLICY unset (libgomp's
# default) and PASSIVE, and the full run uses the faster: PyTorch at its best setting.
#
#   bench/train_compare.sh [--model lenet] [--epochs 5] [--batch 64] [--threads "1 2"]
#                          [--optimizer adam] [--lr 0.001] [--limit N] [--test-limit N]
#                          [--precision fp32|bf16] [--seed 0] [--pillar PATH] [--out DIR]
#
# --model is a zoo name (mlp, lenet, lenet_bn, resnet8) or an .onnx file. --out defaults to
# bench/out/train (git-ignored): the model, each run's CSV log and stderr, pillar's trained
# models. A pillar model is also checked against ONNX Runtime (bench/ort_run.js) when
# bench/node_modules has it: the share of test images where both predict the same class.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
model=lenet
epochs=5
batch=64
threads="1 2"
optimizer=adam
lr=""
limit=""
test_limit=""
precision=fp32
seed=0
pillar="${PILLAR:-$root/build/pillar}"
out="$root/bench/out/train"

die() { echo "train_compare: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --model) model="$2"; shift 2 ;;
        --epochs) epochs="$2"; shift 2 ;;
        --batch) batch="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --optimizer) optimizer="$2"; shift 2 ;;
        --lr) lr="$2"; shift 2 ;;
        --limit) limit="$2"; shift 2 ;;
        --test-limit) test_limit="$2"; shift 2 ;;
        --precision) precision="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        --pillar) pillar="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
done
[ -x "$pillar" ] || die "no pillar CLI at '$pillar' (build it, or give --pillar / \$PILLAR)"
fm=/usr/share/datasets/fashion-mnist
[ -f "$fm/train-images-idx3-ubyte.gz" ] || die "$fm not found: install dataset-fashion-mnist (scripts/install-deps.sh)"
"$PY" -c "import torch, onnx" 2>/dev/null || die "$PY lacks torch or onnx (python3-torch, python3-onnx)"
mkdir -p "$out" || die "cannot create $out"

if [ -f "$model" ]; then
    onnx="$model"
    name=$(basename "$model" .onnx)
else
    name="$model"
    onnx="$out/$name.onnx"
    "$pillar" zoo "$name" --seed "$seed" --out "$onnx" >/dev/null || die "pillar zoo $name failed"
fi

common=(--epochs "$epochs" --batch "$batch" --optimizer "$optimizer" --seed "$seed")
[ -n "$lr" ] && common+=(--lr "$lr")
[ -n "$limit" ] && common+=(--limit "$limit")
[ -n "$test_limit" ] && common+=(--test-limit "$test_limit")

# json FILE KEY: a value from a one-line JSON object
json() { "$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2"; }

# pillar's examples/s over all epochs and last test accuracy, from its CSV log
pillar_stats() {
    "$PY" - "$1" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
ex = sum(float(r["examples_per_s"]) * float(r["train_seconds"]) for r in rows)
sec = sum(float(r["train_seconds"]) for r in rows)
print("%.1f %s %.2f" % (ex / sec, rows[-1]["test_acc"], sum(float(r["seconds"]) for r in rows) / len(rows)))
EOF
}

echo "train_compare: $name on Fashion-MNIST, batch $batch, $optimizer${lr:+ lr $lr}, $epochs epochs, pillar $precision," \
     "$(nproc) cpus, isa $("$PY" - <<'EOF'
import re
flags = open("/proc/cpuinfo").read()
print("avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "other")
EOF
)"
results=()
first_model=""
for t in $threads; do
    log="$out/${name}_pillar_t$t.csv"
    tm="$out/${name}_pillar_t$t.onnx"
    echo "threads $t: pillar train ..." >&2
    if ! "$pillar" train "$onnx" --data fashion-mnist "${common[@]}" --threads "$t" --precision "$precision" \
        --log "$log" --out "$tm" >"$out/${name}_pillar_t$t.out" 2>&1; then
        tail -3 "$out/${name}_pillar_t$t.out" >&2
        die "pillar train failed at $t threads"
    fi
    read -r p_eps p_acc p_epoch_s < <(pillar_stats "$log")
    [ -z "$first_model" ] && first_model="$tm"

    # PyTorch: probe both OpenMP wait policies, keep the faster
    best_pol="" best_eps=0
    for pol in default PASSIVE; do
        envs=()
        [ "$pol" = PASSIVE ] && envs=(OMP_WAIT_POLICY=PASSIVE)
        env "${envs[@]}" "$PY" "$root/bench/train_torch.py" "$onnx" "${common[@]}" --threads "$t" --probe 150 \
            >"$out/probe.json" 2>"$out/probe.err" || { cat "$out/probe.err" >&2; die "train_torch.py probe failed"; }
        e=$(json "$out/probe.json" examples_per_s)
        if "$PY" -c "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$e" "$best_eps"; then
            best_eps=$e
            best_pol=$pol
        fi
    done
    envs=()
    [ "$best_pol" = PASSIVE ] && envs=(OMP_WAIT_POLICY=PASSIVE)
    echo "threads $t: torch (OMP_WAIT_POLICY=$best_pol) ..." >&2
    env "${envs[@]}" "$PY" "$root/bench/train_torch.py" "$onnx" "${common[@]}" --threads "$t" \
        --csv "$out/${name}_torch_t$t.csv" >"$out/torch_t$t.json" 2>"$out/${name}_torch_t$t.err" ||
        { tail -3 "$out/${name}_torch_t$t.err" >&2; die "train_torch.py failed at $t threads"; }
    t_eps=$(json "$out/torch_t$t.json" examples_per_s)
    t_acc=$(json "$out/torch_t$t.json" test_acc)
    results+=("$t $p_eps $t_eps $p_acc $t_acc $best_pol $p_epoch_s")
done

# ONNX Runtime agrees with pillar on the trained model?
ort_line="ONNX Runtime check skipped (no bench/node_modules/onnxruntime-node)"
if [ -d "$root/bench/node_modules/onnxruntime-node" ] && [ -n "$first_model" ]; then
    "$PY" - "$onnx" "$out" <<'EOF' || die "preparing the test images failed"
import gzip, numpy as np, onnx, sys
m = onnx.load(sys.argv[1])
dims = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim][1:]
b = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()
x = np.frombuffer(b, np.uint8, offset=16).astype(np.float32) / np.float32(255)
np.save(sys.argv[2] + "/test_x.npy", x.reshape([-1] + dims)[:2000])
EOF
    rm -rf "$out/ort_pred" "$out/pillar_pred"
    if node "$root/bench/ort_run.js" "$first_model" "$out/ort_pred" --input input="$out/test_x.npy" >/dev/null 2>&1 &&
        "$pillar" run "$first_model" --input input="$out/test_x.npy" --output "$out/pillar_pred" >/dev/null 2>&1; then
        ort_line=$("$PY" - "$out" <<'EOF'
import numpy as np, sys
import glob
a = np.load(sorted(glob.glob(sys.argv[1] + "/ort_pred/*.npy"))[0]); b = np.load(sorted(glob.glob(sys.argv[1] + "/pillar_pred/*.npy"))[0])
same = (a.argmax(1) == b.argmax(1)).mean()
print("ONNX Runtime vs pillar on the trained model: same class for %.2f%% of %d test images, max |logit diff| %.2g"
      % (100 * same, len(a), np.abs(a - b).max()))
EOF
)
    else
        ort_line="ONNX Runtime check failed (see bench/ort_run.js)"
    fi
fi

echo
printf "%-8s %12s %12s %8s %11s %11s %14s %10s\n" threads "pillar ex/s" "torch ex/s" ratio "pillar acc" "torch acc" \
    "torch OMP_WAIT" "epoch s"
for r in "${results[@]}"; do
    read -r t pe te pa ta pol es <<<"$r"
    "$PY" -c '
import sys
t, pe, te, pa, ta, pol, es = sys.argv[1:]
print("%-8s %12.0f %12.0f %7.2fx %10.2f%% %10.2f%% %14s %10s" % (t, float(pe), float(te), float(pe) / float(te),
      100 * float(pa), 100 * float(ta), pol, es))' "$t" "$pe" "$te" "$pa" "$ta" "$pol" "$es"
done
echo "$ort_line"
echo "(examples/s: training steps only; epoch s: pillar's mean wall time per epoch with evaluation)"
