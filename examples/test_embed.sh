#!/usr/bin/env bash
# Builds examples/embed.c with examples/Makefile against a build tree and runs it on a
# small classifier (tests/serve/make_models.py's cnn.onnx, 10 classes): it must print
# five ranked classes with non-increasing scores, the same as the Python package gives.
# Env: PILLAR_BUILD_DIR (default build/).
set -uo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(realpath "${PILLAR_BUILD_DIR:-$SRC/build}")"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pillar-embed.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; echo "test_embed: 0 passed, 1 failed"; exit 1; }
/usr/bin/python3 "$SRC/tests/serve/make_models.py" "$TMP" >/dev/null || fail "make_models.py"
cp "$SRC/examples/embed.c" "$SRC/examples/Makefile" "$TMP/" || fail "copy"
make -s -C "$TMP" PILLAR_BUILD="$BUILD" CFLAGS="-O2 -I$SRC/include" >"$TMP/make.log" 2>&1 || fail "build: $(cat "$TMP/make.log")"
/usr/bin/python3 -c '
import numpy as np, sys
np.save(sys.argv[1], np.random.default_rng(5).standard_normal((1, 3, 16, 16)).astype(np.float32))' "$TMP/x.npy"
"$TMP/embed" "$TMP/cnn.onnx" "$TMP/x.npy" >"$TMP/out" 2>&1 || fail "embed exited $?: $(cat "$TMP/out")"
cat "$TMP/out"
/usr/bin/python3 - "$TMP/out" "$SRC" "$BUILD" "$TMP" <<'PYEOF' || fail "output check"
import os, re, sys
out, src, build, tmp = sys.argv[1:5]
rows = [re.match(r"(\d)\. class (\d+)  score (\S+)$", l) for l in open(out).read().splitlines()]
assert len(rows) == 5 and all(rows), "expected 5 ranked lines"
scores = [float(r.group(3)) for r in rows]
assert scores == sorted(scores, reverse=True), scores
os.environ.setdefault("PILLAR_LIB", os.path.join(build, "libpillar.so"))
sys.path.insert(0, os.path.join(src, "python"))
import numpy as np, pillar
(y,) = pillar.Session(os.path.join(tmp, "cnn.onnx")).run(None, {"x": np.load(os.path.join(tmp, "x.npy"))})
top = [int(i) for i in np.argsort(-y[0], kind="stable")[:5]]
assert [int(r.group(2)) for r in rows] == top, (rows, top)
PYEOF
# without an image: a blank one
"$TMP/embed" "$TMP/cnn.onnx" | grep -q '^5\. class' || fail "embed without an image"
"$TMP/embed" 2>/dev/null && fail "embed without arguments should fail"
echo "test_embed: 1 passed, 0 failed"
