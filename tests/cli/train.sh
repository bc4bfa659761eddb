#!/usr/bin/env bash
# `pillar zoo` and `pillar train` end to end, in well under a minute: an MLP from the zoo
# trained 2 epochs on a 6,000-example subset of Fashion-MNIST must pass 70% test
# accuracy and write the CSV log, the SVG plot and a model that `pillar run` runs;
# 1 epoch + --resume to epoch 2 must give the same numbers as 2 epochs straight; Ctrl-C
# must stop with exit 130 after writing a checkpoint that --resume continues from; pruning
# keeps the first and last layers dense unless asked (--prune-all, --prune-skip); bad
# data must fail with exit 3 and one line naming the file and the record.
source "$(dirname "$0")/lib.bash"

FM=/usr/share/datasets/fashion-mnist
if [ ! -f "$FM/train-images-idx3-ubyte.gz" ]; then
    echo "SKIP: $FM not installed (Debian's dataset-fashion-mnist)"
    exit 0
fi
D="$TMP/d"
mkdir -p "$D"
SUB=(--data fashion-mnist --limit 6000 --test-limit 2000 --batch 64 --threads 2 --seed 3)

# ---------------------------------------------------------------- zoo
expect_ok zoo mlp --out "$D/mlp.onnx" && expect_out "input 'input' batchx784"
expect_ok zoo lenet --input 3x32x32 --classes 100 --out "$D/lenet32.onnx" && expect_out "batchx100"
expect_ok zoo resnet8 --out "$D/resnet8.onnx"
expect_fail 1 "unknown architecture|nosuch" zoo nosuch --out "$D/x.onnx"
expect_fail 1 "--out" zoo mlp
expect_fail 1 "CxHxW" zoo lenet --input 28x28 --out "$D/x.onnx"

# ---------------------------------------------------------------- a short training run
if expect_ok train "$D/mlp.onnx" "${SUB[@]}" --epochs 2 --log "$D/full.csv" --plot "$D/full.svg" \
    --checkpoint "$D/full.ckpt" --out "$D/trained.onnx"; then
    expect_out "epoch 2/2"
    expect_out "done: 2 epochs"
    py_check "CSV columns and accuracy > 70%" -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
need = ["epoch", "train_loss", "test_loss", "test_acc", "seconds", "examples_per_s", "lr", "sparsity"]
miss = [c for c in need if c not in rows[0]]
if miss: sys.exit("missing columns %s" % miss)
if [r["epoch"] for r in rows] != ["1", "2"]: sys.exit("epochs %s" % [r["epoch"] for r in rows])
acc = float(rows[-1]["test_acc"])
if not 0.70 < acc <= 1: sys.exit("test_acc %g" % acc)
if not float(rows[-1]["test_loss"]) < float(rows[0]["train_loss"]): sys.exit("loss did not fall")
if not float(rows[-1]["examples_per_s"]) > 0: sys.exit("no throughput")
print("test_acc %.4f" % acc)
' "$D/full.csv"
    py_check "SVG plot is well-formed with both curves" -c '
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
lines = root.iter(ns + "polyline")
texts = " ".join(t.text or "" for t in root.iter(ns + "text"))
if len(list(lines)) < 4: sys.exit("expected 4 curves")
for w in ("Loss", "Accuracy", "epoch", "train", "test"):
    if w not in texts: sys.exit("no label %r" % w)
' "$D/full.svg"
    expect_ok run "$D/trained.onnx" --shape input=5x784 && expect_out "output 'logits': float32 5x10"
fi

# ---------------------------------------------------------------- resume gives the same run
if expect_ok train "$D/mlp.onnx" "${SUB[@]}" --epochs 1 --checkpoint "$D/half.ckpt" --log "$D/half.csv" \
    --out "$D/half.onnx"; then
    if expect_ok train "$D/mlp.onnx" "${SUB[@]}" --epochs 2 --resume "$D/half.ckpt" --log "$D/half.csv" \
        --out "$D/resumed.onnx"; then
        expect_out "resuming from $D/half.ckpt at epoch 2, step 0"
        py_check "resumed run matches the straight run" -c '
import csv, sys
a = list(csv.DictReader(open(sys.argv[1])))
b = list(csv.DictReader(open(sys.argv[2])))
if [r["epoch"] for r in b] != ["1", "2"]: sys.exit("resumed log epochs %s" % [r["epoch"] for r in b])
for k in ("train_loss", "test_loss", "test_acc"):
    if a[1][k] != b[1][k]: sys.exit("epoch 2 %s: straight %s, resumed %s" % (k, a[1][k], b[1][k]))
' "$D/full.csv" "$D/half.csv"
    fi
fi

# ---------------------------------------------------------------- Ctrl-C, then resume mid-epoch
CHECKS=$((CHECKS + 1))
"$PILLAR" train "$D/mlp.onnx" "${SUB[@]}" --epochs 50 --checkpoint "$D/int.ckpt" --out "$D/int.onnx" \
    >"$D/int.out" 2>"$D/int.err" &
pid=$!
for _ in $(seq 1 300); do # wait for the first epoch to finish (at most 30 s)
    grep -q "^epoch 1/50 " "$D/int.out" 2>/dev/null && break
    sleep 0.1
done
kill -INT $pid
wait $pid
rc=$?
if [ $rc -ne 130 ]; then
    fail "SIGINT: exit $rc, expected 130; stderr: $(cat "$D/int.err")"
elif ! grep -q "^pillar: interrupted at epoch .*--resume $D/int.ckpt" "$D/int.err"; then
    fail "SIGINT: message: $(cat "$D/int.err")"
elif [ ! -s "$D/int.ckpt" ] || [ ! -s "$D/int.ckpt.meta" ] || [ ! -s "$D/int.onnx" ]; then
    fail "SIGINT: checkpoint, state or model missing"
else
    echo "ok: SIGINT -> 130: $(cat "$D/int.err")"
    where=$(sed -n 's/^pillar: interrupted at epoch \([0-9]*\), step \([0-9]*\) of.*/\1 \2/p' "$D/int.err")
    set -- $where
    if expect_ok train "$D/mlp.onnx" "${SUB[@]}" --epochs $(($1 + 1)) --resume "$D/int.ckpt" --out "$D/int2.onnx"; then
        expect_out "resuming from $D/int.ckpt at epoch $1, step $2"
        expect_out "done: $(($1 + 1)) epochs"
    fi
fi

# ---------------------------------------------------------------- bad data: exit 3, file and record named
"$PY" - "$D" <<'EOF' || fail "making bad data files"
import gzip, struct, sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(0)
x = rng.integers(0, 256, (100, 784), dtype=np.uint8)
y = rng.integers(0, 10, 100).astype(np.int64)
np.save(d + "/x.npy", x)
np.save(d + "/y.npy", y)
bad = y.copy(); bad[37] = 12
np.save(d + "/y_range.npy", bad)
np.save(d + "/y_short.npy", y[:99])
np.save(d + "/y_float.npy", y.astype(np.float32) + 0.5)
def idx(arr, code):
    return struct.pack(">BBBB", 0, 0, code, arr.ndim) + b"".join(struct.pack(">I", s) for s in arr.shape) + arr.tobytes()
imgs = idx(x.reshape(100, 28, 28), 8)
labs = idx(y.astype(np.uint8), 8)
cut = len(imgs) - 784 * 49 - 100                # records 0..49 complete, 50 cut short
for name, data in [("trunc", imgs[:cut]), ("magic", b"\x12\x34" + imgs[2:])]:
    import os
    os.makedirs("%s/%s" % (d, name), exist_ok=True)
    open("%s/%s/train-images-idx3-ubyte" % (d, name), "wb").write(data)
    open("%s/%s/train-labels-idx1-ubyte" % (d, name), "wb").write(labs)
os.makedirs(d + "/gztrunc", exist_ok=True)
open(d + "/gztrunc/train-images-idx3-ubyte.gz", "wb").write(gzip.compress(imgs)[:3000])
open(d + "/gztrunc/train-labels-idx1-ubyte.gz", "wb").write(gzip.compress(labs))
os.makedirs(d + "/empty", exist_ok=True)
EOF
M="$D/mlp.onnx"
expect_fail 3 "y_range.npy|record 37|label 12|10 classes" train "$M" --data "$D/x.npy,$D/y_range.npy" --out "$D/o.onnx"
expect_fail 3 "x.npy|100 records|y_short.npy|99" train "$M" --data "$D/x.npy,$D/y_short.npy" --out "$D/o.onnx"
expect_fail 3 "y_float.npy|whole numbers" train "$M" --data "$D/x.npy,$D/y_float.npy" --out "$D/o.onnx"
expect_fail 3 "trunc/train-images-idx3-ubyte|truncated|record 50 of 100" train "$M" --data "$D/trunc" --out "$D/o.onnx"
expect_fail 3 "gztrunc/train-images-idx3-ubyte.gz|truncated|record" train "$M" --data "$D/gztrunc" --out "$D/o.onnx"
expect_fail 3 "magic/train-images-idx3-ubyte|wrong magic" train "$M" --data "$D/magic" --out "$D/o.onnx"
expect_fail 3 "empty|no train-images" train "$M" --data "$D/empty" --out "$D/o.onnx"
expect_fail 3 "nosuch.npy|cannot open" train "$M" --data "$D/nosuch.npy,$D/y.npy" --out "$D/o.onnx"
expect_fail 3 "784|3072" train "$D/lenet32.onnx" --data "$D/x.npy,$D/y.npy" --out "$D/o.onnx"

# ---------------------------------------------------------------- which layers pruning touches
# the zoo MLP has three Gemm layers: by default the first and last stay dense and the
# middle one reaches the target; --prune-all prunes all three; --prune-skip keeps named
# ones dense. (inspect's per-node sparsity counts the bias too: 0.8 of the weight is
# 0.797 of fc2's parameters and 0.794 of fc3's.)
PR=(--data fashion-mnist --limit 1024 --test-limit 200 --batch 64 --threads 2 --epochs 1 --prune 0.8 --prune-end 1)
# prune_check MODEL SPARSITY_OR_D... : 'D' = dense (< 1% zeros), a number = within 0.01 of it
prune_check() {
    local model=$1
    shift
    if expect_ok inspect "$model" --dim batch=1 --json; then
        py_check "per-layer sparsity of $(basename "$model"): $*" -c '
import json, sys
nodes = [n for n in json.load(open(sys.argv[1]))["nodes"] if n["op"] == "Gemm"]
want = sys.argv[2:]
if len(nodes) != len(want): sys.exit("%d Gemm nodes, expected %d" % (len(nodes), len(want)))
for n, w in zip(nodes, want):
    s = n["sparsity"]
    if (w == "D" and s >= 0.01) or (w != "D" and abs(s - float(w)) > 0.01):
        sys.exit("%s: sparsity %.4f, expected %s" % (n["name"], s, "dense" if w == "D" else w))
' "$OUT" "$@"
    fi
}
if expect_ok train "$M" "${PR[@]}" --out "$D/p_ends.onnx"; then
    expect_out "first and last prunable layers kept dense"
    prune_check "$D/p_ends.onnx" D 0.797 D
fi
expect_ok train "$M" "${PR[@]}" --prune-all --out "$D/p_all.onnx" && prune_check "$D/p_all.onnx" 0.798 0.797 0.794
expect_ok train "$M" "${PR[@]}" --prune-all --prune-skip fc1 --out "$D/p_skip.onnx" &&
    prune_check "$D/p_skip.onnx" D 0.797 0.794
expect_fail 1 "prune skip|'nope'" train "$M" "${PR[@]}" --prune-skip fc2,nope --out "$D/o.onnx"
expect_fail 1 "need --prune" train "$M" --data "$D/x.npy,$D/y.npy" --prune-all --out "$D/o.onnx"

# ---------------------------------------------------------------- usage errors: exit 1
expect_fail 1 "--out" train "$M" --data "$D/x.npy,$D/y.npy"
expect_fail 1 "--optimizer|foo" train "$M" --data "$D/x.npy,$D/y.npy" --optimizer foo --out "$D/o.onnx"
expect_fail 1 "--prune-end" train "$M" --data "$D/x.npy,$D/y.npy" --prune 0.5 --prune-end 9 --epochs 2 --out "$D/o.onnx"
expect_fail 1 "--momentum" train "$M" --data "$D/x.npy,$D/y.npy" --momentum 0.9 --out "$D/o.onnx"

finish
