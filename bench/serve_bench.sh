#!/usr/bin/env bash
# bench/serve_bench.sh -- throughput and latency of `pillar serve` against `pillar bench`
# on the same model and threads, measured on this machine in one run.
#
#   bench/serve_bench.sh [--model PATH] [--threads N] [--time S] [--concurrency "1 4 16"]
#                        [--max-batch B] [--batch-timeout-ms T] [--rounds R] [--json]
#
# Default model: ResNet-50 with a symbolic batch (bench/out/resnet50_dyn.onnx, exported
# by bench/models/export.py if missing). For each concurrency C, wrk keeps C closed-loop
# clients sending one-image inference requests to 127.0.0.1 for S seconds, with dynamic
# batching (--max-batch B) and without (--max-batch 1). Requests use the binary-data
# extension (as large tensors should); --json sends JSON tensors instead. Each point
# gets a warm-up of S/3 seconds and is framed by two `pillar bench` runs at batch 1 on
# the same model and threads (the machine is compared with itself even if its speed
# drifts). Prints a Markdown table: requests/s, p50/p99 latency, errors, and requests/s
# as a fraction of `pillar bench` items/s; medians over --rounds.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PILLAR="${PILLAR:-$ROOT/build/pillar}"
MODEL=""
THREADS=2
SECS=20
CONC="1 4 16"
MAXB=16
BTO=2
JSON=0
ROUNDS=1
while [ $# -gt 0 ]; do
    case "$1" in
    --model) MODEL=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --time) SECS=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --max-batch) MAXB=$2; shift 2 ;;
    --batch-timeout-ms) BTO=$2; shift 2 ;;
    --json) JSON=1; shift ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "serve_bench: unknown option '$1'" >&2; exit 1 ;;
    esac
done
for tool in wrk curl /usr/bin/python3; do
    command -v "$tool" >/dev/null || { echo "serve_bench: $tool is needed (scripts/install-deps.sh)" >&2; exit 1; }
done
[ -x "$PILLAR" ] || { echo "serve_bench: no pillar at $PILLAR (set PILLAR=)" >&2; exit 1; }
if [ -z "$MODEL" ]; then
    MODEL="$ROOT/bench/out/resnet50_dyn.onnx"
    if [ ! -f "$MODEL" ]; then
        echo "serve_bench: exporting ResNet-50 (symbolic batch) to bench/out/" >&2
        /usr/bin/python3 "$ROOT/bench/models/export.py" --models resnet50_dyn --out "$ROOT/bench/out" >&2
    fi
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pillar-serve-bench.XXXXXX")
SPID=""
cleanup() {
    for p in $SPID; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

# one request body (one image of the model's input shape, dynamic dims = 1)
/usr/bin/python3 - "$PILLAR" "$MODEL" "$TMP" "$JSON" <<'EOF'
import json, subprocess, sys
import numpy as np
pillar, model, tmp, use_json = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
info = json.loads(subprocess.run([pillar, "inspect", model, "--json"], check=True, capture_output=True,
                                 text=True).stdout)
inputs = info["inputs"]
types = {"float32": ("FP32", np.float32), "int64": ("INT64", np.int64), "int32": ("INT32", np.int32)}
reqs, blobs = [], b""
rng = np.random.default_rng(1)
for i in inputs:
    dims = [d if isinstance(d, int) and d >= 0 else 1 for d in i["shape"]]
    kt, nt = types[i["dtype"]]
    x = (rng.random(dims) if nt == np.float32 else rng.integers(0, 10, dims)).astype(nt)
    if use_json:
        reqs.append({"name": i["name"], "shape": dims, "datatype": kt, "data": x.ravel().tolist()})
    else:
        reqs.append({"name": i["name"], "shape": dims, "datatype": kt,
                     "parameters": {"binary_data_size": x.nbytes}})
        blobs += x.tobytes()
hdr = json.dumps({"inputs": reqs}).encode()
open(tmp + "/body", "wb").write(hdr + blobs)
open(tmp + "/hlen", "w").write("" if use_json else str(len(hdr)))
EOF
HLEN=$(cat "$TMP/hlen")
cat >"$TMP/post.lua" <<EOF
wrk.method = "POST"
local f = io.open("$TMP/body", "rb")
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "application/octet-stream"
if "$HLEN" ~= "" then wrk.headers["Inference-Header-Content-Length"] = "$HLEN" end
done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT %d %.3f %.2f %.2f %d\n", summary.requests, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
EOF

bench_items() { # BATCH SECONDS -> "items/s median_ms" of `pillar bench`
    "$PILLAR" bench "$MODEL" --batch "$1" --threads "$THREADS" --time "$2" --warmup 1 --json 2>/dev/null |
        tail -1 | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.3f %.3f" % (d["items_per_s"], d["median_ms"]))'
}

start() { # MAXBATCH -> sets PORT; the server's pid goes to SPIDS
    "$PILLAR" serve "$MODEL" --name m --port 0 --threads "$THREADS" --max-batch "$1" --batch-timeout-ms "$BTO" \
        --max-body-mb 256 --quiet 2>"$TMP/server.$1.log" &
    SPIDS+=($!)
    PORT=""
    for _ in $(seq 1 1200); do
        PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/server.$1.log")
        [ -n "$PORT" ] && break
        sleep 0.1
    done
    [ -n "$PORT" ] || { echo "serve_bench: server did not start: $(cat "$TMP/server.$1.log")" >&2; exit 1; }
}
run_wrk() { # PORT CONC SECONDS -> "requests rps p50 p99 errors"
    local c=$2 t=$3 th=$(($2 < 2 ? $2 : 2))
    wrk -t "$th" -c "$c" -d "${t}s" --timeout 120s -s "$TMP/post.lua" "http://127.0.0.1:$1/v2/models/m/infer" |
        sed -n 's/^RESULT //p'
}

SPIDS=()
start "$MAXB"
PORT_B=$PORT
start 1
PORT_U=$PORT
SPID="${SPIDS[*]}"
WARM=$((SECS / 3 > 1 ? SECS / 3 : 1))
echo "serve_bench: pillar bench at batch $MAXB (${SECS}s)" >&2
read -r BB BBMS < <(bench_items "$MAXB" "$SECS")
# Each point: pillar bench (batch 1), the batched server, the unbatched server, pillar
# bench again; ratios use the mean of the two bench runs around them, so that a machine
# whose speed drifts is compared with itself. --rounds repeats; medians are reported.
declare -A RPS P50 P99 ERR RATIO
for r in $(seq 1 "$ROUNDS"); do
    for c in $CONC; do
        echo "serve_bench: round $r, concurrency $c" >&2
        read -r b1 _ < <(bench_items 1 "$SECS")
        for mode in batched unbatched; do
            port=$PORT_B
            [ $mode = unbatched ] && port=$PORT_U
            run_wrk "$port" "$c" "$WARM" >/dev/null
            read -r n rps p50 p99 errs < <(run_wrk "$port" "$c" "$SECS")
            RPS[$mode.$c]+="$rps "
            P50[$mode.$c]+="$p50 "
            P99[$mode.$c]+="$p99 "
            ERR[$mode.$c]=$((${ERR[$mode.$c]:-0} + errs))
        done
        read -r b2 _ < <(bench_items 1 "$SECS")
        B1S+="$b1 $b2 "
        for mode in batched unbatched; do
            last=$(echo "${RPS[$mode.$c]}" | awk '{print $NF}')
            RATIO[$mode.$c]+="$(echo "$last / (($b1 + $b2) / 2)" | bc -l) "
        done
    done
done
curl -s "http://127.0.0.1:$PORT_B/metrics" >"$TMP/metrics.batched"
curl -s "http://127.0.0.1:$PORT_U/metrics" >"$TMP/metrics.unbatched"

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
B1=$(echo "$B1S" | median)
echo
echo "pillar serve vs pillar bench -- $(basename "$MODEL"), $THREADS threads, ${SECS}s per point, $ROUNDS round(s), $(date -u +%Y-%m-%d), $cpu"
echo "requests: one image each, $([ "$JSON" = 1 ] && echo "JSON tensors" || echo "binary-data extension"); batched: --max-batch $MAXB --batch-timeout-ms $BTO; unbatched: --max-batch 1"
echo
printf 'pillar bench: batch 1 %.2f items/s (median of %d runs); batch %s %.2f items/s (median %.1f ms)\n' \
    "$B1" "$(echo "$B1S" | wc -w)" "$MAXB" "$BB" "$BBMS"
echo
echo "| mode | clients | requests/s | p50 ms | p99 ms | errors | requests/s / bench items/s |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for c in $CONC; do
    for mode in batched unbatched; do
        printf '| %s | %s | %.2f | %.1f | %.1f | %s | %.3f |\n' "$mode" "$c" "$(echo "${RPS[$mode.$c]}" | median)" \
            "$(echo "${P50[$mode.$c]}" | median)" "$(echo "${P99[$mode.$c]}" | median)" "${ERR[$mode.$c]}" \
            "$(echo "${RATIO[$mode.$c]}" | median)"
    done
done
echo
for mode in batched unbatched; do
    runs=$(sed -n 's/^pillar_batch_size_count{model="m"} //p' "$TMP/metrics.$mode")
    items=$(sed -n 's/^pillar_inferences_total{model="m"} //p' "$TMP/metrics.$mode")
    echo "$mode: $items images in $runs session runs ($(echo "scale=2; $items / $runs" | bc) per run, warm-ups included)"
done
