#!/usr/bin/env bash
# `pillar serve` under awkward clients: a client that sends headers and stalls does not
# block others and is cut off by --timeout; clients that vanish mid-request are
# harmless; concurrent clients get their own answers with and without batching;
# requests still arriving when SIGTERM comes are answered before a clean exit (0), and
# SIGINT does the same.
source "$(dirname "$0")/lib.bash"
make_models

start_server --model mlp="$M/mlp.onnx" --model cnn="$M/cnn.onnx" --timeout 2 --threads 1 || finish
py_check "stalled clients" "$SRC/tests/serve/client.py" slow "$PORT"
# clients that hang up: half a body, then close; a request then reset
CHECKS=$((CHECKS + 1))
"$PY" - "$PORT" <<'EOF' && ok "clients that hang up mid-request" || fail "clients that hang up mid-request"
import socket, sys
port = int(sys.argv[1])
for i in range(20):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"inputs\"")
    s.close()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b'POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 78\r\n\r\n'
              b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}   ')
    s.close()
EOF
expect_http 200 '"live":true' GET /v2/health/live
py_check "16 concurrent clients, batching on" "$SRC/tests/serve/client.py" concurrent "$PORT" 16
stop_server

start_server --model mlp="$M/mlp.onnx" --max-batch 1 --threads 1 || finish
py_check "8 concurrent clients, batching off" "$SRC/tests/serve/client.py" concurrent "$PORT" 8
expect_http 200 'pillar_batch_size_bucket{model="mlp",le="1"} 160' GET /metrics
stop_server

# a long batch timeout never delays a lone client (nothing else is arriving)
start_server --model mlp="$M/mlp.onnx" --max-batch 64 --batch-timeout-ms 5000 --threads 1 || finish
CHECKS=$((CHECKS + 1))
t0=$(date +%s%N)
for i in 1 2 3 4 5; do
    infer mlp '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}'
done
ms=$((($(date +%s%N) - t0) / 1000000))
if [ "$CODE" = 200 ] && [ $ms -lt 4000 ]; then ok "5 lone requests with --batch-timeout-ms 5000 took $ms ms"; else fail "5 lone requests took $ms ms (code $CODE)"; fi
stop_server

# SIGTERM while requests are arriving: they are answered, then exit 0
start_server --model mlp="$M/mlp.onnx" --threads 1 || finish
py_check "SIGTERM with requests in flight" "$SRC/tests/serve/client.py" inflight "$PORT" "$SPID"
CHECKS=$((CHECKS + 1))
for i in $(seq 1 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
wait "$SPID"
rc=$?
SPID=""
if [ $rc -eq 0 ] && grep -q "pillar serve: stopped" "$SLOG" && ! grep -qE "Sanitizer|runtime error:" "$SLOG"; then
    ok "exit 0 after in-flight requests"
else
    fail "exit $rc after SIGTERM; log: $(tail -5 "$SLOG")"
fi

# SIGINT (Ctrl-C) is a clean stop too
start_server --model mlp="$M/mlp.onnx" --threads 1 || finish
CHECKS=$((CHECKS + 1))
kill -INT "$SPID"
for i in $(seq 1 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
wait "$SPID"
rc=$?
SPID=""
if [ $rc -eq 0 ] && grep -q "SIGINT" "$SLOG"; then ok "SIGINT: exit 0"; else fail "SIGINT: exit $rc; log: $(tail -3 "$SLOG")"; fi
finish
