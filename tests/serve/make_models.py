#!/usr/bin/python3
"""Writes the small ONNX models the server tests (tests/serve/*.sh), the Python tests
and the fuzz seed corpus use.

    /usr/bin/python3 tests/serve/make_models.py OUTDIR

  mlp.onnx     x FP32 [batch,4] -> y = x @ W + b  FP32 [batch,3]
                                -> s = sum(y, axis 1) FP32 [batch,1]
               W = [[1,0,0],[0,1,0],[0,0,1],[1,1,1]], b = [0.5, -0.5, 0]: exact in float32
  fixed.onnx   a INT64 [2], b INT64 [2] -> c = a + b INT64 [2]  (no dynamic dims)
  types.onnx   h FP16 [n], i INT32 [n], f BOOL [n], u UINT8 [n], d FP64 [n]
               -> Identity of each: h_out, i_out, f_out, u_out, d_out
  cnn.onnx     x FP32 [batch,3,16,16] -> Conv 8x3x3x3 -> Relu -> GlobalAveragePool
               -> Flatten -> Gemm 10 -> y FP32 [batch,10]   (seeded random weights)
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def save(graph, path, opset=13):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="pillar-tests")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 1
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    p = lambda n: os.path.join(out, n)

    W = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=np.float32)
    b = np.array([0.5, -0.5, 0], dtype=np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]),
         helper.make_node("Add", ["xw", "b"], ["y"]),
         helper.make_node("ReduceSum", ["y", "axes"], ["s"], keepdims=1)],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, ["batch", 1])],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b"),
                     numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")])
    save(g, p("mlp.onnx"))

    g = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])], "fixed",
        [helper.make_tensor_value_info("a", TensorProto.INT64, [2]),
         helper.make_tensor_value_info("b", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("c", TensorProto.INT64, [2])])
    save(g, p("fixed.onnx"))

    types = [("h", TensorProto.FLOAT16), ("i", TensorProto.INT32), ("f", TensorProto.BOOL),
             ("u", TensorProto.UINT8), ("d", TensorProto.DOUBLE)]
    g = helper.make_graph(
        [helper.make_node("Identity", [n], [n + "_out"]) for n, _ in types], "types",
        [helper.make_tensor_value_info(n, t, ["n"]) for n, t in types],
        [helper.make_tensor_value_info(n + "_out", t, ["n"]) for n, t in types])
    save(g, p("types.onnx"))

    rng = np.random.default_rng(7)
    cw = (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
    cb = (rng.standard_normal(8) * 0.1).astype(np.float32)
    gw = (rng.standard_normal((10, 8)) * 0.3).astype(np.float32)
    gb = (rng.standard_normal(10) * 0.1).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["r"]),
         helper.make_node("GlobalAveragePool", ["r"], ["p"]),
         helper.make_node("Flatten", ["p"], ["f"]),
         helper.make_node("Gemm", ["f", "gw", "gb"], ["y"], transB=1)],
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])],
        initializer=[numpy_helper.from_array(cw, "cw"), numpy_helper.from_array(cb, "cb"),
                     numpy_helper.from_array(gw, "gw"), numpy_helper.from_array(gb, "gb")])
    save(g, p("cnn.onnx"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
