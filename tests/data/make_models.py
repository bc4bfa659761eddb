#!/usr/bin/python3
"""Writes small, valid ONNX models (and their inputs and numpy-computed expected
outputs as .npy files) for the CLI tests in tests/cli/.

    /usr/bin/python3 tests/data/make_models.py OUTDIR

Files written to OUTDIR:
  add.onnx            C = A + B, float32 [2,3]; add_a.npy, add_b.npy, add_c.npy (expected)
  int_add.onnx        C = A + B, int64 [4] with values near 2^62; int_add_{a,b,c}.npy
  cnn.onnx            X[1,3,8,8] -> Conv(4x3x3x3, pad 1, half the weights zero) -> Relu
                      -> Flatten -> Gemm(10x256, transB) -> Y[1,10];
                      cnn_x.npy and cnn_y.npy (expected, computed here with numpy)
  dynamic.onnx        X[batch,4] -> Relu -> Y[batch,4] (symbolic 'batch')
  identity_<t>.onnx   Y = Identity(X), X [2,3] of type t, for every .npy type;
                      identity_<t>.npy is an input with awkward values for t
  names.onnx          X[2] -> Relu -> "out/1:0", Neg -> "../evil" (output file names)
  cnn.expect          "conv_macs=... gemm_macs=... conv_params=... gemm_params=..."
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def save(model, path):
    model.ir_version = 8
    onnx.save(model, path)


def model_of(nodes, inputs, outputs, inits=(), name="g"):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                             producer_name="pillar-tests")


def conv2d(x, w, b, pad):
    n, c, h, wd = x.shape
    co, ci, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    y = np.zeros((n, co, ho, wo), dtype=np.float64)
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i:i + kh, j:j + kw].astype(np.float64)
            y[:, :, i, j] = np.tensordot(patch, w.astype(np.float64), axes=([1, 2, 3], [1, 2, 3]))
    return y + b.astype(np.float64)[None, :, None, None]


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 1
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    p = lambda n: os.path.join(out, n)
    rng = np.random.default_rng(1234)
    F = TensorProto.FLOAT

    # add: exact float32 sum
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((2, 3)).astype(np.float32)
    save(model_of([helper.make_node("Add", ["A", "B"], ["C"], name="add0")],
                  [helper.make_tensor_value_info("A", F, [2, 3]),
                   helper.make_tensor_value_info("B", F, [2, 3])],
                  [helper.make_tensor_value_info("C", F, [2, 3])]), p("add.onnx"))
    np.save(p("add_a.npy"), a)
    np.save(p("add_b.npy"), b)
    np.save(p("add_c.npy"), a + b)

    # int_add: int64 arithmetic must be exact (doubles would round these)
    ia = np.array([2**62 + 1, -(2**62) - 3, 7, -1], dtype=np.int64)
    ib = np.array([2**60 + 5, 2**61 + 1, -9, 2**62 - 1], dtype=np.int64)
    I64 = TensorProto.INT64
    save(model_of([helper.make_node("Add", ["A", "B"], ["C"], name="iadd")],
                  [helper.make_tensor_value_info("A", I64, [4]),
                   helper.make_tensor_value_info("B", I64, [4])],
                  [helper.make_tensor_value_info("C", I64, [4])]), p("int_add.onnx"))
    np.save(p("int_add_a.npy"), ia)
    np.save(p("int_add_b.npy"), ib)
    np.save(p("int_add_c.npy"), ia + ib)

    # cnn: Conv + Relu + Flatten + Gemm, half of the conv weights zero
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    w.reshape(-1)[::2] = 0.0  # 54 of 108 weights are zero
    cb = rng.standard_normal(4).astype(np.float32)
    w2 = (rng.standard_normal((10, 256)) * 0.1).astype(np.float32)
    b2 = rng.standard_normal(10).astype(np.float32)
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["X", "W", "CB"], ["c"], name="conv1", pads=[1, 1, 1, 1],
                         kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"], name="relu1"),
        helper.make_node("Flatten", ["r"], ["f"], name="flatten1", axis=1),
        helper.make_node("Gemm", ["f", "W2", "B2"], ["Y"], name="fc1", transB=1),
    ]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(cb, "CB"),
             numpy_helper.from_array(w2, "W2"), numpy_helper.from_array(b2, "B2")]
    save(model_of(nodes, [helper.make_tensor_value_info("X", F, [1, 3, 8, 8])],
                  [helper.make_tensor_value_info("Y", F, [1, 10])], inits), p("cnn.onnx"))
    conv = np.maximum(conv2d(x, w, cb, 1), 0.0)
    y = conv.reshape(1, -1) @ w2.astype(np.float64).T + b2.astype(np.float64)
    np.save(p("cnn_x.npy"), x)
    np.save(p("cnn_y.npy"), y.astype(np.float32))
    with open(p("cnn.expect"), "w") as f:
        # MACs: Conv = Cout*Hout*Wout * Cin*kh*kw; Gemm = M*N*K
        f.write("conv_macs=%d gemm_macs=%d conv_weights=%d conv_zero=%d gemm_weights=%d\n"
                % (4 * 8 * 8 * 3 * 3 * 3, 1 * 10 * 256, w.size, int((w == 0).sum()), w2.size))

    # dynamic: symbolic batch
    save(model_of([helper.make_node("Relu", ["X"], ["Y"], name="relu_dyn")],
                  [helper.make_tensor_value_info("X", F, ["batch", 4])],
                  [helper.make_tensor_value_info("Y", F, ["batch", 4])]), p("dynamic.onnx"))

    # identity for every .npy type, with values that stress each type's range
    types = {
        "float32": (np.float32, TensorProto.FLOAT, [0.0, -0.0, 1.5, -3.25e30, 1e-40, np.inf]),
        "float64": (np.float64, TensorProto.DOUBLE, [0.0, -0.0, 1e300, -2.5e-310, 3.0, -np.inf]),
        "float16": (np.float16, TensorProto.FLOAT16, [0.0, -0.0, 65504.0, 6e-08, -1.5, 0.333]),
        "int8": (np.int8, TensorProto.INT8, [-128, 127, 0, -1, 5, 100]),
        "uint8": (np.uint8, TensorProto.UINT8, [0, 255, 1, 128, 7, 64]),
        "int16": (np.int16, TensorProto.INT16, [-32768, 32767, 0, -1, 300, 9]),
        "uint16": (np.uint16, TensorProto.UINT16, [0, 65535, 1, 32768, 7, 9]),
        "int32": (np.int32, TensorProto.INT32, [-2**31, 2**31 - 1, 0, -1, 70000, 9]),
        "uint32": (np.uint32, TensorProto.UINT32, [0, 2**32 - 1, 1, 2**31, 7, 9]),
        "int64": (np.int64, TensorProto.INT64, [-2**63, 2**63 - 1, 0, -1, 2**53 + 1, 9]),
        "uint64": (np.uint64, TensorProto.UINT64, [0, 2**64 - 1, 1, 2**63, 2**53 + 1, 9]),
        "bool": (np.bool_, TensorProto.BOOL, [True, False, True, True, False, False]),
    }
    for tname, (npt, ot, vals) in types.items():
        save(model_of([helper.make_node("Identity", ["X"], ["Y"], name="id_" + tname)],
                      [helper.make_tensor_value_info("X", ot, [2, 3])],
                      [helper.make_tensor_value_info("Y", ot, [2, 3])]), p("identity_%s.onnx" % tname))
        np.save(p("identity_%s.npy" % tname), np.array(vals, dtype=npt).reshape(2, 3))

    # output names that are not file names
    save(model_of([helper.make_node("Relu", ["X"], ["out/1:0"], name="relu_n"),
                   helper.make_node("Neg", ["X"], ["../evil"], name="neg_n")],
                  [helper.make_tensor_value_info("X", F, [2])],
                  [helper.make_tensor_value_info("out/1:0", F, [2]),
                   helper.make_tensor_value_info("../evil", F, [2])]), p("names.onnx"))
    np.save(p("names_x.npy"), np.array([-1.5, 2.0], dtype=np.float32))
    return 0


if __name__ == "__main__":
    sys.exit(main())
