#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets (kept in git; run again only to refresh):

    /usr/bin/python3 fuzz/make_seeds.py

fuzz/corpus_onnx_loader/     the server-test models (tests/serve/make_models.py) and a spread of
                      small models from the ONNX conformance suite (libonnx-testdata),
                      one per operator, under 3 KB each
fuzz/corpus_request/  KServe v2 requests in fuzz_request.c's layout (byte 0: bit 0 =
                      Inference-Header-Content-Length present, bytes 1-2 its value)
"""
import glob
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
SUITE = "/usr/share/libonnx-testdata/data/node"


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def onnx_seeds():
    out = os.path.join(HERE, "corpus_onnx_loader")
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, os.path.join(SRC, "tests", "serve", "make_models.py"), d], check=True)
        for f in sorted(glob.glob(os.path.join(d, "*.onnx"))):
            write(os.path.join(out, "serve_" + os.path.basename(f)[:-5]), open(f, "rb").read())
    seen = set()
    for case in sorted(glob.glob(os.path.join(SUITE, "test_*"))):
        model = os.path.join(case, "model.onnx")
        if not os.path.exists(model) or os.path.getsize(model) > 3000:
            continue
        op = os.path.basename(case)[5:].split("_")[0]
        if op in seen:
            continue
        seen.add(op)
        write(os.path.join(out, "node_" + os.path.basename(case)[5:]), open(model, "rb").read())


def req(obj, binary=b"", header=None):
    body = json.dumps(obj).encode()
    if header is None and not binary:
        return b"\0\0\0" + body
    n = len(body) if header is None else header
    return b"\1" + struct.pack("<H", n) + body + binary


def request_seeds():
    out = os.path.join(HERE, "corpus_request")
    os.makedirs(out, exist_ok=True)
    x = {"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [[1, 2, 3, 4], [5, 6, 7, 8]]}
    ids = {"name": "ids", "shape": [3], "datatype": "INT64", "data": [1, -2, 9007199254740992]}
    mask = {"name": "mask", "shape": [2, 2], "datatype": "BOOL", "data": [True, False, 1, 0]}
    h = {"name": "h", "shape": [2], "datatype": "FP16", "data": [1.5, 65504]}
    seeds = {
        "all_json": req({"id": "r1", "inputs": [x, ids, mask, h]}),
        "outputs": req({"inputs": [x, ids, mask, h], "outputs": [{"name": "z"}, {"name": "y",
                        "parameters": {"binary_data": True}}]}),
        "binary_out": req({"inputs": [x, ids, mask, h], "parameters": {"binary_data_output": True}}),
        "empty": req({"inputs": [dict(x, shape=[0, 4], data=[]), dict(ids, shape=[0], data=[]),
                                 dict(mask, shape=[2, 0], data=[]), dict(h, shape=[0], data=[])]}),
        "bad_shape": req({"inputs": [dict(x, shape=[4, 2])]}),
        "bad_type": req({"inputs": [dict(x, datatype="INT8")]}),
    }
    xb = struct.pack("<8f", *range(8))
    ib = struct.pack("<3q", 1, 2, 3)
    binx = dict(x)
    del binx["data"]
    binx["parameters"] = {"binary_data_size": 32}
    bini = dict(ids)
    del bini["data"]
    bini["parameters"] = {"binary_data_size": 24}
    seeds["binary_in"] = req({"inputs": [binx, bini, mask, h]}, xb + ib)
    seeds["binary_short"] = req({"inputs": [binx, bini, mask, h]}, xb)
    for name, data in seeds.items():
        write(os.path.join(out, name), data)


if __name__ == "__main__":
    onnx_seeds()
    request_seeds()
