#!/usr/bin/env bash
# `pillar bench`: the --json line has every key with sane values (no timing thresholds),
# --batch on symbolic and fixed leading dimensions, integer inputs, built-in zoo models,
# --verbose, and the usage / model / input errors with their exit codes.
source "$(dirname "$0")/lib.bash"

"$PY" "$SRC/tests/data/make_models.py" "$TMP/m" >/dev/null || { echo "FAIL: make_models.py"; exit 1; }
M="$TMP/m"
FAST=(--time 0.2 --warmup 0.05)

# check_json KEY=VALUE... : the last stdout line is a JSON object with every required key,
# positive timings in order, and the given exact values.
check_json() {
    tail -1 "$OUT" >"$TMP/last.json"
    py_check "bench --json last line" -c '
import json, sys
r = json.load(open(sys.argv[1]))
keys = ["model", "batch", "threads", "isa", "mean_ms", "median_ms", "p90_ms", "p99_ms",
        "items_per_s", "peak_rss_mb", "min_ms", "max_ms", "runs", "arena_bytes", "macs",
        "schedule", "schedule_requested", "cpu_ms"]
missing = [k for k in keys if k not in r]
if missing: sys.exit("missing keys %s" % missing)
if r["isa"] not in ("ref", "avx2", "avx512"): sys.exit("isa %r" % r["isa"])
if r["schedule"] not in ("layers", "columns"): sys.exit("schedule %r" % r["schedule"])
if not r["cpu_ms"] >= 0: sys.exit("cpu_ms %r" % r["cpu_ms"])
if r["schedule_requested"] not in ("layers", "columns", "auto"): sys.exit("schedule_requested %r" % r["schedule_requested"])
if not (r["median_ms"] > 0 and r["mean_ms"] > 0 and r["items_per_s"] > 0): sys.exit("timings %r" % r)
if not (r["min_ms"] <= r["median_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"]): sys.exit("order %r" % r)
if not (r["min_ms"] <= r["mean_ms"] <= r["max_ms"]): sys.exit("mean outside min..max %r" % r)
if not (r["runs"] >= 1 and r["threads"] >= 1 and r["peak_rss_mb"] > 1): sys.exit("counts %r" % r)
want_items = r["batch"] * 1000.0 / r["mean_ms"]
if abs(r["items_per_s"] - want_items) > 1e-3 * want_items + 1e-3: sys.exit("items_per_s %r != batch/mean" % r["items_per_s"])
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1)
    if str(r[k]) != v: sys.exit("%s = %r, expected %s" % (k, r[k], v))
print("median %.4f ms over %d runs" % (r["median_ms"], r["runs"]))
' "$TMP/last.json" "$@"
}

# a static model: batch 1, explicit threads
if expect_ok bench "$M/cnn.onnx" "${FAST[@]}" --threads 1 --json; then
    expect_out "latency ms: mean"
    expect_out "items/s"
    expect_out "peak RSS"
    check_json batch=1 threads=1 "model=$M/cnn.onnx" macs=$((4 * 8 * 8 * 27 + 2560))
fi
# without --json: no JSON line, the same report
if expect_ok bench "$M/cnn.onnx" "${FAST[@]}"; then
    expect_out "isa: "
    if grep -q '^{' "$OUT"; then fail "bench without --json printed JSON"; fi
fi
# symbolic batch: --batch sets it; --dim does too; default 1
expect_ok bench "$M/dynamic.onnx" "${FAST[@]}" --batch 3 --json && check_json batch=3
expect_ok bench "$M/dynamic.onnx" "${FAST[@]}" --dim batch=5 --json && check_json batch=5
expect_ok bench "$M/dynamic.onnx" "${FAST[@]}" --json && check_json batch=1
expect_ok bench "$M/dynamic.onnx" "${FAST[@]}" --shape X=2x4 --json && check_json batch=2
# a fixed batch equal to --batch is fine; integer inputs get random integers
expect_ok bench "$M/cnn.onnx" "${FAST[@]}" --batch 1 --json && check_json batch=1
expect_ok bench "$M/int_add.onnx" "${FAST[@]}" --json && check_json batch=4
# --time 0 and --warmup 0: exactly one run of each
expect_ok bench "$M/cnn.onnx" --time 0 --warmup 0 --json && check_json runs=1
# --verbose lists the planned layers with their kernel and time: the columns are there,
# the conv names its kernel, times are non-negative and add up to the total line, which
# is at most the mean latency of a run
if expect_ok bench "$M/cnn.onnx" "${FAST[@]}" --threads 1 --verbose; then
    expect_out "conv1"
    expect_out "fc1"
    cp "$OUT" "$TMP/verbose.txt"
    py_check "bench --verbose layer table" -c '
import re, sys
lines = open(sys.argv[1]).read().splitlines()
h = [i for i, l in enumerate(lines) if l.split()[:2] == ["#", "name"]]
if len(h) != 1: sys.exit("no header line")
cols = lines[h[0]].split()
want = ["#", "name", "op", "kernel", "output", "sparsity", "MACs", "ms", "%"]
if cols != want: sys.exit("columns %r, expected %r" % (cols, want))
rows, total = [], None
for l in lines[h[0] + 1:]:
    f = l.split()
    if f and f[0] == "total": total = f; break
    if not f or not f[0].isdigit(): sys.exit("unexpected line %r" % l)
    rows.append(f)
if not rows or total is None: sys.exit("no rows or no total line")
ops = {r[2]: r for r in rows}
if "Conv" not in ops: sys.exit("no Conv row")
if ops["Conv"][3] == "-" or not ops["Conv"][3]: sys.exit("Conv without a kernel name: %r" % ops["Conv"])
ms = [float(r[7]) for r in rows]
pc = [float(r[8]) for r in rows]
if min(ms) < 0 or min(pc) < 0: sys.exit("negative time %r" % ms)
tot_ms = float(total[2])
if abs(sum(ms) - tot_ms) > 1e-3 + 1e-3 * tot_ms: sys.exit("rows sum to %g, total says %g" % (sum(ms), tot_ms))
if abs(sum(pc) - 100) > 0.1 * len(pc): sys.exit("shares sum to %g%%" % sum(pc))
if int(total[1]) != sum(int(r[6]) for r in rows): sys.exit("total MACs is not the sum")
m = re.search(r"a run took ([0-9.]+) ms on average", open(sys.argv[1]).read())
if not m or float(m.group(1)) + 1e-3 < tot_ms: sys.exit("layers %g ms exceed the run mean %s" % (tot_ms, m and m.group(1)))
print("%d layers, %.4f ms" % (len(rows), tot_ms))
' "$TMP/verbose.txt"
fi
# a built-in model, at a small image size
expect_ok bench zoo:mobilenet_v2 --shape input=1x3x32x32 --time 0 --warmup 0 --json &&
    check_json batch=1 model=zoo:mobilenet_v2
expect_ok bench zoo:resnet50 --shape input=2x3x16x16 --time 0 --warmup 0 --json &&
    check_json batch=2 model=zoo:resnet50

# help
expect_ok bench --help && expect_out "usage: pillar bench"
expect_ok help bench && expect_out "--warmup SECONDS"

# usage errors (exit 1)
expect_fail 1 "--time|not a number" bench "$M/cnn.onnx" --time abc
expect_fail 1 "--time" bench "$M/cnn.onnx" --time -1
expect_fail 1 "--warmup" bench "$M/cnn.onnx" --warmup 1e9
expect_fail 1 "--batch|positive" bench "$M/cnn.onnx" --batch 0
expect_fail 1 "--threads" bench "$M/cnn.onnx" --threads many
expect_fail 1 "unknown option '--fast'" bench "$M/cnn.onnx" --fast
expect_fail 1 "--json takes no value" bench "$M/cnn.onnx" --json=yes
expect_fail 1 "unexpected argument" bench "$M/cnn.onnx" "$M/add.onnx"
expect_fail 1 "--time needs a value" bench "$M/cnn.onnx" --time
expect_fail 1 "--schedule: 'rows' is not layers, columns or auto" bench "$M/cnn.onnx" --schedule rows
expect_fail 1 "--iterations|integer from 1" bench "$M/cnn.onnx" --iterations -2
# model errors (exit 2)
expect_fail 2 "no-such.onnx" bench "$TMP/no-such.onnx" --time 0
expect_fail 2 "unknown architecture 'nope'" bench zoo:nope --time 0
# input errors (exit 3)
expect_fail 3 "--batch 2|fixed leading dimension of 1" bench "$M/cnn.onnx" --batch 2 --time 0
expect_fail 3 "--batch 3|--dim batch=2" bench "$M/dynamic.onnx" --batch 3 --dim batch=2 --time 0
expect_fail 3 "--batch 3|--shape X=2x4" bench "$M/dynamic.onnx" --batch 3 --shape X=2x4 --time 0
expect_fail 3 "NxCxHxW" bench zoo:resnet50 --shape input=3x32x32 --time 0
expect_fail 3 "input H = 0" bench zoo:resnet50 --shape input=1x3x0x8 --time 0
expect_fail 3 "no input named 'y'" bench "$M/cnn.onnx" --shape y=1x3x8x8 --time 0

# --schedule: the JSON line says what was asked for and what ran (the small CNN has no
# chain of layers to run as columns, so it runs layer by layer whatever is asked);
# --iterations gives an exact count of timed runs; PILLAR_SCHEDULE is the default
expect_ok bench "$M/cnn.onnx" --schedule columns --iterations 4 --warmup 0 --json &&
    check_json schedule_requested=columns schedule=layers runs=4
expect_ok bench "$M/cnn.onnx" --schedule=layers --time 0 --warmup 0 --json &&
    check_json schedule_requested=layers schedule=layers
PILLAR_SCHEDULE=columns expect_ok bench "$M/cnn.onnx" --time 0 --warmup 0 --json &&
    check_json schedule_requested=columns
expect_ok bench "$M/cnn.onnx" --schedule auto --time 0 --warmup 0 &&
    expect_out "schedule: layers (requested auto)"

finish
