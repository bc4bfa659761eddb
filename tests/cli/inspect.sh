#!/usr/bin/env bash
# `pillar inspect` on small generated models: inputs/outputs with symbolic dims, the
# per-node table, MAC and weight counts computed by hand, and valid --json.
source "$(dirname "$0")/lib.bash"

"$PY" "$SRC/tests/data/make_models.py" "$TMP/m" >/dev/null || { echo "FAIL: make_models.py"; exit 1; }
M="$TMP/m"

# text output of the CNN (Conv + Relu + Flatten + Gemm)
if expect_ok inspect "$M/cnn.onnx"; then
    expect_out "model: $M/cnn.onnx"
    expect_out "inputs:"
    expect_out "1x3x8x8"
    expect_out "outputs:"
    expect_out "1x10"
    expect_out "conv1"
    expect_out "Conv"
    expect_out "fc1"
    expect_out "Gemm"
    expect_out "totals:"
    expect_out "arena:"
    # the kernel column: the conv names the fast kernel prepare() chose
    if ! grep -Eq "^ +#  +name +op +kernel +output" "$OUT"; then fail "inspect: no kernel column"; fi
    if grep -E "^ +[0-9]+ +conv1 +Conv +- " "$OUT" >/dev/null; then fail "inspect: conv1 has no kernel name"; fi
fi

# JSON: the numbers, checked against counts made by make_models.py
read -r expect <"$M/cnn.expect"
if expect_ok inspect "$M/cnn.onnx" --json; then
    cp "$OUT" "$TMP/cnn.json"
    py_check "inspect --json cnn numbers" -c '
import json, sys
j = json.load(open(sys.argv[1]))
e = dict(kv.split("=") for kv in sys.argv[2].split())
e = {k: int(v) for k, v in e.items()}
def fail(msg): sys.exit(msg)
ins, outs = j["inputs"], j["outputs"]
if [(i["name"], i["dtype"], i["shape"]) for i in ins] != [("X", "float32", [1, 3, 8, 8])]: fail("inputs %r" % ins)
if [(o["name"], o["dtype"], o["shape"]) for o in outs] != [("Y", "float32", [1, 10])]: fail("outputs %r" % outs)
nodes = {n["op"]: n for n in j["nodes"]}
for op in ("Conv", "Gemm"):
    if op not in nodes: fail("no %s node in %r" % (op, [n["op"] for n in j["nodes"]]))
conv, gemm = nodes["Conv"], nodes["Gemm"]
if conv["macs"] != e["conv_macs"]: fail("Conv macs %d, expected %d" % (conv["macs"], e["conv_macs"]))
if gemm["macs"] != e["gemm_macs"]: fail("Gemm macs %d, expected %d" % (gemm["macs"], e["gemm_macs"]))
if conv["shape"] != [1, 4, 8, 8]: fail("Conv shape %r" % conv["shape"])
if gemm["shape"] != [1, 10]: fail("Gemm shape %r" % gemm["shape"])
# weights: the weight tensor, with or without the bias
if conv["params"] not in (e["conv_weights"], e["conv_weights"] + 4): fail("Conv params %d" % conv["params"])
if gemm["params"] not in (e["gemm_weights"], e["gemm_weights"] + 10): fail("Gemm params %d" % gemm["params"])
want_sp = e["conv_zero"] / conv["params"]
if abs(conv["sparsity"] - want_sp) > 1e-3: fail("Conv sparsity %g, expected %g" % (conv["sparsity"], want_sp))
if gemm["sparsity"] > 0.01: fail("Gemm sparsity %g, expected 0" % gemm["sparsity"])
if not all(isinstance(n.get("kernel"), str) for n in j["nodes"]): fail("a node without a kernel string")
if not conv["kernel"]: fail("Conv kernel is empty")
t = j["totals"]
if t["nodes"] != len(j["nodes"]): fail("totals.nodes %d != %d nodes" % (t["nodes"], len(j["nodes"])))
if t["macs"] != sum(n["macs"] for n in j["nodes"]): fail("totals.macs is not the sum")
if t["params"] != sum(n["params"] for n in j["nodes"]): fail("totals.params is not the sum")
if abs(t["gmacs"] - t["macs"] / 1e9) > 1e-6: fail("gmacs")
if not isinstance(j["arena_bytes"], int) or j["arena_bytes"] < 0: fail("arena_bytes %r" % j["arena_bytes"])
print("macs %d, params %d" % (t["macs"], t["params"]))
' "$TMP/cnn.json" "$expect"
fi

# symbolic dimensions are shown by name, and fixed by --shape / --dim
if expect_ok inspect "$M/dynamic.onnx"; then
    expect_out "batchx4"
fi
if expect_ok inspect "$M/dynamic.onnx" --json; then
    cp "$OUT" "$TMP/dyn.json"
    py_check "inspect --json symbolic dim" -c '
import json, sys
j = json.load(open(sys.argv[1]))
s = j["inputs"][0]["shape"]
if s != ["batch", 4]: sys.exit("input shape %r, expected [\"batch\", 4]" % s)
o = j["outputs"][0]["shape"]
if len(o) != 2 or o[1] != 4: sys.exit("output shape %r, expected [?, 4]" % o)
ops = [n["op"] for n in j["nodes"]]
# a session whose input shapes are open may list its nodes now or only after planning
if ops not in (["Relu"], []): sys.exit("nodes %r, expected [\"Relu\"] or none" % ops)
' "$TMP/dyn.json"
fi
if expect_ok inspect "$M/dynamic.onnx" --shape X=3x4; then
    expect_out "3x4"
fi
if expect_ok inspect "$M/dynamic.onnx" --dim batch=5 --json; then
    cp "$OUT" "$TMP/dyn5.json"
    py_check "inspect --dim batch=5" -c '
import json, sys
j = json.load(open(sys.argv[1]))
if j["inputs"][0]["shape"] != [5, 4]: sys.exit("input shape %r" % j["inputs"][0]["shape"])
if j["outputs"][0]["shape"] != [5, 4]: sys.exit("output shape %r" % j["outputs"][0]["shape"])
' "$TMP/dyn5.json"
fi

# names that need JSON escaping
if expect_ok inspect "$M/names.onnx" --json; then
    cp "$OUT" "$TMP/names.json"
    py_check "inspect --json escaping" -c '
import json, sys
j = json.load(open(sys.argv[1]))
names = [o["name"] for o in j["outputs"]]
if names != ["out/1:0", "../evil"]: sys.exit("outputs %r" % names)
' "$TMP/names.json"
fi

# every model of make_models.py inspects cleanly, in text and JSON
for f in "$M"/identity_*.onnx "$M/add.onnx" "$M/int_add.onnx"; do
    expect_ok inspect "$f" >/dev/null
    if expect_ok inspect "$f" --json >/dev/null; then
        "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$OUT" 2>/dev/null ||
            fail "inspect $f --json: not valid JSON"
    fi
done

# --schedule: the planner's report (this CNN has a single Conv: no chain to run as
# columns); the JSON has the schedule and its report; bad values are usage errors
if expect_ok inspect "$M/cnn.onnx" --schedule columns --threads 1; then
    expect_out "model: $M/cnn.onnx"
    expect_out "schedule: layers (requested columns), L2 "
    expect_out "total bytes per inference: layers "
fi
if expect_ok inspect --schedule "$M/cnn.onnx"; then
    expect_out "(requested "
    if grep -q "^nodes:" "$OUT"; then fail "inspect --schedule printed the node table"; fi
fi
if expect_ok inspect "$M/cnn.onnx" --json --schedule=layers; then
    py_check "inspect --json schedule" -c '
import json, sys
j = json.load(open(sys.argv[1]))
if j["schedule"] != "layers": sys.exit("schedule %r" % j["schedule"])
if not j["schedule_report"].startswith("schedule: layers (requested layers)"): sys.exit("report %r" % j["schedule_report"])
' "$OUT"
fi
expect_ok inspect "$M/dynamic.onnx" --batch 3 && expect_out "3x4"
expect_fail 1 "--schedule: 'bands' is not layers, columns or auto" inspect "$M/cnn.onnx" --schedule=bands
expect_fail 1 "--batch|positive" inspect "$M/cnn.onnx" --batch 0
expect_fail 3 "--batch 2|fixed leading dimension" inspect "$M/cnn.onnx" --batch 2

finish
