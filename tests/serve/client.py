#!/usr/bin/python3
"""Small KServe v2 client checks for the server tests (tests/serve/*.sh). Each
subcommand exits 0 on success or prints what went wrong and exits 1. Only 127.0.0.1.

    client.py binary PORT          binary-data extension in and out, mixed with JSON
    client.py concurrent PORT N    N threads x 20 requests with distinct inputs on the
                                   batchable model 'mlp': each answer matches its input
    client.py slow PORT            a client that sends headers and stalls does not
                                   delay others; it is cut off by the idle timeout
    client.py inflight PORT PID    SIGTERM while requests are arriving: all are answered
    client.py binary_errors PORT   malformed binary-data requests get 400s
"""
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time

import numpy as np

W = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=np.float32)
B = np.array([0.5, -0.5, 0], dtype=np.float32)


def mlp(x):
    return x @ W + B


def post(port, path, body, headers=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("POST", path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def binary_request(x, want_binary=True):
    hdr = {"inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP32",
                       "parameters": {"binary_data_size": x.nbytes}}],
           "outputs": [{"name": "y", "parameters": {"binary_data": want_binary}}, {"name": "s"}]}
    h = json.dumps(hdr).encode()
    return h + x.tobytes(), {"Inference-Header-Content-Length": str(len(h)),
                              "Content-Type": "application/octet-stream"}


def check(cond, msg):
    if not cond:
        print(msg)
        sys.exit(1)


def cmd_binary(port):
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    body, headers = binary_request(x)
    r, data = post(port, "/v2/models/mlp/infer", body, headers)
    check(r.status == 200, "status %d: %r" % (r.status, data[:200]))
    n = int(r.getheader("Inference-Header-Content-Length"))
    meta = json.loads(data[:n])
    outs = {o["name"]: o for o in meta["outputs"]}
    check(outs["y"]["parameters"]["binary_data_size"] == 36, "y size %r" % outs["y"])
    y = np.frombuffer(data[n:n + 36], dtype=np.float32).reshape(3, 3)
    check(np.array_equal(y, mlp(x)), "y differs: %r vs %r" % (y, mlp(x)))
    s = np.array(outs["s"]["data"], dtype=np.float32).reshape(3, 1)
    check(np.allclose(s, mlp(x).sum(1, keepdims=True), rtol=1e-6), "s differs")
    check(len(data) == n + 36, "trailing bytes")
    # binary_data_output for all outputs
    h = json.dumps({"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP32",
                                "parameters": {"binary_data_size": 48}}],
                    "parameters": {"binary_data_output": True}}).encode()
    r, data = post(port, "/v2/models/mlp/infer", h + x.tobytes(),
                   {"Inference-Header-Content-Length": str(len(h))})
    check(r.status == 200, "status %d" % r.status)
    n = int(r.getheader("Inference-Header-Content-Length"))
    check(len(data) == n + 36 + 12, "binary_data_output: %d bytes after %d" % (len(data) - n, n))
    # JSON answer (no binary) when the header is absent from the request's outputs
    body, headers = binary_request(x, want_binary=False)
    r, data = post(port, "/v2/models/mlp/infer", body, headers)
    check(r.status == 200 and r.getheader("Inference-Header-Content-Length") is None,
          "json answer expected")
    y = np.array(json.loads(data)["outputs"][0]["data"], dtype=np.float32).reshape(3, 3)
    check(np.array_equal(y, mlp(x)), "json y differs")
    # int64 beyond 2^53 exact through binary data
    a = np.array([2**62 + 1, -(2**62) - 3], dtype=np.int64)
    b = np.array([5, 7], dtype=np.int64)
    h = json.dumps({"inputs": [
        {"name": "a", "shape": [2], "datatype": "INT64", "parameters": {"binary_data_size": 16}},
        {"name": "b", "shape": [2], "datatype": "INT64", "parameters": {"binary_data_size": 16}}],
        "outputs": [{"name": "c", "parameters": {"binary_data": True}}]}).encode()
    r, data = post(port, "/v2/models/fixed/infer", h + a.tobytes() + b.tobytes(),
                   {"Inference-Header-Content-Length": str(len(h))})
    check(r.status == 200, "fixed status %d %r" % (r.status, data[:200]))
    n = int(r.getheader("Inference-Header-Content-Length"))
    c = np.frombuffer(data[n:], dtype=np.int64)
    check(np.array_equal(c, a + b), "int64 %r != %r" % (c, a + b))
    print("binary in/out, binary_data_output, JSON out, exact int64")


def cmd_binary_errors(port):
    x = np.zeros((1, 4), dtype=np.float32)
    cases = []
    h = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                "parameters": {"binary_data_size": 16}}]}).encode()
    cases.append(("short binary", h + x.tobytes()[:8], {"Inference-Header-Content-Length": str(len(h))},
                  "past the end"))
    cases.append(("extra bytes", h + x.tobytes() + b"xx", {"Inference-Header-Content-Length": str(len(h))},
                  "not used"))
    cases.append(("header too long", h + x.tobytes(), {"Inference-Header-Content-Length": "100000"},
                  "larger than the body"))
    cases.append(("header not a number", h + x.tobytes(), {"Inference-Header-Content-Length": "abc"},
                  "non-negative integer"))
    cases.append(("no header", h + x.tobytes(), {}, "not valid JSON"))
    h2 = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                 "parameters": {"binary_data_size": 12}}]}).encode()
    cases.append(("size mismatch", h2 + x.tobytes()[:12], {"Inference-Header-Content-Length": str(len(h2))},
                  "needs 16 bytes"))
    h3 = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                 "parameters": {"binary_data_size": 16}}]}).encode()
    cases.append(("binary without header", h3, {}, "no Inference-Header-Content-Length"))
    for what, body, headers, sub in cases:
        r, data = post(port, "/v2/models/mlp/infer", body, headers)
        check(r.status == 400, "%s: status %d %r" % (what, r.status, data[:200]))
        err = json.loads(data)["error"]
        check(sub in err, "%s: message %r lacks %r" % (what, err, sub))
    print("%d malformed binary requests -> 400" % len(cases))


def cmd_concurrent(port, n):
    errors = []

    def worker(k):
        rng = np.random.default_rng(100 + k)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for i in range(20):
            rows = 1 + (k + i) % 3
            x = rng.standard_normal((rows, 4)).astype(np.float32)
            body = json.dumps({"id": "%d-%d" % (k, i), "inputs": [
                {"name": "x", "shape": [rows, 4], "datatype": "FP32", "data": x.ravel().tolist()}]})
            c.request("POST", "/v2/models/mlp/infer", body=body)
            r = c.getresponse()
            data = r.read()
            if r.status != 200:
                errors.append("status %d %r" % (r.status, data[:200]))
                return
            d = json.loads(data)
            y = np.array(d["outputs"][0]["data"], dtype=np.float32).reshape(d["outputs"][0]["shape"])
            if d["id"] != "%d-%d" % (k, i) or not np.array_equal(y, mlp(x)):
                errors.append("client %d request %d: wrong answer" % (k, i))
                return
        c.close()

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, "; ".join(errors[:5]))
    print("%d clients x 20 requests, every answer matches its own input" % n)


def cmd_slow(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"in")
    s2 = socket.create_connection(("127.0.0.1", port))
    s2.sendall(b"GET /v2/health/live HTTP/1.1\r\nHo")  # headers never finished
    t = time.time()
    for _ in range(10):
        x = np.ones((1, 4), dtype=np.float32)
        r, data = post(port, "/v2/models/mlp/infer",
                       json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                               "data": x.ravel().tolist()}]}), timeout=5)
        check(r.status == 200, "status %d while a client stalls" % r.status)
    took = time.time() - t
    check(took < 2.0, "10 requests took %.2fs while a client stalls" % took)
    s.settimeout(20)
    s2.settimeout(20)
    t = time.time()
    data = s.recv(1000)
    data2 = s2.recv(1000)
    waited = time.time() - t
    check(waited < 15, "stalled connection still open after %.1fs" % waited)
    print("10 requests in %.3fs beside 2 stalled clients; those were closed after %.1fs (%d, %d bytes)"
          % (took, waited, len(data), len(data2)))


def cmd_inflight(port, pid):
    # Requests whose bodies are half sent when SIGTERM arrives: the server must wait for
    # the rest and answer them, while refusing new connections.
    x = np.random.default_rng(3).standard_normal((2, 4)).astype(np.float32)
    body = json.dumps({"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                                   "data": x.ravel().tolist()}]}).encode()
    socks = []
    for _ in range(4):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                  % len(body) + body[:10])
        socks.append(s)
    time.sleep(0.3)
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.5)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    check(refused, "still accepting connections after SIGTERM")
    answers = []
    for s in socks:
        s.sendall(body[10:])
        f = s.makefile("rb")
        status = f.readline().split()
        answers.append(int(status[1]) if len(status) > 1 else status)
        s.close()
    check(all(a == 200 for a in answers), "in-flight answers: %r" % answers)
    print("4 requests in flight at SIGTERM all answered 200; new connections refused")


def main():
    cmd = sys.argv[1]
    port = int(sys.argv[2])
    if cmd == "binary":
        cmd_binary(port)
    elif cmd == "binary_errors":
        cmd_binary_errors(port)
    elif cmd == "concurrent":
        cmd_concurrent(port, int(sys.argv[3]))
    elif cmd == "slow":
        cmd_slow(port)
    elif cmd == "inflight":
        cmd_inflight(port, int(sys.argv[3]))
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
