#!/usr/bin/python3
"""Exports the models pillar is compared on (ResNet, MobileNetV2, a BERT-like encoder)
to ONNX with random weights from a fixed seed, plus seeded random inputs for each and
PyTorch's own outputs for them.

For every model NAME written to --out DIR:
    DIR/NAME.onnx                 the model (eval mode, constant folding on)
    DIR/NAME.inputs/<input>.npy   seeded random inputs (one file per graph input)
    DIR/NAME.torch/<output>.npy   PyTorch's outputs on those inputs (a third opinion)
    DIR/NAME.shape                "input=2x3x64x64" per input with symbolic dims (for
                                  the CLI's --shape; empty if none)

Run with Debian's python (torch 1.13, torchvision 0.14, onnx 1.12):
    /usr/bin/python3 bench/models/export.py --models small --out /tmp/m
    /usr/bin/python3 bench/models/export.py --models resnet50,bert_like --out bench/out
--models takes names and the groups "big", "small" and "all"; --list shows them.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torchvision


# ---------------------------------------------------------------- BERT-like encoder
# Written by hand (not nn.TransformerEncoder) so the export is plain MatMul/Add/Softmax/
# Erf/ReduceMean graphs like the ones HuggingFace BERT exports produce at opset 13.
class SelfAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.q = nn.Linear(hidden, hidden)
        self.k = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)

    def split(self, x):
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x, mask_bias):
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        probs = torch.softmax(scores + mask_bias, dim=-1)
        ctx = torch.matmul(probs, v).transpose(1, 2)
        b, s = ctx.shape[0], ctx.shape[1]
        return self.out(ctx.reshape(b, s, self.heads * self.head_dim))


class EncoderLayer(nn.Module):
    def __init__(self, hidden, heads, ffn):
        super().__init__()
        self.attn = SelfAttention(hidden, heads)
        self.ln1 = nn.LayerNorm(hidden, eps=1e-12)
        self.ffn_in = nn.Linear(hidden, ffn)
        self.act = nn.GELU()
        self.ffn_out = nn.Linear(ffn, hidden)
        self.ln2 = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x, mask_bias):
        x = self.ln1(x + self.attn(x, mask_bias))
        return self.ln2(x + self.ffn_out(self.act(self.ffn_in(x))))


class BertLike(nn.Module):
    """Token ids + attention mask (int64, batch x seq) -> last hidden state and the
    tanh-pooled first token, like BERT's encoder."""

    def __init__(self, vocab, hidden, layers, heads, ffn, max_pos=512):
        super().__init__()
        self.word = nn.Embedding(vocab, hidden)
        self.pos = nn.Embedding(max_pos, hidden)
        self.emb_ln = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList([EncoderLayer(hidden, heads, ffn) for _ in range(layers)])
        self.pool = nn.Linear(hidden, hidden)
        self.register_buffer("position_ids", torch.arange(max_pos).unsqueeze(0))

    def forward(self, input_ids, attention_mask):
        seq = input_ids.shape[1]
        x = self.word(input_ids) + self.pos(self.position_ids[:, :seq])
        x = self.emb_ln(x)
        # 0 where attended, -10000 where masked, broadcast over heads and query rows.
        mask_bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, mask_bias)
        pooled = torch.tanh(self.pool(x[:, 0]))
        return x, pooled


def bert_init(model):
    # BERT's initialisation: N(0, 0.02) weights, zero biases; LayerNorm gains near 1.
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.bias, 0.0, 0.02)
        elif isinstance(m, nn.LayerNorm):
            nn.init.uniform_(m.weight, 0.8, 1.2)
            nn.init.normal_(m.bias, 0.0, 0.05)
    return model


# ---------------------------------------------------------------- CNNs
def calibrate_bn(model, shape):
    """Random BatchNorm affine parameters, then running statistics measured on random
    images, so that activations keep a realistic scale through deep networks (freshly
    initialised statistics, mean 0 / var 1, let them grow block after block)."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        nn.init.uniform_(m.weight, 0.5, 1.5)
        nn.init.normal_(m.bias, 0.0, 0.1)
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, *shape[1:]))
    return model


def cnn(builder, shape, **kw):
    def make():
        return calibrate_bn(builder(**kw), shape)
    return make


# ---------------------------------------------------------------- the model table
# name -> dict(make, inputs=[(name, shape, kind)], outputs, dynamic={input: {axis: sym}},
#              batch=value of the symbolic batch for the generated inputs, group)
IMG = "image"
IDS = "ids"
MASK = "mask"


def image_model(make, hw, batch=1, dynamic=False, group="big"):
    shape = (batch, 3, hw, hw)
    spec = dict(make=make, inputs=[("input", shape, IMG)], outputs=["logits"], group=group)
    if dynamic:
        spec["dynamic"] = {"input": {0: "batch"}, "logits": {0: "batch"}}
    return spec


def bert_model(vocab, hidden, layers, heads, ffn, seq, group):
    def make():
        return bert_init(BertLike(vocab, hidden, layers, heads, ffn))
    return dict(make=make, vocab=vocab,
                inputs=[("input_ids", (1, seq), IDS), ("attention_mask", (1, seq), MASK)],
                outputs=["last_hidden_state", "pooled"], group=group)


MODELS = {
    # the three big ones the comparison script runs
    "resnet50": image_model(cnn(torchvision.models.resnet50, (1, 3, 224, 224)), 224),
    "mobilenet_v2": image_model(cnn(torchvision.models.mobilenet_v2, (1, 3, 224, 224)), 224),
    "bert_like": bert_model(30522, 768, 12, 12, 3072, 128, "big"),
    # ResNet-50 with a symbolic batch axis "batch", inputs made at batch 16
    "resnet50_dyn": image_model(cnn(torchvision.models.resnet50, (1, 3, 224, 224)), 224,
                                batch=16, dynamic=True, group="extra"),
    # small variants for the ctest "model" label
    "resnet18_small": image_model(cnn(torchvision.models.resnet18, (1, 3, 64, 64)), 64,
                                  group="small"),
    "mobilenet_v2_small": image_model(cnn(torchvision.models.mobilenet_v2, (1, 3, 64, 64),
                                          width_mult=0.35), 64, group="small"),
    "bert_tiny": bert_model(1000, 128, 2, 4, 512, 16, "small"),
    # symbolic batch, inputs made at batch 3: tests --shape
    "resnet18_dyn": image_model(cnn(torchvision.models.resnet18, (1, 3, 64, 64)), 64,
                                batch=3, dynamic=True, group="small"),
}
GROUPS = {
    "big": ["resnet50", "mobilenet_v2", "bert_like"],
    "small": [n for n, s in MODELS.items() if s["group"] == "small"],
}
GROUPS["all"] = list(MODELS)


def make_inputs(spec, seed):
    rng = np.random.RandomState(seed)
    out = {}
    for name, shape, kind in spec["inputs"]:
        if kind == IMG:
            out[name] = rng.standard_normal(shape).astype(np.float32)
        elif kind == IDS:
            out[name] = rng.randint(0, spec["vocab"], size=shape).astype(np.int64)
        else:  # attention mask: a random-length prefix attended, the rest padding
            m = np.zeros(shape, dtype=np.int64)
            for b in range(shape[0]):
                m[b, :rng.randint(shape[1] // 2, shape[1] + 1)] = 1
            out[name] = m
    return out


def save_npy_dir(path, arrays):
    os.makedirs(path, exist_ok=True)
    for name, a in arrays.items():
        np.save(os.path.join(path, name + ".npy"), np.ascontiguousarray(a))


def export_one(name, out_dir, opset, seed):
    spec = MODELS[name]
    torch.manual_seed(seed)  # the same weights whatever else is exported in this run
    model = spec["make"]().eval()
    inputs = make_inputs(spec, seed)
    args = tuple(torch.from_numpy(inputs[n]) for n, _, _ in spec["inputs"])
    path = os.path.join(out_dir, name + ".onnx")
    dynamic = spec.get("dynamic")
    with torch.no_grad():
        torch.onnx.export(model, args, path, input_names=[n for n, _, _ in spec["inputs"]],
                          output_names=spec["outputs"], dynamic_axes=dynamic,
                          opset_version=opset, do_constant_folding=True)
        ref = model(*args)
    onnx.checker.check_model(onnx.load(path))
    if not isinstance(ref, (tuple, list)):
        ref = (ref,)
    save_npy_dir(os.path.join(out_dir, name + ".inputs"), inputs)
    save_npy_dir(os.path.join(out_dir, name + ".torch"),
                 {o: r.numpy() for o, r in zip(spec["outputs"], ref)})
    # One line "input=d0xd1x..." per input with symbolic dims: the concrete shape the
    # generated inputs have, for the CLI's --shape.
    with open(os.path.join(out_dir, name + ".shape"), "w") as f:
        for n, _, _ in spec["inputs"]:
            if dynamic and n in dynamic:
                f.write("%s=%s\n" % (n, "x".join(str(d) for d in inputs[n].shape)))
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="big",
                    help="comma-separated names or groups (big, small, all); default big")
    ap.add_argument("--out", default=os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "out")),
                    help="output directory (default bench/out)")
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true",
                    help="export again even if NAME.onnx is already there")
    ap.add_argument("--list", action="store_true", help="list models and groups")
    ap.add_argument("--resolve", action="store_true",
                    help="print the model names --models stands for and exit")
    a = ap.parse_args()
    if a.list:
        for n, s in MODELS.items():
            shapes = ", ".join("%s %s" % (i, "x".join(map(str, sh))) for i, sh, _ in s["inputs"])
            print("%-20s %-6s %s%s" % (n, s["group"], shapes,
                                       "  (symbolic batch)" if s.get("dynamic") else ""))
        for g, names in GROUPS.items():
            print("group %-6s %s" % (g, " ".join(names)))
        return 0
    names = []
    for n in a.models.split(","):
        n = n.strip()
        for m in GROUPS.get(n, [n]):
            if m not in MODELS:
                print("export.py: unknown model '%s' (try --list)" % m, file=sys.stderr)
                return 2
            if m not in names:
                names.append(m)
    if a.resolve:
        print(" ".join(names))
        return 0
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for n in names:
        path = os.path.join(a.out, n + ".onnx")
        if not a.force and all(os.path.exists(os.path.join(a.out, n + s))
                               for s in (".onnx", ".inputs", ".torch", ".shape")):
            print("%-20s up to date (%s)" % (n, path))
            continue
        t = time.time()
        export_one(n, a.out, a.opset, a.seed)
        print("%-20s %6.1f MB  %5.1f s  -> %s" % (n, os.path.getsize(path) / 1e6,
                                                 time.time() - t, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
