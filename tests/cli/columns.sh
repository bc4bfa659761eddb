#!/usr/bin/env bash
# Tensor columns (issue 8): the built-in ResNet-50 and MobileNetV2 (`pillar zoo`), dense
# and pruned to 90% (`pillar prune`), give the same outputs under the layer and the
# column schedule (within 1e-5 of the output's scale) on the same seeded inputs, at
# batch 1 and 2 and at an odd image size (97x131: tiles that do not divide the image,
# stride-2 layers with odd sizes, padding, residual branches); `pillar inspect
# --schedule` lists the chains and says columns are used when asked for; `pillar bench
# --schedule` reports the schedule in its JSON line; bad --schedule values give a
# one-line usage error. `pillar run` has no --schedule: it takes the schedule from
# PILLAR_SCHEDULE, the library's default.
source "$(dirname "$0")/lib.bash"

Z="$TMP/zoo"
mkdir -p "$Z"

# make NAME HxW: zoo model NAME built for HxW images, and its 90%-pruned copy
make() {
    local name=$1 hw=$2 f="$Z/$1_$2"
    expect_ok zoo "$name" --input "3x$hw" --out "$f.onnx" || return 1
    expect_ok prune "$f.onnx" --sparsity 0.9 --out "$f.s90.onnx" || return 1
}

# same FILE_A FILE_B WHAT: equal shapes, max |a - b| <= 1e-5 * max |b|
same() {
    py_check "$3" -c '
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
if a.shape != b.shape: sys.exit("shape %s vs %s" % (a.shape, b.shape))
if not np.isfinite(a).all(): sys.exit("columns output is not finite")
scale = max(float(np.abs(b).max()), 1e-30)
err = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) / scale
if not err <= 1e-5: sys.exit("max error %g of scale %g > 1e-5" % (err, scale))
print("max rel error %.3g" % err)
' "$1" "$2"
}

# agree MODEL SHAPE: outputs under layers and columns, same seed, compared
agree() {
    local f=$1 shape=$2 tag
    tag="$(basename "$f" .onnx) $shape"
    rm -rf "$TMP/lay" "$TMP/col"
    PILLAR_SCHEDULE=layers expect_ok run "$f" --shape "input=$shape" --seed 7 --output "$TMP/lay" ||
        return 1
    # the flag, not the environment, on this side: both ways of asking are covered
    expect_ok run "$f" --shape "input=$shape" --seed 7 --output "$TMP/col" --schedule columns ||
        return 1
    same "$TMP/col/logits.npy" "$TMP/lay/logits.npy" "columns = layers: $tag"
    # and the comparison did compare something: at least one chain ran as columns
    if PILLAR_SCHEDULE=columns expect_ok inspect "$f" --schedule --shape "input=$shape" &&
        ! grep -q "^schedule: columns (requested columns)" "$OUT"; then
        fail "$tag: no chain runs as columns under PILLAR_SCHEDULE=columns: $(sed -n 2p "$OUT")"
    fi
}

# used MODEL SHAPE: inspect --schedule columns lists chains and runs at least one
used() {
    local f=$1 shape=$2
    if expect_ok inspect "$f" --schedule columns --shape "input=$shape"; then
        expect_out "(requested columns)"
        expect_out "total bytes per inference: layers"
        if ! head -1 "$OUT" | grep -q "^model: " || ! sed -n 2p "$OUT" | grep -q "^schedule: columns"; then
            fail "inspect --schedule columns $(basename "$f") $shape: columns not used:"
            sed 's/^/    /' "$OUT" | head -8
        fi
        if ! grep -Eq "^chain [0-9]+: .* tile [0-9]+ rows, [0-9]+ tiles per image" "$OUT"; then
            fail "inspect --schedule $(basename "$f"): no chain lines:"
            sed 's/^/    /' "$OUT" | head -8
        fi
    fi
}

for name in resnet50 mobilenet_v2; do
    make "$name" 224x224 || continue
    make "$name" 97x131 || continue
    for v in "" .s90; do
        f="$Z/${name}_224x224$v.onnx"
        agree "$f" 1x3x224x224
        agree "$f" 2x3x224x224
        agree "$Z/${name}_97x131$v.onnx" 1x3x97x131
    done
    used "$Z/${name}_224x224.s90.onnx" 1x3x224x224
    used "$Z/${name}_97x131.s90.onnx" 1x3x97x131
done

# one thread too (the shared column counter with a single worker)
f="$Z/mobilenet_v2_97x131.s90.onnx"
rm -rf "$TMP/lay" "$TMP/col"
if PILLAR_SCHEDULE=layers expect_ok run "$f" --shape input=1x3x97x131 --threads 1 --seed 3 --output "$TMP/lay" &&
    PILLAR_SCHEDULE=columns expect_ok run "$f" --shape input=1x3x97x131 --threads 1 --seed 3 --output "$TMP/col"; then
    same "$TMP/col/logits.npy" "$TMP/lay/logits.npy" "columns = layers: 1 thread"
fi

# A hand-made chain of every kind of layer the planner takes: 3x3 with padding, a
# dilated 3x3 (dilation 2) with a residual Add before its Relu, a stride-2 depthwise
# 3x3 with Clip (Relu6), a 1x1, a 3x3 with asymmetric pads (1, 0, 2, 1), a 1x1 with a
# residual; an odd image (23x29); dense and 90% zero weights (PILLAR_SPARSE=0/1 forces
# the dense or sparse kernels); tiles of 1 and 4 output rows (PILLAR_COLUMN_ROWS) as well
# as the planner's choice, batch 1 and 3, every kernel level. Outputs under columns must
# equal those under layers, and inspect must show one chain of the six layers.
cat >"$TMP/gen_chain.py" <<'PYEOF'
import sys, numpy as np, onnx
from onnx import helper as h, TensorProto as T, numpy_helper as nh
r = np.random.default_rng(3)
def w(name, shape, sparsity=0.0):
    a = (r.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)
    if sparsity: a[r.random(shape) < sparsity] = 0
    return nh.from_array(a, name)
def b(name, n): return nh.from_array((0.1 * r.standard_normal(n)).astype(np.float32), name)
sp = float(sys.argv[2])
inits = [w("W1", (16, 8, 3, 3), sp), b("B1", 16), w("W2", (16, 16, 3, 3), sp), b("B2", 16),
         w("W3", (16, 1, 3, 3)), b("B3", 16), w("W4", (24, 16, 1, 1), sp), b("B4", 24),
         w("W5", (24, 24, 3, 3), sp), b("B5", 24), w("W6", (24, 24, 1, 1), sp)]
n = [
    h.make_node("Conv", ["x", "W1", "B1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
    h.make_node("Relu", ["c1"], ["a"], name="relu1"),
    h.make_node("Conv", ["a", "W2", "B2"], ["c2"], name="conv2_dil2", pads=[2, 2, 2, 2], dilations=[2, 2]),
    h.make_node("Add", ["c2", "a"], ["s2"], name="res1"),
    h.make_node("Relu", ["s2"], ["c"], name="relu2"),
    h.make_node("Conv", ["c", "W3", "B3"], ["c3"], name="dw_s2", pads=[1, 1, 1, 1], strides=[2, 2], group=16),
    h.make_node("Clip", ["c3", "lo", "hi"], ["d"], name="relu6"),
    h.make_node("Conv", ["d", "W4", "B4"], ["e"], name="pw"),
    h.make_node("Conv", ["e", "W5", "B5"], ["c5"], name="conv5_asym", pads=[1, 0, 2, 1]),
    h.make_node("Relu", ["c5"], ["f"], name="relu5"),
    h.make_node("Conv", ["f", "W6"], ["g"], name="conv6"),
    h.make_node("Add", ["g", "f"], ["y"], name="res2"),
]
inits += [nh.from_array(np.array(0, np.float32), "lo"), nh.from_array(np.array(6, np.float32), "hi")]
g = h.make_graph(n, "chain", [h.make_tensor_value_info("x", T.FLOAT, ["batch", 8, 23, 29])],
                 [h.make_tensor_value_info("y", T.FLOAT, ["batch", 24, 13, 14])], inits)
m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
onnx.checker.check_model(m)
onnx.save(m, sys.argv[1])
PYEOF
"$PY" "$TMP/gen_chain.py" "$Z/chain.onnx" 0 && "$PY" "$TMP/gen_chain.py" "$Z/chain_sp.onnx" 0.9 ||
    fail "making the chain models"
if PILLAR_COLUMN_ROWS=4 expect_ok inspect "$Z/chain_sp.onnx" --schedule columns --batch 1; then
    # the planner may cut the six layers into several chains; all six run as columns,
    # with the forced 4-row tiles
    expect_out "chain 0: conv1 .. "
    if ! grep -Eq "^chain [0-9]+: .* \.\. conv6 \([0-9]+ layers, .* -> 24x13x14\), tile 4 rows, 4 tiles per image" "$OUT" ||
        grep -q "not used" "$OUT"; then
        fail "chain_sp: the six layers do not all run as columns with 4-row tiles:"
        sed 's/^/    /' "$OUT" | head -8
    fi
fi
PILLAR_SCHEDULE=columns PILLAR_SPARSE=1 expect_ok inspect "$Z/chain_sp.onnx" --batch 1 &&
    for n in conv1 conv2_dil2 dw_s2 pw conv5_asym conv6; do
        grep -Eq "^ +[0-9]+ +$n +Conv +[a-z0-9 ]+\(column [0-9]+\)" "$OUT" || fail "chain_sp: $n does not run as columns"
    done
pairs="$TMP/pairs"
: >"$pairs"
k=0
# chain_case MODEL BATCH ROWS SPARSE [ISA]: outputs under both schedules, listed in $pairs
chain_case() {
    local f=$1 n=$2 rows=$3 sp=$4 isa=${5:-} d env
    k=$((k + 1))
    d="$TMP/chain$k"
    env=(PILLAR_SPARSE=$sp)
    [ -n "$isa" ] && env+=(PILLAR_ISA=$isa)
    [ -n "$rows" ] && env+=(PILLAR_COLUMN_ROWS=$rows)
    env "${env[@]}" PILLAR_SCHEDULE=layers "$PILLAR" run "$Z/$f.onnx" --shape "x=${n}x8x23x29" \
        --seed $k --output "$d.l" >/dev/null 2>"$ERR" &&
        env "${env[@]}" PILLAR_SCHEDULE=columns "$PILLAR" run "$Z/$f.onnx" --shape "x=${n}x8x23x29" \
            --seed $k --output "$d.c" >/dev/null 2>>"$ERR" ||
        { fail "chain $f batch $n rows ${rows:-auto} sparse $sp ${isa}: $(head -2 "$ERR")"; return; }
    if grep -qE "Sanitizer|runtime error:" "$ERR"; then
        fail "chain $f batch $n rows ${rows:-auto} sparse $sp ${isa}: sanitizer report: $(head -3 "$ERR")"
        return
    fi
    echo "$d.c/y.npy $d.l/y.npy $f,batch=$n,rows=${rows:-planner},sparse=$sp${isa:+,isa=$isa}" >>"$pairs"
}
for f in chain chain_sp; do
    for sp in 0 1; do
        for rows in "" 1 4; do chain_case $f 3 "$rows" $sp; done
        chain_case $f 1 "" $sp
    done
done
for isa in avx2 ref; do chain_case chain_sp 2 "" 1 $isa; chain_case chain 2 1 0 $isa; done
CHECKS=$((CHECKS + k))
py_check "chain: columns = layers in $(wc -l <"$pairs") cases" -c '
import sys, numpy as np
bad = []
worst = 0.0
for line in open(sys.argv[1]):
    c, l, what = line.split()
    a, b = np.load(c), np.load(l)
    if a.shape != b.shape: bad.append("%s: shape %s vs %s" % (what, a.shape, b.shape)); continue
    err = float(np.abs(a.astype(np.float64) - b).max()) / max(float(np.abs(b).max()), 1e-30)
    worst = max(worst, err)
    if not err <= 1e-5: bad.append("%s: max rel error %g" % (what, err))
if bad: sys.exit("; ".join(bad))
print("worst max rel error %.3g" % worst)
' "$pairs"

# inspect: the report's first line names the request; --schedule=WORD and the
# environment variable both set it; the plain report mentions the schedule line
f="$Z/resnet50_224x224.s90.onnx"
S1=(--shape input=1x3x224x224)
if expect_ok inspect "$f" --schedule=layers "${S1[@]}"; then
    expect_out "schedule: layers (requested layers)"
    expect_out "total bytes per inference"
fi
if PILLAR_SCHEDULE=columns expect_ok inspect --schedule "$f" --batch 2 --threads 1; then
    expect_out "(requested columns)"
fi
if expect_ok inspect "$f" "${S1[@]}"; then
    expect_out "(details: --schedule)"
fi
if expect_ok inspect "$f" --schedule --json "${S1[@]}"; then
    py_check "inspect --json schedule keys" -c '
import json, sys
j = json.load(open(sys.argv[1]))
if j.get("schedule") not in ("layers", "columns"): sys.exit("schedule %r" % j.get("schedule"))
if not j.get("schedule_report", "").startswith("schedule: "): sys.exit("schedule_report %r" % j.get("schedule_report"))
' "$OUT"
fi

# bench: the JSON line says what was asked for and what ran
FAST=(--time 0 --warmup 0 --threads 1 --json)
for s in layers columns auto; do
    if expect_ok bench "$f" --schedule "$s" "${FAST[@]}"; then
        expect_out "schedule: "
        tail -1 "$OUT" >"$TMP/j"
        py_check "bench --schedule $s json" -c '
import json, sys
r = json.load(open(sys.argv[1]))
want = sys.argv[2]
if r.get("schedule_requested") != want: sys.exit("schedule_requested %r" % r.get("schedule_requested"))
if r.get("schedule") not in ("layers", "columns"): sys.exit("schedule %r" % r.get("schedule"))
if want != "auto" and r["schedule"] != want: sys.exit("asked %s, ran %s" % (want, r["schedule"]))
if r["runs"] != 1: sys.exit("runs %r" % r["runs"])
' "$TMP/j" "$s"
    fi
done
# --iterations: exactly N timed runs
expect_ok bench "$f" --schedule columns --iterations 3 --warmup 0 --threads 1 --json &&
    expect_out '"runs": 3,'
# --verbose still lists the layers under columns
if expect_ok bench "$f" --schedule columns --time 0 --warmup 0 --threads 1 --verbose; then
    expect_out "layers ("
    expect_out "/layer1/0/conv1/Conv"
fi

# bad values: one line, usage exit code
expect_fail 1 "--schedule|'tiles'|layers, columns or auto" bench "$f" --schedule tiles
expect_fail 1 "--schedule|'tiles'|layers, columns or auto" run "$f" --schedule tiles
expect_fail 1 "--schedule|needs a value" bench "$f" --schedule
expect_fail 1 "--schedule|'Columns'" inspect "$f" --schedule=Columns
expect_fail 1 "--iterations|'0'" bench "$f" --iterations 0
expect_fail 1 "--batch|'x'" inspect "$f" --batch x

# Python: Session(..., schedule=) (not under the sanitizers: the interpreter would need
# the ASan runtime preloaded)
lib="${PILLAR_BUILD_DIR:-$(dirname "$PILLAR")}/libpillar.so"
# (ldd's whole output is read first: `grep -q` would quit early, and under pipefail
# ldd's SIGPIPE would then make a sanitized library look unsanitized)
lib_deps=$(ldd "$lib" 2>/dev/null || true)
if [ -f "$lib" ] && [[ "$lib_deps" != *libasan* ]]; then
    PILLAR_LIB="$lib" py_check "python Session(schedule=)" -c '
import sys
sys.path.insert(0, sys.argv[2] + "/python")
import numpy as np, pillar
x = np.random.default_rng(5).random((1, 3, 97, 131), dtype=np.float32)
out = {}
for s in ("layers", "columns"):
    sess = pillar.Session(sys.argv[1], threads=2, schedule=s, shapes={"input": x.shape})
    if sess.schedule != s: sys.exit("schedule=%s: the session ran %s" % (s, sess.schedule))
    if "(requested %s)" % s not in sess.schedule_report: sys.exit("report %r" % sess.schedule_report[:200])
    out[s] = sess.run(None, {"input": x})[0]
err = float(np.abs(out["columns"] - out["layers"]).max()) / float(np.abs(out["layers"]).max())
if not err <= 1e-5: sys.exit("columns vs layers: max rel error %g" % err)
try:
    pillar.Session(sys.argv[1], schedule="rows")
    sys.exit("schedule=rows accepted")
except pillar.ArgumentError as e:
    if "rows" not in str(e): sys.exit("message %r" % str(e))
print("max rel error %.3g" % err)
' "$Z/mobilenet_v2_97x131.s90.onnx" "$SRC"
fi

finish
