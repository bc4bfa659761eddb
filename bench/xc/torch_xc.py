#!/usr/bin/python3
"""torch_xc.py -- the PyTorch baseline for `pillar train-xc`: the same network (sparse
input -> ReLU hidden layer -> one output per label), the same initialisation
(Glorot-uniform, zero biases), the same loss (softmax cross-entropy against the
uniform distribution over a point's labels) and Adam, with a full softmax over every
label. The input layer is an EmbeddingBag with sparse gradients (SparseAdam), the
fastest standard way to train it in PyTorch on a CPU.

    torch_xc.py TRAIN TEST --hidden 128 --epochs 2 --batch 128 --lr 1e-3 --threads 2
                --eval-every 400 --eval-points 5000 --log torch.csv

Writes the same CSV columns as `pillar train-xc --log` (seconds = training time,
evaluations excluded).
"""
import argparse
import sys
import time

import numpy as np
import torch


def read_xc(path):
    with open(path) as f:
        n, nf, nl = map(int, f.readline().split())
        row, feat, val, lrow, lab = [0], [], [], [0], []
        for line in f:
            if not line.strip() and len(row) > n:
                continue
            parts = line.split()
            if line[0] not in " \t" and parts and ":" not in parts[0]:
                lab.extend(int(x) for x in parts[0].split(","))
                parts = parts[1:]
            for p in parts:
                a, b = p.split(":")
                feat.append(int(a))
                val.append(float(b))
            row.append(len(feat))
            lrow.append(len(lab))
    return (n, nf, nl, np.array(row, np.int64), np.array(feat, np.int64),
            np.array(val, np.float32), np.array(lrow, np.int64), np.array(lab, np.int64))


class Net(torch.nn.Module):
    def __init__(self, nf, h, nl):
        super().__init__()
        self.emb = torch.nn.EmbeddingBag(nf, h, mode="sum", sparse=True)
        self.b1 = torch.nn.Parameter(torch.zeros(h))
        self.out = torch.nn.Linear(h, nl)
        with torch.no_grad():
            a1 = (6.0 / (nf + h)) ** 0.5
            a2 = (6.0 / (nl + h)) ** 0.5
            self.emb.weight.uniform_(-a1, a1)
            self.out.weight.uniform_(-a2, a2)
            self.out.bias.zero_()

    def forward(self, feat, offsets, vals):
        h = torch.relu(self.emb(feat, offsets, per_sample_weights=vals) + self.b1)
        return self.out(h)


def batch_tensors(d, idx):
    _, _, _, row, feat, val, _, _ = d
    starts, ends = row[idx], row[idx + 1]
    lens = ends - starts
    sel = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(idx) else np.zeros(0, np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens)[:-1]]) if len(idx) else np.zeros(0, np.int64)
    return (torch.from_numpy(feat[sel]), torch.from_numpy(offsets.astype(np.int64)),
            torch.from_numpy(val[sel]))


def evaluate(model, d, npts):
    n = d[0] if npts <= 0 else min(npts, d[0])
    lrow, lab = d[6], d[7]
    h1 = h3 = h5 = 0.0
    model.eval()
    with torch.no_grad():
        for s in range(0, n, 256):
            idx = np.arange(s, min(n, s + 256))
            top = torch.topk(model(*batch_tensors(d, idx)), 5, dim=1).indices.numpy()
            for r, i in enumerate(idx):
                y = set(lab[lrow[i]:lrow[i + 1]].tolist())
                hits = [int(t) in y for t in top[r]]
                h1 += hits[0]
                h3 += sum(hits[:3])
                h5 += sum(hits)
    model.train()
    return n, h1 / n, h3 / (3 * n), h5 / (5 * n)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("train")
    ap.add_argument("test")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=0)
    ap.add_argument("--eval-points", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t0 = time.time()
    tr = read_xc(a.train)
    te = read_xc(a.test)
    blas = sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.lower() and "/" in l})
    print("torch_xc: read %d + %d points in %.1f s, torch %s, %d threads, BLAS %s" %
          (tr[0], te[0], time.time() - t0, torch.__version__, torch.get_num_threads(),
           ", ".join(blas) or "?"), flush=True)
    n, nf, nl = tr[0], tr[1], tr[2]
    model = Net(nf, a.hidden, nl)
    opt_sparse = torch.optim.SparseAdam([model.emb.weight], lr=a.lr)
    opt_dense = torch.optim.Adam([model.b1, model.out.weight, model.out.bias], lr=a.lr)
    log = open(a.log, "w") if a.log else None
    if log:
        log.write("epoch,batch,seconds,p_at_1,p_at_3,p_at_5,loss,active,rebuilds\n")
    rng = np.random.default_rng(a.seed)
    lrow, lab = tr[6], tr[7]
    train_time, step, loss_acc, ex_acc = 0.0, 0, 0.0, 0
    nb = (n + a.batch - 1) // a.batch
    stop = False
    for epoch in range(1, a.epochs + 1):
        perm = rng.permutation(n)
        for b in range(nb):
            t = time.time()
            idx = perm[b * a.batch:(b + 1) * a.batch]
            # soft targets: 1/|y| on each label
            rows = np.repeat(np.arange(len(idx)), lrow[idx + 1] - lrow[idx])
            cols = np.concatenate([lab[lrow[i]:lrow[i + 1]] for i in idx])
            w = np.repeat(1.0 / np.maximum(lrow[idx + 1] - lrow[idx], 1), lrow[idx + 1] - lrow[idx])
            logits = model(*batch_tensors(tr, idx))
            logp = torch.log_softmax(logits, dim=1)
            loss = -(logp[torch.from_numpy(rows), torch.from_numpy(cols)] *
                     torch.from_numpy(w.astype(np.float32))).sum() / len(idx)
            opt_sparse.zero_grad()
            opt_dense.zero_grad()
            loss.backward()
            opt_sparse.step()
            opt_dense.step()
            train_time += time.time() - t
            step += 1
            loss_acc += float(loss) * len(idx)
            ex_acc += len(idx)
            last = b == nb - 1
            stop = a.time_limit > 0 and train_time >= a.time_limit
            if (a.eval_every and step % a.eval_every == 0) or last or stop:
                m, p1, p3, p5 = evaluate(model, te, a.eval_points)
                print("epoch %d  batch %d  %.1f s  P@1 %.4f  P@3 %.4f  P@5 %.4f  loss %.4f" %
                      (epoch, step, train_time, p1, p3, p5, loss_acc / ex_acc), flush=True)
                if log:
                    log.write("%d,%d,%.3f,%.6f,%.6f,%.6f,%.6f,%d,0\n" %
                              (epoch, step, train_time, p1, p3, p5, loss_acc / ex_acc, nl))
                    log.flush()
                loss_acc, ex_acc = 0.0, 0
            if stop:
                break
        if stop:
            break
    if log:
        log.close()


if __name__ == "__main__":
    sys.exit(main())
