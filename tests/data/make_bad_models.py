#!/usr/bin/python3
"""Writes broken model files and broken .npy inputs for tests/cli/bad_input.sh. Every
file is something a user or an attacker could hand to pillar; pillar must reject each
one with a clear message and the right exit code, without crashing or leaking.

    /usr/bin/python3 tests/data/make_bad_models.py OUTDIR

Models (OUTDIR/*.onnx):
  good.onnx             valid: A[2,3] float32 + B[2,3] -> C (the base for the .npy cases)
  dynamic.onnx          valid: X[batch,4] -> Relu -> Y
  truncated.onnx        the first half of a valid model with weights
  random.onnx           4 KiB of seeded random bytes
  empty.onnx            0 bytes
  missing_init.onnx     Conv's weight 'W_missing' is neither an input, an initializer
                        nor produced by a node
  dangling.onnx         graph output 'ghost' is produced by no node
  cycle.onnx            node_a reads node_b's output and node_b reads node_a's
  unknown_op.onnx       node 'mystery_node' has op_type 'FooBarOp'
  bad_attr.onnx         Conv 'conv_bad' with auto_pad = 'BOGUS_PAD'
  bad_attr_mode.onnx    Resize 'resize_bad' with mode = 'lanczos' (not an ONNX mode)
  overflow_input.onnx   input X declared [2^32, 2^32, 2^32]: numel overflows int64
  overflow_init.onnx    initializer 'huge' declared [2^32, 2^32, 2^32] with no data
  bad_rank.onnx         Conv 'conv_rank' whose weight has 3 dims (4 expected)
Inputs for good.onnx (OUTDIR/*.npy):
  a.npy, b.npy          valid
  f64.npy               float64 [2,3] (wrong dtype)
  shape32.npy           float32 [3,2] (wrong shape)
  size4.npy             float32 [4] (wrong size and rank)
  dyn24.npy             float32 [2,4], valid for dynamic.onnx
  truncated.npy         valid header, half of the data
  garbage.npy           random bytes
  fortran.npy           float32 [2,3] in Fortran order
  bad_header.npy        magic right, header not a dict
  huge_shape.npy        header shape (2^40, 2^40) with 24 bytes of data
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
F = TensorProto.FLOAT


def model_of(nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, "bad", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="pillar-tests")
    m.ir_version = 8
    return m


def vi(name, dims, t=F):
    return helper.make_tensor_value_info(name, t, dims)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 1
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    p = lambda n: os.path.join(out, n)
    rng = np.random.default_rng(99)

    good = model_of([helper.make_node("Add", ["A", "B"], ["C"], name="add0")],
                    [vi("A", [2, 3]), vi("B", [2, 3])], [vi("C", [2, 3])])
    onnx.save(good, p("good.onnx"))
    onnx.save(model_of([helper.make_node("Relu", ["X"], ["Y"], name="relu0")],
                       [vi("X", ["batch", 4])], [vi("Y", ["batch", 4])]), p("dynamic.onnx"))

    # a model with real weights, cut in the middle of an initializer
    w = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    conv = model_of([helper.make_node("Conv", ["X", "W"], ["Y"], name="conv0", pads=[1, 1, 1, 1])],
                    [vi("X", [1, 3, 8, 8])], [vi("Y", [1, 16, 8, 8])],
                    [numpy_helper.from_array(w, "W")])
    raw = conv.SerializeToString()
    write(p("truncated.onnx"), raw[: len(raw) // 2])
    write(p("random.onnx"), rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    write(p("empty.onnx"), b"")

    onnx.save(model_of([helper.make_node("Conv", ["X", "W_missing"], ["Y"], name="conv_mi")],
                       [vi("X", [1, 3, 8, 8])], [vi("Y", [1, 16, 6, 6])]), p("missing_init.onnx"))

    onnx.save(model_of([helper.make_node("Relu", ["X"], ["Y"], name="relu_d")],
                       [vi("X", [2])], [vi("Y", [2]), vi("ghost", [2])]), p("dangling.onnx"))

    onnx.save(model_of([helper.make_node("Add", ["X", "b_out"], ["a_out"], name="node_a"),
                        helper.make_node("Relu", ["a_out"], ["b_out"], name="node_b")],
                       [vi("X", [2])], [vi("b_out", [2])]), p("cycle.onnx"))

    onnx.save(model_of([helper.make_node("FooBarOp", ["X"], ["Y"], name="mystery_node")],
                       [vi("X", [2])], [vi("Y", [2])]), p("unknown_op.onnx"))

    wb = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    onnx.save(model_of([helper.make_node("Conv", ["X", "W"], ["Y"], name="conv_bad",
                                         auto_pad="BOGUS_PAD")],
                       [vi("X", [1, 3, 8, 8])], [vi("Y", [1, 4, 8, 8])],
                       [numpy_helper.from_array(wb, "W")]), p("bad_attr.onnx"))

    big = 2**32
    onnx.save(model_of([helper.make_node("Relu", ["X"], ["Y"], name="relu_big")],
                       [vi("X", [big, big, big])], [vi("Y", [big, big, big])]),
              p("overflow_input.onnx"))

    huge = TensorProto()
    huge.name = "huge"
    huge.data_type = F
    huge.dims.extend([big, big, big])
    onnx.save(model_of([helper.make_node("Add", ["X", "huge"], ["Y"], name="add_huge")],
                       [vi("X", [2])], [vi("Y", [2])], [huge]), p("overflow_init.onnx"))

    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "scales")
    onnx.save(model_of([helper.make_node("Resize", ["X", "", "scales"], ["Y"], name="resize_bad",
                                         mode="lanczos")],
                       [vi("X", [1, 1, 4, 4])], [vi("Y", [1, 1, 8, 8])], [scales]),
              p("bad_attr_mode.onnx"))

    w3 = rng.standard_normal((4, 3, 3)).astype(np.float32)
    onnx.save(model_of([helper.make_node("Conv", ["X", "W"], ["Y"], name="conv_rank")],
                       [vi("X", [1, 3, 8, 8])], [vi("Y", [1, 4, 6, 6])],
                       [numpy_helper.from_array(w3, "W")]), p("bad_rank.onnx"))

    # inputs for good.onnx
    a = rng.standard_normal((2, 3)).astype(np.float32)
    np.save(p("a.npy"), a)
    np.save(p("b.npy"), a * 2)
    np.save(p("f64.npy"), a.astype(np.float64))
    np.save(p("shape32.npy"), a.reshape(3, 2))
    np.save(p("size4.npy"), np.zeros(4, dtype=np.float32))
    np.save(p("dyn24.npy"), np.ones((2, 4), dtype=np.float32))
    full = open(p("a.npy"), "rb").read()
    write(p("truncated.npy"), full[: len(full) - 12])
    write(p("garbage.npy"), rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    np.save(p("fortran.npy"), np.asfortranarray(a))
    hdr = b"not a dict at all".ljust(63) + b"\n"
    write(p("bad_header.npy"), b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr)
    hdr = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }"
    hdr = hdr.ljust(117) + b"\n"
    write(p("huge_shape.npy"),
          b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr + bytes(24))
    return 0


if __name__ == "__main__":
    sys.exit(main())
