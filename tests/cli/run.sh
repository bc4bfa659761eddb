#!/usr/bin/env bash
# `pillar run` on small generated models, outputs compared with numpy: exact for Add
# and int64 Add, bit-exact .npy round trips for every .npy type, 1e-5 for a small CNN;
# random inputs (seeded), symbolic dims through --shape / --dim / --input, output file
# names.
source "$(dirname "$0")/lib.bash"

"$PY" "$SRC/tests/data/make_models.py" "$TMP/m" >/dev/null || { echo "FAIL: make_models.py"; exit 1; }
M="$TMP/m"
O="$TMP/out"

# compare FILE EXPECTED_FILE [rtol]: same dtype and shape; exact unless rtol given
compare() {
    py_check "$(basename "$1") vs $(basename "$2")" -c '
import sys, numpy as np
got, want = np.load(sys.argv[1]), np.load(sys.argv[2])
rtol = float(sys.argv[3]) if len(sys.argv) > 3 else None
if got.dtype != want.dtype: sys.exit("dtype %s, expected %s" % (got.dtype, want.dtype))
if got.shape != want.shape: sys.exit("shape %s, expected %s" % (got.shape, want.shape))
if rtol is None:
    if got.tobytes() != want.tobytes():
        sys.exit("values differ: got %r, expected %r" % (got.ravel()[:8], want.ravel()[:8]))
else:
    scale = max(float(np.abs(want).max()), 1e-30)
    err = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()) / scale
    if not err <= rtol: sys.exit("max error %g of scale %g > %g" % (err, scale, rtol))
    print("max rel error %.3g" % err)
' "$@"
}

# Add of two given inputs: bit-exact with numpy
rm -rf "$O"
if expect_ok run "$M/add.onnx" --input A="$M/add_a.npy" --input B="$M/add_b.npy" --output "$O"; then
    expect_out "output 'C': float32 2x3"
    expect_out "min"
    expect_out "mean"
    compare "$O/C.npy" "$M/add_c.npy"
fi

# int64 stays exact near 2^62
rm -rf "$O"
if expect_ok run "$M/int_add.onnx" --input A="$M/int_add_a.npy" --input=B="$M/int_add_b.npy" --output="$O"; then
    expect_out "output 'C': int64 4"
    expect_out "5764607523034234886" # (2^62+1) + (2^60+5), printed exactly
    compare "$O/C.npy" "$M/int_add_c.npy"
fi

# CNN against numpy's float64 computation
for threads in 1 2; do
    rm -rf "$O"
    if expect_ok run "$M/cnn.onnx" --input X="$M/cnn_x.npy" --output "$O" --threads $threads; then
        compare "$O/Y.npy" "$M/cnn_y.npy" 1e-5
    fi
done

# .npy round trip of every type through Identity: bit-exact, dtype kept
for f in "$M"/identity_*.onnx; do
    t=$(basename "$f" .onnx)
    rm -rf "$O"
    if expect_ok run "$f" --input X="$M/$t.npy" --output "$O"; then
        compare "$O/Y.npy" "$M/$t.npy"
    fi
done

# random inputs: reproducible with --seed, in [0,1) for floats
rm -rf "$TMP/r1" "$TMP/r2" "$TMP/r3"
expect_ok run "$M/dynamic.onnx" --shape X=3x4 --seed 7 --output "$TMP/r1" && expect_out "input 'X': random float32 3x4"
expect_ok run "$M/dynamic.onnx" --shape X=3x4 --seed 7 --output "$TMP/r2"
expect_ok run "$M/dynamic.onnx" --shape X=3x4 --seed 8 --output "$TMP/r3"
py_check "random inputs are seeded and in [0,1)" -c '
import sys, numpy as np
a, b, c = (np.load(sys.argv[i] + "/Y.npy") for i in (1, 2, 3))
if a.shape != (3, 4) or a.dtype != np.float32: sys.exit("shape %s dtype %s" % (a.shape, a.dtype))
if not np.array_equal(a, b): sys.exit("same seed, different inputs")
if np.array_equal(a, c): sys.exit("different seeds, same inputs")
if a.min() < 0 or a.max() >= 1: sys.exit("values outside [0,1): %g..%g" % (a.min(), a.max()))
if len(np.unique(a)) < 10: sys.exit("values barely random: %r" % a)
' "$TMP/r1" "$TMP/r2" "$TMP/r3"

# symbolic dims: --dim, and the shape of an --input file
rm -rf "$O"
expect_ok run "$M/dynamic.onnx" --dim batch=5 --output "$O" && expect_out "output 'Y': float32 5x4"
"$PY" -c 'import numpy as np, sys; np.save(sys.argv[1], np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4))' "$TMP/x24.npy"
"$PY" -c 'import numpy as np, sys; np.save(sys.argv[1], np.maximum(np.load(sys.argv[2]), 0))' "$TMP/y24.npy" "$TMP/x24.npy"
rm -rf "$O"
if expect_ok run "$M/dynamic.onnx" --input X="$TMP/x24.npy" --output "$O"; then
    compare "$O/Y.npy" "$TMP/y24.npy"
fi
# zero-size batch
rm -rf "$O"
if expect_ok run "$M/dynamic.onnx" --shape X=0x4 --output "$O"; then
    expect_out "(empty)"
    py_check "empty output" -c '
import sys, numpy as np
y = np.load(sys.argv[1])
if y.shape != (0, 4) or y.dtype != np.float32: sys.exit("shape %s dtype %s" % (y.shape, y.dtype))
' "$O/Y.npy"
fi

# output names become safe file names inside DIR (same rule as bench/ort_run.js)
rm -rf "$TMP/names"
mkdir -p "$TMP/names"
if expect_ok run "$M/names.onnx" --input X="$M/names_x.npy" --output "$TMP/names/out"; then
    py_check "sanitized output files" -c '
import os, sys, numpy as np
d = sys.argv[1]
files = sorted(os.listdir(d))
if files != [".._evil.npy", "out_1_0.npy"]: sys.exit("files %r" % files)
if os.listdir(os.path.dirname(d)) != ["out"]: sys.exit("wrote outside the output dir")
if np.load(d + "/out_1_0.npy").tolist() != [0.0, 2.0]: sys.exit("relu values")
if np.load(d + "/.._evil.npy").tolist() != [1.5, -2.0]: sys.exit("neg values")
' "$TMP/names/out"
fi

# nested output directories are created; without --output nothing is written
rm -rf "$TMP/deep"
expect_ok run "$M/add.onnx" --output "$TMP/deep/a/b" && [ -f "$TMP/deep/a/b/C.npy" ] ||
    fail "nested --output directory not created"
(cd "$TMP" && mkdir -p quiet && cd quiet && "$PILLAR" run "$M/add.onnx" >/dev/null 2>&1)
[ -z "$(ls -A "$TMP/quiet")" ] || fail "run without --output wrote files"

finish
