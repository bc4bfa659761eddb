#!/usr/bin/env python3
"""The PyTorch side of bench/train_compare.sh: trains the same ONNX model that `pillar
train` trains (e.g. from `pillar zoo`), starting from the same initial weights, on the
same data, in the same order (the same seeded shuffle per epoch as pillar), with the same
batch, optimizer and thread count; then prints one JSON line with its throughput and
accuracy.

    bench/train_torch.py MODEL.onnx --threads N [--epochs 5] [--batch 64]
        [--optimizer adam] [--lr 0.001] [--momentum 0] [--weight-decay 0]
        [--limit N] [--test-limit N] [--seed 0] [--data DIR] [--csv FILE] [--probe STEPS]

The network is rebuilt from the ONNX graph as torch operations whose parameters are the
model's float initializers, so both trainers start from identical weights. Examples/s
counts training steps only (the batch gathering included, evaluation excluded), as
pillar's examples_per_s does; examples_per_cpu_s divides by the process CPU time of those
steps instead (all threads), as pillar's train_cpu_seconds column does. --probe STEPS times only STEPS steps after a warm-up (used
to choose PyTorch's fastest OpenMP setting before the full run).
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn.functional as F

MASK = (1 << 64) - 1


def splitmix(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def permutation(n, seed):
    """pillar's td_permutation: Fisher-Yates driven by splitmix64."""
    perm = list(range(n))
    st = seed & MASK
    for i in range(n - 1, 0, -1):
        st, r = splitmix(st)
        j = r % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return np.array(perm, dtype=np.int64)


def read_idx(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        data = f.read()
    zero, typ, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or typ != 8:
        sys.exit("%s: not a uint8 IDX file" % path)
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(d, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    sys.exit("%s: no %s[.gz]" % (d, stem))


def load_data(d):
    xs = [read_idx(find(d, p + "-images-idx3-ubyte")) for p in ("train", "t10k")]
    ys = [read_idx(find(d, p + "-labels-idx1-ubyte")) for p in ("train", "t10k")]
    xs = [x.astype(np.float32).reshape(len(x), -1) / np.float32(255) for x in xs]
    ys = [y.astype(np.int64) for y in ys]
    return xs[0], ys[0], xs[1], ys[1]


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


class OnnxNet(torch.nn.Module):
    """Runs an ONNX graph with torch ops; float initializers are parameters (running
    statistics of BatchNorm are buffers)."""

    def __init__(self, model):
        super().__init__()
        g = model.graph
        self.nodes = list(g.node)
        self.input = g.input[0].name
        self.output = g.output[0].name
        self.params = torch.nn.ParameterDict()
        self.consts = {}
        running = set()
        for n in self.nodes:
            if n.op_type == "BatchNormalization":
                running.update(n.input[3:5])
        self.key = {}
        for i, t in enumerate(g.initializer):
            arr = numpy_helper.to_array(t).copy()
            k = "p%d" % i
            self.key[t.name] = k
            if arr.dtype == np.float32 and t.name not in running:
                self.params[k] = torch.nn.Parameter(torch.from_numpy(arr))
            else:
                self.register_buffer(k, torch.from_numpy(arr))
                self.consts[t.name] = k

    def value(self, env, name):
        if name in env:
            return env[name]
        k = self.key[name]
        return self.params[k] if k in self.params else getattr(self, k)

    def forward(self, x):
        env = {self.input: x}
        for n in self.nodes:
            a = [self.value(env, i) if i else None for i in n.input]
            op = n.op_type
            if op == "Conv":
                pads = attr(n, "pads", [0, 0, 0, 0])
                if pads[0] != pads[2] or pads[1] != pads[3]:
                    sys.exit("asymmetric padding is not supported here")
                y = F.conv2d(a[0], a[1], a[2] if len(a) > 2 else None, stride=tuple(attr(n, "strides", [1, 1])),
                             padding=(pads[0], pads[1]), dilation=tuple(attr(n, "dilations", [1, 1])),
                             groups=attr(n, "group", 1))
            elif op == "Relu":
                y = F.relu(a[0])
            elif op == "MaxPool":
                pads = attr(n, "pads", [0, 0, 0, 0])
                y = F.max_pool2d(a[0], tuple(attr(n, "kernel_shape")), tuple(attr(n, "strides", [1, 1])),
                                 (pads[0], pads[1]))
            elif op == "AveragePool":
                pads = attr(n, "pads", [0, 0, 0, 0])
                y = F.avg_pool2d(a[0], tuple(attr(n, "kernel_shape")), tuple(attr(n, "strides", [1, 1])),
                                 (pads[0], pads[1]), count_include_pad=bool(attr(n, "count_include_pad", 0)))
            elif op == "GlobalAveragePool":
                y = a[0].mean(dim=(2, 3), keepdim=True)
            elif op == "Flatten":
                y = torch.flatten(a[0], attr(n, "axis", 1))
            elif op == "Gemm":
                A = a[0].t() if attr(n, "transA", 0) else a[0]
                B = a[1].t() if attr(n, "transB", 0) else a[1]
                y = attr(n, "alpha", 1.0) * (A @ B)
                if len(a) > 2 and a[2] is not None:
                    y = y + attr(n, "beta", 1.0) * a[2]
            elif op == "MatMul":
                y = a[0] @ a[1]
            elif op == "Add":
                y = a[0] + a[1]
            elif op == "Mul":
                y = a[0] * a[1]
            elif op == "BatchNormalization":
                mom = attr(n, "momentum", 0.9)
                y = F.batch_norm(a[0], a[3], a[4], a[1], a[2], training=self.training, momentum=1 - mom,
                                 eps=attr(n, "epsilon", 1e-5))
            elif op == "Reshape":
                y = a[0].reshape([int(v) if v != 0 else a[0].shape[i] for i, v in enumerate(a[1].tolist())])
            elif op == "LogSoftmax":
                y = F.log_softmax(a[0], attr(n, "axis", -1))
            elif op == "Softmax":
                y = F.softmax(a[0], attr(n, "axis", -1))
            elif op in ("Dropout", "Identity"):
                y = a[0]
            else:
                sys.exit("op %s is not supported by train_torch.py" % op)
            env[n.output[0]] = y
        return env[self.output]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--optimizer", default="adam", choices=["sgd", "adam", "adamw"])
    ap.add_argument("--lr", type=float)
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--weight-decay", type=float)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--test-limit", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--loss", default="ce", choices=["ce", "nll"])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--csv")
    ap.add_argument("--probe", type=int, default=0)
    a = ap.parse_args()
    if a.lr is None:
        a.lr = 0.01 if a.optimizer == "sgd" else 0.001
    if a.weight_decay is None:
        a.weight_decay = 0.01 if a.optimizer == "adamw" else 0.0

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr, ytr, xte, yte = load_data(a.data)
    if a.limit:
        xtr, ytr = xtr[:a.limit], ytr[:a.limit]
    if a.test_limit:
        xte, yte = xte[:a.test_limit], yte[:a.test_limit]
    m = onnx.load(a.model)
    dims = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim][1:]
    net = OnnxNet(m)
    xtr_t = torch.from_numpy(xtr).reshape([-1] + dims)
    xte_t = torch.from_numpy(xte).reshape([-1] + dims)
    ytr_t, yte_t = torch.from_numpy(ytr), torch.from_numpy(yte)
    params = list(net.params.values())
    if a.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay)
    elif a.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=a.lr, weight_decay=a.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=a.weight_decay)
    lossf = F.cross_entropy if a.loss == "ce" else F.nll_loss
    n, b = len(xtr), a.batch
    spe = n // b

    def step(idx):
        opt.zero_grad(set_to_none=True)
        out = net(xtr_t[idx])
        loss = lossf(out, ytr_t[idx])
        loss.backward()
        opt.step()
        return float(loss), int((out.argmax(1) == ytr_t[idx]).sum())

    if a.probe:
        net.train()
        perm = torch.from_numpy(permutation(n, (a.seed * 0x9E3779B97F4A7C15 + 1) & MASK))
        warm = min(20, spe)
        for s in range(warm):
            step(perm[s * b:(s + 1) * b])
        steps = min(a.probe, spe - warm)
        t0, c0 = time.perf_counter(), time.process_time()
        for s in range(warm, warm + steps):
            step(perm[s * b:(s + 1) * b])
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        print(json.dumps({"examples_per_s": steps * b / dt, "examples_per_cpu_s": steps * b / dc, "threads": a.threads,
                          "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}))
        return

    rows, seen_all, train_s_all, train_cpu_all = [], 0, 0.0, 0.0
    for epoch in range(1, a.epochs + 1):
        net.train()
        perm = torch.from_numpy(permutation(n, (a.seed * 0x9E3779B97F4A7C15 + epoch) & MASK))
        t0, c0 = time.perf_counter(), time.process_time()
        lsum, correct = 0.0, 0
        for s in range(spe):
            l, c = step(perm[s * b:(s + 1) * b])
            lsum += l * b
            correct += c
        train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
        net.eval()
        with torch.no_grad():
            tl, tc = 0.0, 0
            for i in range(0, len(xte_t), 1000):
                out = net(xte_t[i:i + 1000])
                tl += float(lossf(out, yte_t[i:i + 1000], reduction="sum"))
                tc += int((out.argmax(1) == yte_t[i:i + 1000]).sum())
        row = {"epoch": epoch, "train_loss": lsum / (spe * b), "train_acc": correct / (spe * b),
               "test_loss": tl / len(xte_t), "test_acc": tc / len(xte_t), "seconds": time.perf_counter() - t0,
               "train_seconds": train_s, "examples_per_s": spe * b / train_s, "train_cpu_seconds": train_cpu}
        rows.append(row)
        seen_all += spe * b
        train_s_all += train_s
        train_cpu_all += train_cpu
        print("torch epoch %d/%d  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%  %.1f s  %.0f ex/s" % (
            epoch, a.epochs, row["train_loss"], 100 * row["train_acc"], row["test_loss"], 100 * row["test_acc"],
            row["seconds"], row["examples_per_s"]), file=sys.stderr, flush=True)
    if a.csv:
        with open(a.csv, "w") as f:
            keys = list(rows[0].keys())
            f.write(",".join(keys) + "\n")
            for r in rows:
                f.write(",".join(str(r[k]) for k in keys) + "\n")
    print(json.dumps({"examples_per_s": seen_all / train_s_all, "examples_per_cpu_s": seen_all / train_cpu_all,
                      "test_acc": rows[-1]["test_acc"],
                      "test_loss": rows[-1]["test_loss"], "threads": a.threads,
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
