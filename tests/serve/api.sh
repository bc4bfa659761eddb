#!/usr/bin/env bash
# `pillar serve`: the KServe v2 routes with several models at once -- health, server and
# model metadata, JSON inference with exact results for every JSON datatype, the
# binary-data extension, output selection, request ids, concurrent clients answered
# correctly while batched, metrics, and a clean SIGTERM.
source "$(dirname "$0")/lib.bash"
make_models

start_server --model mlp="$M/mlp.onnx" --model fixed="$M/fixed.onnx" --model types="$M/types.onnx" \
    --threads 1 --max-batch 8 || finish

expect_http 200 '"live":true' GET /v2/health/live
expect_http 200 '"ready":true' GET /v2/health/ready
expect_http 200 '"extensions":["binary_tensor_data"]' GET /v2
expect_http 200 '"name":"pillar"' GET /v2/
expect_http 200 '"inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}]' GET /v2/models/mlp
expect_http 200 '"outputs":[{"name":"y","datatype":"FP32","shape":[-1,3]},{"name":"s","datatype":"FP32","shape":[-1,1]}]' GET /v2/models/mlp
expect_http 200 '"shape":[2]' GET /v2/models/fixed
expect_http 200 '"name":"fixed"' GET /v2/models/fixed/versions/1
expect_http 200 '"ready":true' GET /v2/models/types/ready
CHECKS=$((CHECKS + 1))
if [ "$(curl -s -o /dev/null -w '%{http_code}' -I "$URL/v2/health/live")" = 200 ]; then ok "HEAD /v2/health/live"; else fail "HEAD /v2/health/live"; fi

# y = x W + b, s = sum(y): exact in float32
expect_infer 200 '{"model_name":"mlp","model_version":"1","outputs":[{"name":"y","datatype":"FP32","shape":[2,3],"data":[5.5,5.5,7,1.5,0.5,1]},{"name":"s","datatype":"FP32","shape":[2,1],"data":[18,3]}]}' \
    mlp '{"inputs":[{"name":"x","shape":[2,4],"datatype":"FP32","data":[[1,2,3,4],[0,0,0,1]]}]}'
# flat data, one output selected, id echoed
expect_infer 200 '"id":"abc","outputs":[{"name":"s","datatype":"FP32","shape":[1,1],"data":[18]}]}' \
    mlp '{"id":"abc","inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],"outputs":[{"name":"s"}]}'
# an empty batch
expect_infer 200 '"shape":[0,3],"data":[]' mlp '{"inputs":[{"name":"x","shape":[0,4],"datatype":"FP32","data":[]}]}'
# int64 exact up to 2^53 in JSON
expect_infer 200 '"data":[9007199254740993,-3]' \
    fixed '{"inputs":[{"name":"a","shape":[2],"datatype":"INT64","data":[9007199254740992,-5]},{"name":"b","shape":[2],"datatype":"INT64","data":[1,2]}]}'
# FP16, INT32, BOOL, UINT8, FP64 round trips
expect_infer 200 '"data":[1.5,-2,65504]' types '{"inputs":[{"name":"h","shape":[3],"datatype":"FP16","data":[1.5,-2,65504]},{"name":"i","shape":[3],"datatype":"INT32","data":[1,-2,2147483647]},{"name":"f","shape":[3],"datatype":"BOOL","data":[true,false,1]},{"name":"u","shape":[3],"datatype":"UINT8","data":[0,255,7]},{"name":"d","shape":[3],"datatype":"FP64","data":[0.5,1e300,-3]}]}'
for s in '"name":"i_out","datatype":"INT32","shape":[3],"data":[1,-2,2147483647]' \
    '"name":"f_out","datatype":"BOOL","shape":[3],"data":[true,false,true]' \
    '"name":"u_out","datatype":"UINT8","shape":[3],"data":[0,255,7]' \
    '"name":"d_out","datatype":"FP64","shape":[3],"data":[0.5,1.0000000000000001e+300,-3]'; do
    CHECKS=$((CHECKS + 1))
    if grep -qF -- "$s" "$BODY"; then ok "types: $s"; else fail "types answer lacks $s: $(cat "$BODY")"; fi
done

py_check "binary-data extension" "$SRC/tests/serve/client.py" binary "$PORT"
py_check "16 concurrent clients" "$SRC/tests/serve/client.py" concurrent "$PORT" 16

# metrics: counters, histograms, batch sizes
expect_http 200 'pillar_infer_requests_total{model="mlp",code="200"}' GET /metrics
for s in 'pillar_http_requests_total{code="200"}' 'pillar_request_duration_seconds_bucket{model="mlp",le="+Inf"}' \
    'pillar_batch_size_bucket{model="mlp",le="1"}' 'pillar_batch_size_count{model="types"} 1' \
    'pillar_infer_errors_total{model="fixed"} 0' '# TYPE pillar_request_duration_seconds histogram' \
    'pillar_queue_length{model="mlp"} 0'; do
    CHECKS=$((CHECKS + 1))
    if grep -qF -- "$s" "$BODY"; then ok "metrics: $s"; else fail "metrics lack $s"; fi
done
CHECKS=$((CHECKS + 1))
if grep -qi '^Content-Type: text/plain; version=0.0.4' "$HDRS"; then ok "metrics content type"; else fail "metrics content type: $(grep -i content-type "$HDRS")"; fi
py_check "metrics: 326 mlp requests answered 200, batch histogram consistent" -c '
import re, sys
t = open(sys.argv[1]).read()
n = int(re.search(r"pillar_infer_requests_total\{model=\"mlp\",code=\"200\"\} (\d+)", t).group(1))
assert n == 3 + 3 + 320, n   # 3 JSON above, 3 from the binary check, 16 x 20 concurrent
runs = int(re.search(r"pillar_batch_size_count\{model=\"mlp\"\} (\d+)", t).group(1))
items = int(re.search(r"pillar_inferences_total\{model=\"mlp\"\} (\d+)", t).group(1))
assert 1 <= runs <= n and items >= n, (runs, items)
print("%d runs for %d requests" % (runs, n))
' "$BODY"

stop_server
finish
