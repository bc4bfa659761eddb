#!/usr/bin/env bash
# Hostile and broken inputs: every case must fail with the documented exit code (2 model
# problem, 3 input problem, 4 other) and a one-line message that names the problem,
# without a crash, a sanitizer report or a leak. Files come from
# tests/data/make_bad_models.py.
source "$(dirname "$0")/lib.bash"

"$PY" "$SRC/tests/data/make_bad_models.py" "$TMP/b" >/dev/null || { echo "FAIL: make_bad_models.py"; exit 1; }
B="$TMP/b"

# ---- model files: exit 2, from both commands
for cmd in inspect run; do
    expect_fail 2 "truncated.onnx" $cmd "$B/truncated.onnx"
    expect_fail 2 "random.onnx" $cmd "$B/random.onnx"
    expect_fail 2 "empty.onnx" $cmd "$B/empty.onnx"
    expect_fail 2 "no_such_model.onnx" $cmd "$B/no_such_model.onnx"
    expect_fail 2 "$B|director" $cmd "$B" # a directory
    expect_fail 2 "W_missing" $cmd "$B/missing_init.onnx"
    expect_fail 2 "ghost" $cmd "$B/dangling.onnx"
    expect_fail 2 "cycle" $cmd "$B/cycle.onnx"
    expect_fail 2 "FooBarOp|mystery_node" $cmd "$B/unknown_op.onnx"
    expect_fail 2 "auto_pad|BOGUS_PAD|conv_bad" $cmd "$B/bad_attr.onnx"
    expect_fail 2 "mode|lanczos|resize_bad" $cmd "$B/bad_attr_mode.onnx"
    expect_fail 2 "overflow" $cmd "$B/overflow_input.onnx"
    expect_fail 2 "huge|overflow" $cmd "$B/overflow_init.onnx"
    expect_fail 2 "conv_rank" $cmd "$B/bad_rank.onnx"
done

# ---- input files: exit 3 (good.onnx takes A, B: float32 [2,3])
G="$B/good.onnx"
expect_ok run "$G" --input A="$B/a.npy" --input B="$B/b.npy"
expect_fail 3 "f64.npy|float64|float32" run "$G" --input A="$B/f64.npy"
expect_fail 3 "shape32.npy|3x2|2x3" run "$G" --input A="$B/shape32.npy"
expect_fail 3 "size4.npy|2x3" run "$G" --input A="$B/size4.npy"
expect_fail 3 "truncated.npy|truncated" run "$G" --input A="$B/truncated.npy"
expect_fail 3 "garbage.npy|not a .npy" run "$G" --input A="$B/garbage.npy"
expect_fail 3 "fortran.npy|Fortran" run "$G" --input A="$B/fortran.npy"
expect_fail 3 "bad_header.npy|malformed" run "$G" --input A="$B/bad_header.npy"
expect_fail 3 "huge_shape.npy|overflow" run "$G" --input A="$B/huge_shape.npy"
expect_fail 3 "empty.onnx|empty" run "$G" --input A="$B/empty.onnx"
expect_fail 3 "nofile.npy" run "$G" --input A="$B/nofile.npy"
expect_fail 3 "input 'A'|$B" run "$G" --input A="$B" # a directory
expect_fail 3 "no input named 'Z'" run "$G" --input Z="$B/a.npy"

# ---- every truncation of a valid .npy, and random header corruptions: never a crash;
# a failure is one line; a truncated file is always exit 3
"$PY" -c '
import sys, random
src, out = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
for n in range(len(data)):
    open("%s/cut_%03d.npy" % (out, n), "wb").write(data[:n])
rnd = random.Random(5)
for k in range(60):
    b = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        b[rnd.randrange(0, 128)] = rnd.choice([0, 0x20, 0x27, 0x28, 0x29, 0x2c, 0x3a, 0x7b, 0x7d, 0xff,
                                              ord("9"), ord("-"), rnd.randrange(256)])
    open("%s/mut_%03d.npy" % (out, k), "wb").write(bytes(b))
' "$B/a.npy" "$B"
cut_bad=0
for f in "$B"/cut_*.npy; do
    run run "$G" --input A="$f" || { cut_bad=1; continue; }
    if [ $RC -ne 3 ] || [ "$(wc -l <"$ERR")" -ne 1 ]; then
        fail "truncated .npy $(basename "$f"): exit $RC, stderr: $(head -3 "$ERR")"
        cut_bad=1
    fi
done
[ $cut_bad -eq 0 ] && echo "ok: every truncation of a.npy is rejected with exit 3"
mut_bad=0
for f in "$B"/mut_*.npy; do
    run run "$G" --input A="$f" --input B="$B/b.npy" || { mut_bad=1; continue; }
    if [ $RC -ne 0 ] && [ "$(wc -l <"$ERR")" -ne 1 ]; then
        fail "corrupted .npy $(basename "$f"): exit $RC with $(wc -l <"$ERR") lines on stderr"
        mut_bad=1
    fi
done
[ $mut_bad -eq 0 ] && echo "ok: 60 corrupted .npy headers handled without a crash"

# ---- shapes: exit 3
D="$B/dynamic.onnx" # X[batch,4]
expect_fail 3 "'X'|'batch'|--shape" run "$D"
expect_fail 3 "3 dimensions given" run "$D" --shape X=2x4x1
expect_fail 3 "dimension 1 is 5" run "$D" --shape X=2x5
expect_fail 3 "dimension 0 is 4" run "$G" --shape A=4x3
expect_fail 3 "no input named 'Q'" run "$G" --shape Q=1
expect_fail 3 "no input named 'Q'" inspect "$G" --shape Q=1
expect_fail 3 "3 dimensions given" inspect "$D" --shape X=1x2x3
expect_fail 3 "named 'nosuch'" run "$D" --dim nosuch=3
expect_fail 3 "overflow" run "$D" --dim batch=4611686018427387904
expect_fail 3 "would take 14.9 GiB" run "$D" --dim batch=1000000000
expect_fail 3 "disagrees" run "$D" --input X="$B/dyn24.npy" --shape X=3x4

# ---- outputs that cannot be written: exit 4
touch "$TMP/plainfile"
expect_fail 4 "not a directory" run "$G" --output "$TMP/plainfile"

finish
