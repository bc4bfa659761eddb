#!/usr/bin/env bash
# `pillar serve`: every bad request gets the right 4xx (or 503) with a JSON body
# {"error": "..."} naming the problem, and the server keeps serving: unknown paths and
# models (404), wrong methods (405 + Allow), oversized bodies with and without
# Content-Length (413), malformed JSON and requests (400), wrong input names, types,
# shapes and values (400), unknown outputs, malformed binary data; then command-line
# errors (exit codes 1 and 2).
source "$(dirname "$0")/lib.bash"
make_models

start_server --model mlp="$M/mlp.onnx" --model fixed="$M/fixed.onnx" --max-body-mb 1 --threads 1 || finish

X='"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]'

# --- paths, models, methods
expect_http 404 "no such path: /nope" GET /nope
expect_http 404 "no such path" GET /v2/models/mlp/infer/more
expect_http 404 "no such path" GET /v2/models/mlp/statistics
expect_http 404 "model 'resnet' is not served here" GET /v2/models/resnet
expect_http 404 "model 'resnet' is not served here" POST /v2/models/resnet/infer --data-binary "{$X}"
expect_http 404 "no version '2'" GET /v2/models/mlp/versions/2
expect_http 405 "method GET is not allowed here (use POST)" GET /v2/models/mlp/infer
CHECKS=$((CHECKS + 1))
if grep -qi '^Allow: POST' "$HDRS"; then ok "405 has Allow: POST"; else fail "405 lacks Allow: POST"; fi
expect_http 405 "method POST is not allowed here (use GET)" POST /v2/health/live --data-binary x
CHECKS=$((CHECKS + 1))
if grep -qi '^Allow: GET, HEAD' "$HDRS"; then ok "405 has Allow: GET, HEAD"; else fail "405 lacks Allow: GET, HEAD"; fi
expect_http 405 "method DELETE" DELETE /v2/models/mlp
expect_http 405 "method PUT" PUT /v2/models/mlp/infer --data-binary "{$X}"

# --- body size (limit 1 MiB): with Content-Length, and chunked
head -c 2000000 /dev/zero >"$TMP/big"
expect_http 413 "larger than 1048576 bytes" POST /v2/models/mlp/infer --data-binary @"$TMP/big"
expect_http 413 "larger than 1048576 bytes" POST /v2/models/mlp/infer -H "Transfer-Encoding: chunked" \
    --data-binary @"$TMP/big"
# just under the limit is parsed (and is not JSON)
head -c 1000000 /dev/zero >"$TMP/under"
expect_http 400 "not valid JSON" POST /v2/models/mlp/infer --data-binary @"$TMP/under"

# --- malformed JSON and requests
expect_infer 400 "not valid JSON" mlp '{"inputs":['
expect_infer 400 "not valid JSON" mlp '{"inputs":[]} trailing'
expect_infer 400 "no JSON body" mlp ''
expect_infer 400 "must be a JSON object" mlp '[1,2]'
expect_infer 400 "no 'inputs' array" mlp '{}'
expect_infer 400 "no 'inputs' array" mlp '{"inputs":{}}'
expect_infer 400 "each entry of 'inputs' must be an object" mlp '{"inputs":[1]}'
expect_infer 400 "an input has no string 'name'" mlp '{"inputs":[{"shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}'
expect_infer 400 "input 'x' has no string 'datatype'" mlp '{"inputs":[{"name":"x","shape":[1,4],"data":[1,2,3,4]}]}'
expect_infer 400 "input 'x' has no 'shape' array" mlp '{"inputs":[{"name":"x","datatype":"FP32","data":[1,2,3,4]}]}'
expect_infer 400 "input 'x' has no 'data' array" mlp '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32"}]}'
expect_infer 400 "'id' must be a string" mlp "{\"id\":5,$X}"
expect_infer 400 "'parameters' must be an object" mlp "{\"parameters\":1,$X}"
expect_infer 400 "binary_data_output must be true or false" mlp "{\"parameters\":{\"binary_data_output\":1},$X}"
# deep nesting is refused, not a crash
DEEP=$(printf '[%.0s' $(seq 1 5000))
expect_infer 400 "not valid JSON" mlp "{\"inputs\":$DEEP"

# --- names
expect_infer 400 "'q' is not an input of the model" mlp '{"inputs":[{"name":"q","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}'
expect_infer 400 "input 'x' is given twice" mlp "{\"inputs\":[${X:10:-1},${X:10:-1}]}"
expect_infer 400 "input 'x' is missing" mlp '{"inputs":[]}'
expect_infer 400 "input 'b' is missing" fixed '{"inputs":[{"name":"a","shape":[2],"datatype":"INT64","data":[1,2]}]}'
expect_infer 400 "'zz' is not an output of the model" mlp "{$X,\"outputs\":[{\"name\":\"zz\"}]}"
expect_infer 400 "output 'y' is requested twice" mlp "{$X,\"outputs\":[{\"name\":\"y\"},{\"name\":\"y\"}]}"
expect_infer 400 "'outputs' must be an array" mlp "{$X,\"outputs\":{}}"
expect_infer 400 "binary_data must be true or false" mlp "{$X,\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":\"yes\"}}]}"
expect_infer 400 "classification extension is not supported" mlp "{$X,\"outputs\":[{\"name\":\"y\",\"parameters\":{\"classification\":3}}]}"

# --- types
expect_infer 400 "input 'x' has datatype INT64, the model expects FP32" mlp '{"inputs":[{"name":"x","shape":[1,4],"datatype":"INT64","data":[1,2,3,4]}]}'
expect_infer 400 "unknown datatype 'FLOAT'" mlp '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FLOAT","data":[1,2,3,4]}]}'
expect_infer 400 "must hold only numbers or booleans" mlp '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,"4"]}]}'
expect_infer 400 "must hold only numbers or booleans" mlp '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,null]}]}'
expect_infer 400 "is a boolean, the datatype is FP32" mlp '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,true]}]}'
expect_infer 400 "value 0 (1.5) is not a valid INT64" fixed '{"inputs":[{"name":"a","shape":[2],"datatype":"INT64","data":[1.5,2]},{"name":"b","shape":[2],"datatype":"INT64","data":[1,2]}]}'
expect_infer 400 "integers beyond 2^53 need the binary-data extension" fixed '{"inputs":[{"name":"a","shape":[2],"datatype":"INT64","data":[1,1e17]},{"name":"b","shape":[2],"datatype":"INT64","data":[1,2]}]}'

# --- shapes
expect_infer 400 "input 'x' has shape [1,5], the model expects [-1,4]" mlp '{"inputs":[{"name":"x","shape":[1,5],"datatype":"FP32","data":[1,2,3,4,5]}]}'
expect_infer 400 "input 'x' has shape [4], the model expects [-1,4]" mlp '{"inputs":[{"name":"x","shape":[4],"datatype":"FP32","data":[1,2,3,4]}]}'
expect_infer 400 "input 'a' has shape [3], the model expects [2]" fixed '{"inputs":[{"name":"a","shape":[3],"datatype":"INT64","data":[1,2,3]},{"name":"b","shape":[2],"datatype":"INT64","data":[1,2]}]}'
expect_infer 400 "input 'x' has 3 values, shape [1,4] needs 4" mlp '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3]}]}'
expect_infer 400 "input 'x' has 5 values, shape [1,4] needs 4" mlp '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[[1,2],[3,4,5]]}]}'
expect_infer 400 "shape entries must be non-negative integers" mlp '{"inputs":[{"name":"x","shape":[-1,4],"datatype":"FP32","data":[]}]}'
expect_infer 400 "shape entries must be non-negative integers" mlp '{"inputs":[{"name":"x","shape":[1.5,4],"datatype":"FP32","data":[]}]}'
expect_infer 400 "shape has more than 8 dimensions" mlp '{"inputs":[{"name":"x","shape":[1,1,1,1,1,1,1,1,1],"datatype":"FP32","data":[1]}]}'
expect_infer 400 "needs 36028797018963968" mlp '{"inputs":[{"name":"x","shape":[9007199254740992,4],"datatype":"FP32","data":[1]}]}'
expect_infer 400 "has 1 values, shape [1000000000,4] needs 4000000000" mlp '{"inputs":[{"name":"x","shape":[1000000000,4],"datatype":"FP32","data":[1]}]}'

py_check "malformed binary-data requests" "$SRC/tests/serve/client.py" binary_errors "$PORT"

# after all that the server still answers, and counted the errors
expect_infer 200 '"data":[5.5,5.5,7]' mlp "{$X}"
expect_http 200 'pillar_infer_requests_total{model="mlp",code="400"}' GET /metrics
expect_http 200 'pillar_http_requests_total{code="413"} 2' GET /metrics
stop_server

# --- command-line errors
run_cli() { # CODE SUBSTR ARGS...
    local want=$1 sub=$2
    shift 2
    CHECKS=$((CHECKS + 1))
    "$PILLAR" serve "$@" >"$TMP/o" 2>"$TMP/e"
    local rc=$?
    if [ $rc -ne "$want" ] || ! grep -qF -- "$sub" "$TMP/e"; then
        fail "pillar serve $*: exit $rc (want $want), stderr: $(cat "$TMP/e")"
    else
        ok "pillar serve $* -> $rc: $(head -1 "$TMP/e")"
    fi
}
run_cli 1 "no model given" --port 0
run_cli 1 "--port: '70000' is not an integer" "$M/mlp.onnx" --port 70000
run_cli 1 "--max-batch: '0'" "$M/mlp.onnx" --max-batch 0
run_cli 1 "--model takes NAME=PATH" --model "$M/mlp.onnx"
run_cli 1 "model name 'a/b' must be" --model "a/b=$M/mlp.onnx"
run_cli 1 "model name 'm' is given twice" --model "m=$M/mlp.onnx" --model "m=$M/fixed.onnx"
run_cli 1 "unknown option '--bogus'" "$M/mlp.onnx" --bogus
run_cli 2 "nonexistent.onnx" "$TMP/nonexistent.onnx" --port 0
printf 'not a model' >"$TMP/bad.onnx"
run_cli 2 "bad.onnx" "$TMP/bad.onnx" --port 0
run_cli 1 "cannot use host" "$M/mlp.onnx" --host no.such.host.invalid --port 0
finish
