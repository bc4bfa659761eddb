#!/usr/bin/env bash
# Training side by side: the same network (from `pillar zoo`, so both start from the same
# weights) trained on Fashion-MNIST by `pillar train` and by PyTorch (bench/train_torch.py,
# Debian's python3-torch) with the same data order, batch, optimizer and threads.
#
# Throughput: in each of --rounds rounds, at each thread count, pillar trains
# --probe-steps steps and then PyTorch does (after 20 warm-up steps), one right after the
# other, so that both see the same machine load. The table gives the medians over the
# rounds of examples/s (wall time of the training steps), of pillar's ratio over PyTorch
# in each round, and of examples per CPU-second (process CPU time of the steps, all
# threads: the cost of the work, less sensitive to other jobs on a shared machine).
# Before the rounds, PyTorch's OpenMP wait policy (libgomp's default or PASSIVE) is
# probed at each thread count and the faster kept: PyTorch at its best setting.
#
# Accuracy: then --epochs full epochs with both at the last thread count (--epochs 0
# skips it): test accuracy of both, and pillar's trained model checked in ONNX Runtime
# (bench/ort_run.js, when bench/node_modules has it): the share of test images where both
# predict the same class.
#
#   bench/train_compare.sh [--model lenet] [--epochs 5] [--batch 64] [--threads "1 2"]
#                          [--rounds 3] [--probe-steps 150] [--optimizer adam] [--lr 0.001]
#                          [--limit N] [--test-limit N] [--precision fp32|bf16] [--seed 0]
#                          [--pillar PATH] [--out DIR]
#
# --model is a zoo name (mlp, lenet, lenet_bn, resnet8) or an .onnx file. --out defaults to
# bench/out/train (git-ignored): the model, each run's CSV log and output, pillar's trained
# model.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
model=lenet
epochs=5
batch=64
threads="1 2"
rounds=3
probe_steps=150
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
        --rounds) rounds="$2"; shift 2 ;;
        --probe-steps) probe_steps="$2"; shift 2 ;;
        --optimizer) optimizer="$2"; shift 2 ;;
        --lr) lr="$2"; shift 2 ;;
        --limit) limit="$2"; shift 2 ;;
        --test-limit) test_limit="$2"; shift 2 ;;
        --precision) precision="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        --pillar) pillar="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

common=(--batch "$batch" --optimizer "$optimizer" --seed "$seed")
[ -n "$lr" ] && common+=(--lr "$lr")
full=(--epochs "$epochs")
[ -n "$limit" ] && full+=(--limit "$limit")
[ -n "$test_limit" ] && full+=(--test-limit "$test_limit")
probe_n=$((probe_steps * batch))

# json FILE KEY: a value from a one-line JSON object
json() { "$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2"; }

# csv_stats CSV: pillar's examples/s (wall), examples per CPU-second, last test accuracy and
# mean epoch seconds, from its CSV log
csv_stats() {
    "$PY" - "$1" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
sec = sum(float(r["train_seconds"]) for r in rows)
ex = sum(float(r["examples_per_s"]) * float(r["train_seconds"]) for r in rows)
cpu = sum(float(r["train_cpu_seconds"]) for r in rows)
print("%.1f %.1f %s %.2f" % (ex / sec, ex / cpu, rows[-1]["test_acc"], sum(float(r["seconds"]) for r in rows) / len(rows)))
EOF
}

# torch_env POLICY: the environment setting for PyTorch's OpenMP wait policy
torch_env() { if [ "$1" = PASSIVE ]; then echo OMP_WAIT_POLICY=PASSIVE; else echo TRAIN_COMPARE_OMP=default; fi; }

echo "train_compare: $name on Fashion-MNIST, batch $batch, $optimizer${lr:+ lr $lr}, pillar $precision," \
     "$(nproc) cpus, isa $("$PY" - <<'EOF'
flags = open("/proc/cpuinfo").read()
print("avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "other")
EOF
), $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"

declare -A policy
for t in $threads; do
    best_eps=0
    for pol in default PASSIVE; do
        env "$(torch_env $pol)" "$PY" "$root/bench/train_torch.py" "$onnx" "${common[@]}" --threads "$t" \
            --probe 60 >"$out/probe.json" 2>"$out/probe.err" || { cat "$out/probe.err" >&2; die "train_torch.py probe failed"; }
        e=$(json "$out/probe.json" examples_per_s)
        if "$PY" -c "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$e" "$best_eps"; then
            best_eps=$e
            policy[$t]=$pol
        fi
    done
done

# the rounds: pillar then PyTorch at each thread count; one line per pair in rounds.txt
: >"$out/rounds.txt"
for r in $(seq 1 "$rounds"); do
    for t in $threads; do
        echo "round $r/$rounds, $t thread(s): pillar, then torch ..." >&2
        log="$out/probe_pillar_t$t.csv"
        "$pillar" train "$onnx" --data fashion-mnist "${common[@]}" --epochs 1 --limit "$probe_n" --test-limit 1 \
            --threads "$t" --precision "$precision" --log "$log" --out "$out/probe_pillar.onnx" --quiet \
            >"$out/probe_pillar.out" 2>&1 || { tail -3 "$out/probe_pillar.out" >&2; die "pillar train failed at $t threads"; }
        read -r p_eps p_cps _ _ < <(csv_stats "$log")
        env "$(torch_env "${policy[$t]}")" "$PY" "$root/bench/train_torch.py" "$onnx" "${common[@]}" --threads "$t" \
            --probe "$probe_steps" >"$out/probe.json" 2>"$out/probe.err" ||
            { cat "$out/probe.err" >&2; die "train_torch.py probe failed"; }
        echo "$t $p_eps $p_cps $(json "$out/probe.json" examples_per_s) $(json "$out/probe.json" examples_per_cpu_s)" \
            >>"$out/rounds.txt"
    done
done

# full runs at the last thread count: accuracy after the same epochs
acc_line="" first_model=""
t_acc=$(echo $threads | awk '{print $NF}')
if [ "$epochs" -gt 0 ]; then
    log="$out/${name}_pillar_t$t_acc.csv"
    tm="$out/${name}_pillar_t$t_acc.onnx"
    echo "full run, $t_acc thread(s): pillar train ..." >&2
    "$pillar" train "$onnx" --data fashion-mnist "${common[@]}" "${full[@]}" --threads "$t_acc" \
        --precision "$precision" --log "$log" --out "$tm" >"$out/${name}_pillar_t$t_acc.out" 2>&1 ||
        { tail -3 "$out/${name}_pillar_t$t_acc.out" >&2; die "pillar train failed"; }
    read -r fp_eps _ fp_acc fp_epoch_s < <(csv_stats "$log")
    first_model="$tm"
    echo "full run, $t_acc thread(s): torch ..." >&2
    env "$(torch_env "${policy[$t_acc]}")" "$PY" "$root/bench/train_torch.py" "$onnx" "${common[@]}" "${full[@]}" \
        --threads "$t_acc" --csv "$out/${name}_torch_t$t_acc.csv" >"$out/torch_t$t_acc.json" \
        2>"$out/${name}_torch_t$t_acc.err" || { tail -3 "$out/${name}_torch_t$t_acc.err" >&2; die "train_torch.py failed"; }
    acc_line=$("$PY" -c '
import sys
t, e, pa, ta, pe, te, es = sys.argv[1:]
print("accuracy after %s epochs at %s thread(s): pillar %.2f%%, PyTorch %.2f%%; examples/s of those runs: "
      "pillar %.0f, PyTorch %.0f (%.2fx); pillar epoch %s s with evaluation" % (e, t, 100 * float(pa), 100 * float(ta),
      float(pe), float(te), float(pe) / float(te), es))' "$t_acc" "$epochs" "$fp_acc" \
        "$(json "$out/torch_t$t_acc.json" test_acc)" "$fp_eps" "$(json "$out/torch_t$t_acc.json" examples_per_s)" "$fp_epoch_s")
fi

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
"$PY" - "$out/rounds.txt" "$rounds" "$probe_n" <<'EOF'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print("throughput: %s round(s) of %s training examples each; medians (per-round ratio min-max)" % (sys.argv[2], sys.argv[3]))
print("%-8s %12s %12s %18s %16s %15s %10s" % ("threads", "pillar ex/s", "torch ex/s", "ratio", "pillar ex/cpu-s",
                                            "torch ex/cpu-s", "cpu ratio"))
for t in sorted({r[0] for r in rows}, key=int):
    rr = [[float(x) for x in r[1:]] for r in rows if r[0] == t]
    ratio = [r[0] / r[2] for r in rr]
    cratio = [r[1] / r[3] for r in rr]
    print("%-8s %12.0f %12.0f %7.2fx (%.2f-%.2f) %16.0f %15.0f %9.2fx" % (t, st.median(r[0] for r in rr),
          st.median(r[2] for r in rr), st.median(ratio), min(ratio), max(ratio), st.median(r[1] for r in rr),
          st.median(r[3] for r in rr), st.median(cratio)))
EOF
echo "PyTorch's OpenMP wait policy: $(for t in $threads; do printf "%s thread(s) %s; " "$t" "${policy[$t]}"; done)"
if [ -n "$acc_line" ]; then
    echo "$acc_line"
    echo "$ort_line"
fi
