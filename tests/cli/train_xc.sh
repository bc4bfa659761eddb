#!/usr/bin/env bash
# `pillar train-xc` end to end on a small synthetic set (bench/xc/gen_xc.py): LSH
# training beats chance and the most-popular-label guess by a wide margin, the log has
# the documented columns, the exported ONNX model runs in the engine with the same
# scores as numpy, the dense baseline runs, and bad data files / options fail with
# one-line messages naming the line or option. Then `--lsh-output` (HALOS in sessions)
# on a 10,000-label model: run returns top-k labels with their exact logits, bench
# reports recall and speed against exact, and models without a wide last layer fail.
source "$(dirname "$0")/lib.bash"

D="$TMP/xc"
"$PY" "$SRC/bench/xc/gen_xc.py" "$D" --labels 2000 --features 5000 --train 12000 --test 1000 \
    --seed 3 >/dev/null || { echo "FAIL: gen_xc.py"; exit 1; }

# LSH training (both sources of candidates), two threads
if expect_ok train-xc "${D}_train.txt" "${D}_test.txt" --epochs 3 --threads 2 --lsh simhash,8,16 \
    --lsh-source both --sample topk:200 --max-active 200 --eval-every 50 --log "$TMP/lsh.csv" \
    --out "$TMP/xc.onnx" --quiet; then
    expect_out "P@1"
    expect_out "wrote $TMP/xc.onnx"
    py_check "LSH training beats the popular-label guess" -c '
import csv, sys, collections
rows = list(csv.DictReader(open(sys.argv[1])))
need = ["epoch", "seconds", "p_at_1", "p_at_5"]
if not rows or any(k not in rows[0] for k in need): sys.exit("log columns: %r" % (rows[0].keys() if rows else None))
if len(rows) < 4: sys.exit("only %d evaluations" % len(rows))
p1 = float(rows[-1]["p_at_1"])
# the best constant guess: the most frequent training label
cnt = collections.Counter()
with open(sys.argv[2]) as f:
    f.readline()
    for line in f:
        if line[0] not in " \t": cnt.update(line.split()[0].split(","))
top = cnt.most_common(1)[0][0]
hit = n = 0
with open(sys.argv[3]) as f:
    f.readline()
    for line in f:
        n += 1
        hit += line[0] not in " \t" and top in line.split()[0].split(",")
base = hit / n
if not (p1 > 0.3 and p1 > 3 * base): sys.exit("P@1 %.3f vs popular-label guess %.3f, chance 0.0005" % (p1, base))
print("P@1 %.3f, popular-label guess %.3f" % (p1, base))
' "$TMP/lsh.csv" "${D}_train.txt" "${D}_test.txt"
    # the engine runs the exported model: scores equal numpy on two test points
    py_check "exported model input" -c '
import sys, numpy as np
F = 5000
x = np.zeros((2, F), np.float32)
with open(sys.argv[1]) as f:
    f.readline()
    for r in range(2):
        for tok in f.readline().split()[1:]:
            i, v = tok.split(":")
            x[r, int(i)] = float(v)
np.save(sys.argv[2], x)
' "${D}_test.txt" "$TMP/x.npy"
    rm -rf "$TMP/out"
    if expect_ok run "$TMP/xc.onnx" --input features="$TMP/x.npy" --output "$TMP/out"; then
        expect_out "output 'scores': float32 2x2000"
        py_check "engine scores match numpy" -c '
import sys, numpy as np, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
w = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
x = np.load(sys.argv[2]).astype(np.float64)
h = np.maximum(x @ w["W1"] + w["b1"], 0)
want = h @ w["W2"].T + w["b2"]
got = np.load(sys.argv[3])
err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-6)
if err > 1e-4: sys.exit("relative error %g" % err)
print("max rel error %.2g" % err)
' "$TMP/xc.onnx" "$TMP/x.npy" "$TMP/out/scores.npy"
    fi
fi

# the dense baseline and the neuron-hashing (SLIDE) source run too
expect_ok train-xc "${D}_train.txt" "${D}_test.txt" --dense --epochs 1 --threads 2 --quiet \
    --eval-points 200 && expect_out "P@1"
expect_ok train-xc "${D}_train.txt" "${D}_test.txt" --lsh dwta,3,8 --lsh-source neurons \
    --epochs 1 --threads 1 --quiet --eval-points 200 --rebuild 10,1.5,100 && expect_out "rebuilds"

# malformed data: one line naming the file and line
printf '3 10 5\n0 1:0.5\n1,7 2:1\n2 3:1\n' >"$TMP/bad_label.txt"
expect_fail 3 "bad_label.txt:3:|label 7 is out of range" train-xc "$TMP/bad_label.txt" "${D}_test.txt"
printf '2 10 5\n0 1:0.5 4:x\n1 2:1\n' >"$TMP/bad_value.txt"
expect_fail 3 "bad_value.txt:2:|not a number" train-xc "$TMP/bad_value.txt" "${D}_test.txt"
printf '5 10 5\n0 1:0.5\n' >"$TMP/short.txt"
expect_fail 3 "short.txt|says 5 points" train-xc "$TMP/short.txt" "${D}_test.txt"
printf '1 10 5\n0 1:0.5\n' >"$TMP/small.txt"
expect_fail 3 "features and|labels" train-xc "$TMP/small.txt" "${D}_test.txt"
expect_fail 3 "cannot open" train-xc "$TMP/missing.txt" "${D}_test.txt"
expect_fail 1 "--lsh" train-xc "${D}_train.txt" "${D}_test.txt" --lsh simhash,8
expect_fail 1 "--dense and --lsh" train-xc "${D}_train.txt" "${D}_test.txt" --dense --lsh wta,2,4
expect_fail 1 "32" train-xc "${D}_train.txt" "${D}_test.txt" --lsh wta,12,4
expect_fail 1 "TRAIN and TEST" train-xc "${D}_train.txt"
expect_ok train-xc --help && expect_out "--lsh FAMILY,K,L"

# --lsh-output: a 10,000-label model (the option needs >= 10,000 outputs)
D10="$TMP/xc10k"
"$PY" "$SRC/bench/xc/gen_xc.py" "$D10" --labels 10000 --features 2000 --train 4000 --test 64 \
    --seed 5 >/dev/null || { echo "FAIL: gen_xc.py 10k"; exit 1; }
if expect_ok train-xc "${D10}_train.txt" "${D10}_test.txt" --hidden 16 --epochs 1 --threads 2 \
    --lsh simhash,8,16 --sample topk:200 --max-active 200 --eval-points 64 --out "$TMP/m10k.onnx" --quiet; then
    py_check "test points as .npy" -c '
import sys, numpy as np
x = np.zeros((64, 2000), np.float32)
with open(sys.argv[1]) as f:
    f.readline()
    for r, line in enumerate(f):
        for tok in line.split()[1:]:
            i, v = tok.split(":")
            x[r, int(i)] = float(v)
np.save(sys.argv[2], x)
' "${D10}_test.txt" "$TMP/x10k.npy"
    rm -rf "$TMP/lo"
    if expect_ok run "$TMP/m10k.onnx" --input features="$TMP/x10k.npy" --lsh-output 8,16,5 --threads 2 \
        --output "$TMP/lo"; then
        expect_out "output 'scores_topk_scores': float32 64x5"
        expect_out "output 'scores_topk_labels': int64 64x5"
        py_check "lsh-output: labels with their exact logits, best first" -c '
import sys, numpy as np, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
w = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
x = np.load(sys.argv[2]).astype(np.float64)
logits = np.maximum(x @ w["W1"] + w["b1"], 0) @ w["W2"].T.astype(np.float64) + w["b2"]
s = np.load(sys.argv[3]); l = np.load(sys.argv[4])
assert l.dtype == np.int64 and s.shape == l.shape == (64, 5), (l.dtype, s.shape, l.shape)
assert (l >= 0).all() and (l < 10000).all(), "labels out of range"
for r in range(64):
    assert len(set(l[r])) == 5, "row %d: repeated labels %s" % (r, l[r])
    assert (np.diff(s[r]) <= 0).all(), "row %d: scores not sorted" % r
    err = np.abs(logits[r, l[r]] - s[r]).max()
    assert err < 1e-3 * max(1, np.abs(logits[r]).max()), "row %d: score error %g" % (r, err)
top1 = (l[:, 0] == logits.argmax(1)).mean()
print("recall@1 against exact %.3f" % top1)
' "$TMP/m10k.onnx" "$TMP/x10k.npy" "$TMP/lo/scores_topk_scores.npy" "$TMP/lo/scores_topk_labels.npy"
    fi
    expect_ok bench "$TMP/m10k.onnx" --batch 8 --lsh-output 10,16,3 --threads 1 --time 0.2 --warmup 0 &&
        expect_out "recall of 'scores' against exact top-3 on the same 8 rows: recall@1 " &&
        expect_out "faster than exact"
    expect_fail 2 "has 2000 outputs|at least 10000" run "$TMP/xc.onnx" --shape features=1x5000 --lsh-output 8,16
    expect_fail 1 "--lsh-output 8: expected K,L" run "$TMP/m10k.onnx" --lsh-output 8
    expect_fail 1 "TOPK '0'" bench "$TMP/m10k.onnx" --lsh-output 8,16,0
fi

finish
