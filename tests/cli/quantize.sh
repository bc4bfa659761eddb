#!/usr/bin/env bash
# `pillar quantize`: a LeNet-style CNN (pillar zoo lenet, pruned) quantized from .npy
# samples, from a folder of .npy files and from PPM/PGM images; the QDQ structure
# checked with the onnx package (int8 per-channel weights with zero point 0, pruned
# zeros still zero, uint8 activations, int32 biases, Relus folded, onnx.checker clean);
# the quantized model runs in pillar close to the float one, and, when node and
# onnxruntime-node are installed, exactly like ONNX Runtime; bad arguments and data give
# one-line errors.
source "$(dirname "$0")/lib.bash"

D="$TMP/d"
mkdir -p "$D/npys" "$D/imgs" "$D/empty"
expect_ok zoo lenet --out "$D/lenet.onnx" --seed 3
expect_ok prune "$D/lenet.onnx" --sparsity 0.8 --all --out "$D/pruned.onnx"
"$PY" - "$D" <<'EOF' || fail "making calibration data"
import sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(0)
np.save(d + "/cal.npy", rng.random((12, 1, 28, 28), dtype=np.float32))
for i in range(3):
    np.save(d + "/npys/s%d.npy" % i, rng.random((2, 1, 28, 28), dtype=np.float32))
np.save(d + "/one.npy", rng.random((1, 28, 28), dtype=np.float32))
np.save(d + "/bad_rank.npy", rng.random((28, 28), dtype=np.float32))
np.save(d + "/ints.npy", np.zeros((2, 1, 28, 28), dtype=np.int64))
np.save(d + "/x.npy", rng.random((4, 1, 28, 28), dtype=np.float32))
for i in range(2):
    w, h = 40 + i, 30
    px = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    with open(d + "/imgs/im%d.ppm" % i, "wb") as f:
        f.write(b"P6\n# test\n%d %d\n255\n" % (w, h) + px.tobytes())
    with open(d + "/imgs/g%d.pgm" % i, "wb") as f:
        f.write(b"P5 %d %d 255\n" % (w, h) + px[:, :, 0].tobytes())
open(d + "/imgs/notes.txt", "w").write("ignored")
EOF

expect_ok quantize "$D/pruned.onnx" --calibration "$D/cal.npy" --out "$D/q.onnx"
expect_out "on 12 calibration runs"
expect_ok quantize "$D/pruned.onnx" --calibration "$D/cal.npy" --samples 5 --method percentile \
    --percentile 99.9 --out "$D/qp.onnx"
expect_out "on 5 calibration runs"
expect_ok quantize "$D/pruned.onnx" --calibration "$D/npys" --per-tensor --out "$D/qt.onnx"
expect_out "on 6 calibration runs"
expect_ok quantize "$D/pruned.onnx" --calibration "$D/imgs" --exclude fc3 --out "$D/qi.onnx"
expect_out "on 4 calibration runs"
expect_ok quantize "$D/pruned.onnx" --calibration "$D/one.npy" --out "$D/q1.onnx"
expect_out "on 1 calibration run "

cat >"$TMP/check_qdq.py" <<'EOF'
import sys, numpy as np, onnx
from onnx import numpy_helper
src, path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
m = onnx.load(path)
onnx.checker.check_model(m)
g = m.graph
init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
prod = {o: n for n in g.node for o in n.output}
orig = {t.name: numpy_helper.to_array(t) for t in onnx.load(src).graph.initializer}
ops = [n.op_type for n in g.node]
assert "Relu" not in ops, "Relus left: %s" % ops
excluded = sys.argv[4:] if len(sys.argv) > 4 else []
nq = 0
for n in g.node:
    if n.op_type not in ("Conv", "Gemm", "MatMul"):
        continue
    if n.name in excluded:
        assert n.input[1] in init and init[n.input[1]].dtype == np.float32, "%s not left in float" % n.name
        continue
    nq += 1
    x = prod[n.input[0]]
    assert x.op_type == "DequantizeLinear" and prod[x.input[0]].op_type == "QuantizeLinear", n.name
    assert init[x.input[2]].dtype == np.uint8, "activation zero point of %s" % n.name
    w = prod[n.input[1]]
    assert w.op_type == "DequantizeLinear", n.name
    q, s, z = init[w.input[0]], init[w.input[1]], init[w.input[2]]
    assert q.dtype == np.int8 and z.dtype == np.int8 and not z.any(), n.name
    assert q.min() >= -127, "weight uses -128"
    axis = [a.i for a in w.attribute if a.name == "axis"]
    if mode == "channel":
        assert axis == [0] and s.shape == (q.shape[0],), "%s: axis %s scales %s" % (n.name, axis, s.shape)
        shape = [-1] + [1] * (q.ndim - 1)
    else:
        assert not axis and s.shape == (), "%s: per-tensor scales %s" % (n.name, s.shape)
        shape = ()
    wf = orig[w.input[0][:-len("_quantized")]]
    assert not ((wf == 0) & (q != 0)).any(), "%s: a zero weight became non-zero" % n.name
    err = np.abs(q * s.reshape(shape) - wf).max()
    assert err <= 0.5001 * s.max(), "%s: weight error %g" % (n.name, err)
    b = prod[n.input[2]]
    assert b.op_type == "DequantizeLinear" and init[b.input[0]].dtype == np.int32, "%s: bias not int32" % n.name
    xs = init[x.input[1]]
    assert np.allclose(init[b.input[1]], xs * s, rtol=1e-6), "%s: bias scale != x_scale * w_scale" % n.name
print("%d nodes quantized, %.0f%% zeros in conv2's int8 weight" % (nq, 100 * np.mean(init["conv2.conv.weight_quantized"] == 0)))
EOF
py_check "QDQ structure (per channel)" "$TMP/check_qdq.py" "$D/pruned.onnx" "$D/q.onnx" channel
py_check "QDQ structure (percentile)" "$TMP/check_qdq.py" "$D/pruned.onnx" "$D/qp.onnx" channel
py_check "QDQ structure (per tensor)" "$TMP/check_qdq.py" "$D/pruned.onnx" "$D/qt.onnx" tensor
py_check "QDQ structure (images, fc3 excluded)" "$TMP/check_qdq.py" "$D/pruned.onnx" "$D/qi.onnx" channel fc3

# runs in pillar close to float; same as ONNX Runtime when it is installed
expect_ok run "$D/pruned.onnx" --input "input=$D/x.npy" --output "$D/of"
expect_ok run "$D/q.onnx" --input "input=$D/x.npy" --output "$D/oq"
py_check "int8 logits close to float" -c '
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
err = np.abs(a - b).max() / (a.max() - a.min())
assert err < 0.1, "error %g of the logit spread" % err
print("max error %.3g of the spread" % err)' "$D/of/logits.npy" "$D/oq/logits.npy"
if command -v node >/dev/null && [ -d "$SRC/bench/node_modules/onnxruntime-node" ]; then
    if node "$SRC/bench/ort_run.js" "$D/q.onnx" "$D/oo" --input "input=$D/x.npy" >/dev/null 2>"$TMP/ort.err"; then
        py_check "pillar == ONNX Runtime on the QDQ model" -c '
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
err = np.abs(a - b).max() / (a.max() - a.min())
assert (a.argmax(1) == b.argmax(1)).all() and err < 1e-3, "error %g, argmax %s vs %s" % (err, a.argmax(1), b.argmax(1))
print("max error %.3g of the spread" % err)' "$D/oq/logits.npy" "$D/oo/logits.npy"
    else
        fail "ONNX Runtime cannot run the quantized model: $(tail -2 "$TMP/ort.err")"
    fi
else
    echo "skip: ONNX Runtime comparison (node or onnxruntime-node not installed)"
fi

# errors: one line, exit 1 for usage, 3 for data
expect_fail 1 "missing --calibration" quantize "$D/lenet.onnx" --out "$D/e.onnx"
expect_fail 1 "missing --out" quantize "$D/lenet.onnx" --calibration "$D/cal.npy"
expect_fail 1 "missing MODEL" quantize --calibration "$D/cal.npy" --out "$D/e.onnx"
expect_fail 1 "--method|'median'" quantize "$D/lenet.onnx" --calibration "$D/cal.npy" --method median --out "$D/e.onnx"
expect_fail 1 "--percentile|'101'" quantize "$D/lenet.onnx" --calibration "$D/cal.npy" --method percentile --percentile 101 --out "$D/e.onnx"
expect_fail 1 "--percentile needs --method percentile" quantize "$D/lenet.onnx" --calibration "$D/cal.npy" --percentile 99 --out "$D/e.onnx"
expect_fail 1 "--samples|'0'" quantize "$D/lenet.onnx" --calibration "$D/cal.npy" --samples 0 --out "$D/e.onnx"
expect_fail 1 "unknown option '--bogus'" quantize "$D/lenet.onnx" --calibration "$D/cal.npy" --bogus --out "$D/e.onnx"
expect_fail 1 "'nosuchnode'" quantize "$D/lenet.onnx" --calibration "$D/cal.npy" --exclude conv1.conv,nosuchnode --out "$D/e.onnx"
expect_fail 3 "nothere|No such file" quantize "$D/lenet.onnx" --calibration "$D/nothere" --out "$D/e.onnx"
expect_fail 3 "no .npy, .ppm or .pgm" quantize "$D/lenet.onnx" --calibration "$D/empty" --out "$D/e.onnx"
expect_fail 3 "bad_rank.npy|2 dims" quantize "$D/lenet.onnx" --calibration "$D/bad_rank.npy" --out "$D/e.onnx"
expect_fail 3 "ints.npy|int64|float32" quantize "$D/lenet.onnx" --calibration "$D/ints.npy" --out "$D/e.onnx"
expect_fail 2 "nothing.onnx" quantize "$D/nothing.onnx" --calibration "$D/cal.npy" --out "$D/e.onnx"
expect_fail 4 "cannot create" quantize "$D/lenet.onnx" --calibration "$D/cal.npy" --out "$D/no/such/dir/e.onnx"
finish
