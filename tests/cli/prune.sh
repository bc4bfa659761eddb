#!/usr/bin/env bash
# `pillar prune`: exact per-layer sparsities (read back from the saved ONNX), first and
# last layers kept dense by default and pruned with --all, --skip, blocks along the
# input channels zeroed whole, global vs layer scope, bad arguments (one line, exit 1),
# and the pruned model computing what numpy computes from its weights (on every kernel
# level, so that the sparse kernels pillar picks for it are checked too).
source "$(dirname "$0")/lib.bash"

D="$TMP/d"
mkdir -p "$D"
expect_ok zoo mlp --out "$D/mlp.onnx"
expect_ok zoo lenet --out "$D/lenet.onnx"

# zeros.py MODEL NAME=COUNT... : the zero count of each named initializer
cat >"$D/zeros.py" <<'EOF'
import sys, onnx
from onnx import numpy_helper
w = {i.name: numpy_helper.to_array(i) for i in onnx.load(sys.argv[1]).graph.initializer}
bad = []
for a in sys.argv[2:]:
    name, want = a.split("=")
    got = int((w[name] == 0).sum())
    if got != int(want): bad.append("%s: %d zeros, want %s" % (name, got, want))
if bad: sys.exit("; ".join(bad))
EOF

# ---------------------------------------------------------------- layer scope
# lenet: conv1 32x1x5x5 (first), conv2 64x32x5x5, fc1 256x3136, fc2 128x256, fc3 10x128 (last)
if expect_ok prune "$D/lenet.onnx" --sparsity 0.9 --out "$D/l90.onnx"; then
    expect_out "kept: first layer"
    expect_out "kept: last layer"
    expect_out "wrote $D/l90.onnx"
    grep -E "^conv2.conv +Conv +64x32x5x5 +51200 +0.00% +90.00%$" "$OUT" >/dev/null || fail "conv2 row: $(cat "$OUT")"
    py_check "layer scope: 90% of conv2, fc1, fc2; conv1 and fc3 dense" "$D/zeros.py" "$D/l90.onnx" \
        conv1.conv.weight=0 conv2.conv.weight=46080 fc1.weight=722534 fc2.weight=29491 fc3.weight=0
fi
expect_ok prune "$D/lenet.onnx" --sparsity 50% --all --out "$D/l50all.onnx" &&
    py_check "--all: first and last pruned too" "$D/zeros.py" "$D/l50all.onnx" \
        conv1.conv.weight=400 conv2.conv.weight=25600 fc1.weight=401408 fc2.weight=16384 fc3.weight=640
expect_ok prune "$D/lenet.onnx" --sparsity 0.75 --skip fc1,fc2 --out "$D/lskip.onnx" &&
    expect_out "kept: skipped" &&
    py_check "--skip fc1,fc2" "$D/zeros.py" "$D/lskip.onnx" conv2.conv.weight=38400 fc1.weight=0 fc2.weight=0
expect_ok prune "$D/lenet.onnx" --sparsity 0 --out "$D/l0.onnx" &&
    py_check "sparsity 0 changes nothing" "$D/zeros.py" "$D/l0.onnx" conv2.conv.weight=0 fc1.weight=0

# ---------------------------------------------------------------- blocks
if expect_ok prune "$D/lenet.onnx" --sparsity 0.8 --block 4 --out "$D/lb4.onnx"; then
    py_check "block 4: whole runs of 4 input channels" -c '
import sys, onnx, numpy as np
from onnx import numpy_helper
w = {i.name: numpy_helper.to_array(i) for i in onnx.load(sys.argv[1]).graph.initializer}
c = w["conv2.conv.weight"] == 0                  # [64, 32, 5, 5]: blocks along axis 1
b = c.reshape(64, 8, 4, 5, 5).sum(axis=2)
if not np.isin(b, [0, 4]).all(): sys.exit("conv2: a channel block is partly zero")
f = w["fc1.weight"] == 0                         # Gemm transB [256, 3136]: along axis 1
b = f.reshape(256, 784, 4).sum(axis=2)
if not np.isin(b, [0, 4]).all(): sys.exit("fc1: a K block is partly zero")
for n, want in (("conv2.conv.weight", 40960), ("fc1.weight", 642252)):
    got = int((w[n] == 0).sum())
    if abs(got - want) > 2: sys.exit("%s: %d zeros, want %d" % (n, got, want))
' "$D/lb4.onnx"
fi
if expect_ok prune "$D/mlp.onnx" --sparsity 0.9 --block 16 --all --out "$D/mb16.onnx"; then
    py_check "block 16: whole runs of 16 inputs" -c '
import sys, onnx, numpy as np
from onnx import numpy_helper
w = {i.name: numpy_helper.to_array(i) for i in onnx.load(sys.argv[1]).graph.initializer}
for n in ("fc1.weight", "fc2.weight", "fc3.weight"):
    z = w[n] == 0
    b = z.reshape(z.shape[0], -1, 16).sum(axis=2)
    if not np.isin(b, [0, 16]).all(): sys.exit(n + ": a block is partly zero")
    if abs(z.mean() - 0.9) > 16.0 / z.size: sys.exit("%s: sparsity %g" % (n, z.mean()))
' "$D/mb16.onnx"
fi

# ---------------------------------------------------------------- global scope
if expect_ok prune "$D/lenet.onnx" --sparsity 0.9 --scope global --out "$D/lg.onnx"; then
    py_check "global: 90% over the pruned layers together, unevenly" -c '
import sys, onnx, numpy as np
from onnx import numpy_helper
w = {i.name: numpy_helper.to_array(i) for i in onnx.load(sys.argv[1]).graph.initializer}
ns = ["conv2.conv.weight", "fc1.weight", "fc2.weight"]
z = sum(int((w[n] == 0).sum()) for n in ns)
t = sum(w[n].size for n in ns)
if z != round(0.9 * t): sys.exit("%d zeros of %d" % (z, t))
per = [float((w[n] == 0).mean()) for n in ns]
if max(per) - min(per) < 0.01: sys.exit("per-layer sparsities all equal: %s" % per)
# the global cut: every kept weight is at least as large as every pruned one
alls = np.concatenate([np.abs(numpy_helper.to_array(i)).ravel() for i in onnx.load(sys.argv[2]).graph.initializer if i.name in ns])
kept = np.concatenate([w[n].ravel() for n in ns])
if np.abs(kept[kept != 0]).min() < alls[kept == 0].max(): sys.exit("a kept weight is smaller than a pruned one")
' "$D/lg.onnx" "$D/lenet.onnx"
fi

# ---------------------------------------------------------------- bad arguments
expect_fail 1 "no sparsity" prune "$D/lenet.onnx" --out "$D/x.onnx"
expect_fail 1 "--sparsity|1.5" prune "$D/lenet.onnx" --sparsity 1.5 --out "$D/x.onnx"
expect_fail 1 "--sparsity|abc" prune "$D/lenet.onnx" --sparsity abc --out "$D/x.onnx"
expect_fail 1 "--block|3" prune "$D/lenet.onnx" --sparsity 0.5 --block 3 --out "$D/x.onnx"
expect_fail 1 "--scope|sideways" prune "$D/lenet.onnx" --sparsity 0.5 --scope sideways --out "$D/x.onnx"
expect_fail 1 "--skip|nosuch" prune "$D/lenet.onnx" --sparsity 0.5 --skip fc1,nosuch --out "$D/x.onnx"
expect_fail 1 "--out" prune "$D/lenet.onnx" --sparsity 0.5
expect_fail 1 "no model" prune --sparsity 0.5 --out "$D/x.onnx"
expect_fail 1 "contradict" prune "$D/lenet.onnx" --sparsity 0.5 --all --keep-first-last --out "$D/x.onnx"
expect_fail 1 "unknown option|--frobnicate" prune "$D/lenet.onnx" --frobnicate
expect_fail 2 "nosuch.onnx" prune "$D/nosuch.onnx" --sparsity 0.5 --out "$D/x.onnx"
[ -e "$D/x.onnx" ] && fail "a failed prune wrote its output"

# ---------------------------------------------------------------- the pruned model runs
# numpy's forward pass of the pruned MLP from its saved weights vs pillar on every level
"$PY" -c 'import numpy as np; np.save("'"$D"'/x.npy", np.random.RandomState(3).rand(5, 784).astype(np.float32))'
expect_ok prune "$D/mlp.onnx" --sparsity 0.95 --all --out "$D/m95.onnx"
for isa in ref avx2 avx512; do
    PILLAR_ISA=$isa run run "$D/m95.onnx" --input input="$D/x.npy" --output "$D/out_$isa" || continue
    [ $RC -eq 0 ] || { fail "run m95 ($isa): exit $RC: $(head -2 "$ERR")"; continue; }
    py_check "pruned MLP on $isa = numpy on its weights" -c '
import sys, onnx, numpy as np
from onnx import numpy_helper
w = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in onnx.load(sys.argv[1]).graph.initializer}
x = np.load(sys.argv[2]).astype(np.float64)
h = np.maximum(x @ w["fc1.weight"].T + w["fc1.bias"], 0)
h = np.maximum(h @ w["fc2.weight"].T + w["fc2.bias"], 0)
y = h @ w["fc3.weight"].T + w["fc3.bias"]
got = np.load(sys.argv[3] + "/logits.npy")
err = np.abs(got - y).max() / np.abs(y).max()
if not err < 1e-5: sys.exit("max rel diff %g" % err)
print("max rel diff %.2g" % err)
' "$D/m95.onnx" "$D/x.npy" "$D/out_$isa"
done

# ONNX Runtime runs the saved file too (when the peer is installed)
ORT_RUN="$SRC/bench/ort_run.js"
if command -v node >/dev/null && [ -d "$SRC/bench/node_modules/onnxruntime-node" ]; then
    if node "$ORT_RUN" "$D/m95.onnx" "$D/out_ort" --input input="$D/x.npy" >/dev/null 2>"$D/ort.err"; then
        py_check "ONNX Runtime agrees on the pruned model" -c '
import sys, numpy as np
a, b = np.load(sys.argv[1] + "/logits.npy"), np.load(sys.argv[2] + "/logits.npy")
if not np.abs(a - b).max() <= 1e-5 * np.abs(a).max(): sys.exit("differs")
' "$D/out_ort" "$D/out_ref"
    else
        fail "ONNX Runtime cannot run the pruned model: $(head -3 "$D/ort.err")"
    fi
fi
finish
