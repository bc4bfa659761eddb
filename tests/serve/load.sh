#!/usr/bin/env bash
# `pillar serve` under load: wrk drives POST /v2/models/mlp/infer on 127.0.0.1 with 16
# connections for a bounded time (PILLAR_WRK_SECONDS, default 30) and there must be no
# socket error, no timeout and no non-2xx answer; the requests/s wrk reports must be
# positive and agree with the server's own count in /metrics. Then the server must stop
# cleanly.
source "$(dirname "$0")/lib.bash"
make_models
SECS="${PILLAR_WRK_SECONDS:-30}"

if ! command -v wrk >/dev/null 2>&1; then
    echo "FAIL: wrk is needed (scripts/install-deps.sh)"
    exit 1
fi

start_server --model mlp="$M/mlp.onnx" --threads 1 --max-batch 16 || finish
cat >"$TMP/post.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs":[{"name":"x","shape":[2,4],"datatype":"FP32","data":[1,2,3,4,0,0,0,1]}]}'
done = function(summary, latency, requests)
  io.write(string.format("WRK requests=%d errors=%d status=%d timeout=%d p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
EOF
CHECKS=$((CHECKS + 1))
wrk -t 2 -c 16 -d "${SECS}s" --timeout 10s -s "$TMP/post.lua" "$URL/v2/models/mlp/infer" >"$TMP/wrk.out" 2>&1
rc=$?
sed 's/^/    /' "$TMP/wrk.out"
line=$(grep '^WRK ' "$TMP/wrk.out")
if [ $rc -ne 0 ] || [ -z "$line" ]; then
    fail "wrk exited $rc"
else
    eval "$(echo "${line#WRK }" | tr ' ' '\n' | sed 's/^/W_/')"
    rps=$(sed -n 's/^Requests\/sec: *//p' "$TMP/wrk.out")
    if [ "$W_errors" -eq 0 ] && [ "$W_status" -eq 0 ] && [ "$W_timeout" -eq 0 ] && [ "$W_requests" -gt 0 ]; then
        ok "wrk ${SECS}s, 16 connections: $W_requests requests, $rps requests/s, p50 $W_p50_ms ms, p99 $W_p99_ms ms, 0 errors"
    else
        fail "wrk: $W_requests requests with $W_errors socket errors, $W_status non-2xx, $W_timeout timeouts"
    fi
    expect_http 200 'pillar_infer_requests_total{model="mlp",code="200"}' GET /metrics
    py_check "server counted wrk's requests" -c '
import re, sys
t = open(sys.argv[1]).read()
n = int(re.search(r"pillar_infer_requests_total\{model=\"mlp\",code=\"200\"\} (\d+)", t).group(1))
wrk = int(sys.argv[2])
assert "code=\"4" not in t and "code=\"5" not in t, "error answers counted"
assert wrk <= n <= wrk + 64, (n, wrk)   # wrk does not count requests cut off at the end
runs = int(re.search(r"pillar_batch_size_count\{model=\"mlp\"\} (\d+)", t).group(1))
print("%d answered, %d runs, %.2f requests per run" % (n, runs, n / max(runs, 1)))
' "$BODY" "$W_requests"
fi
stop_server
finish
