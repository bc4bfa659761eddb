#!/usr/bin/python3
"""gen_xc.py -- synthetic extreme-classification data in the public repository's text
format ("POINTS FEATURES LABELS" header, then "l1,l2 f:v f:v ..." per point), with a
learnable structure:

  * labels fall into topics; each label's prototype is a sparse set of features, some
    shared by its topic and some its own, with positive weights;
  * label popularity follows a Zipf law (random label ids, so popular labels are
    scattered), as in real extreme-classification data;
  * a point picks 1..max labels (the extra ones mostly from the first label's topic)
    and is a noisy mix of their prototypes: each prototype feature is kept with
    probability --keep and scaled by random noise, plus --noise random features; the
    vector is L2-normalised.

    gen_xc.py OUT_PREFIX --labels 100000 --features 135909 --train 200000 --test 10000

writes OUT_PREFIX_train.txt and OUT_PREFIX_test.txt (same generator, disjoint draws).
"""
import argparse
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="output prefix: writes OUT_train.txt and OUT_test.txt")
    ap.add_argument("--labels", type=int, default=10000)
    ap.add_argument("--features", type=int, default=20000)
    ap.add_argument("--train", type=int, default=20000, help="training points")
    ap.add_argument("--test", type=int, default=2000, help="test points")
    ap.add_argument("--topics", type=int, default=0, help="label topics (default labels/50)")
    ap.add_argument("--topic-features", type=int, default=30, help="features per topic")
    ap.add_argument("--own-features", type=int, default=12, help="features of a label's own")
    ap.add_argument("--shared-features", type=int, default=6,
                    help="features a label takes from its topic's set")
    ap.add_argument("--mean-labels", type=float, default=2.0, help="mean labels per point")
    ap.add_argument("--max-labels", type=int, default=8)
    ap.add_argument("--keep", type=float, default=0.6, help="probability a prototype feature appears")
    ap.add_argument("--noise", type=int, default=8, help="random noise features per point")
    ap.add_argument("--zipf", type=float, default=0.9, help="label popularity exponent (0 = uniform)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.labels < 1 or a.features < 1 or a.train < 0 or a.test < 0:
        sys.exit("gen_xc.py: sizes must be positive")
    rng = np.random.default_rng(a.seed)
    C, F = a.labels, a.features
    T = a.topics or max(1, C // 50)

    # prototypes: topic features (shared) + own features, weights in [0.5, 1.5)
    topic_of = rng.integers(0, T, size=C)
    topic_feats = rng.integers(0, F, size=(T, a.topic_features))
    ns, no = min(a.shared_features, a.topic_features), a.own_features
    pick = np.argsort(rng.random((C, a.topic_features)), axis=1)[:, :ns]
    shared = np.take_along_axis(topic_feats[topic_of], pick, axis=1)
    own = rng.integers(0, F, size=(C, no))
    proto_f = np.concatenate([shared, own], axis=1)  # C x P
    proto_w = rng.uniform(0.5, 1.5, size=proto_f.shape).astype(np.float32)
    labels_by_topic = [[] for _ in range(T)]
    for j, t in enumerate(topic_of):
        labels_by_topic[t].append(j)
    labels_by_topic = [np.array(l, dtype=np.int64) for l in labels_by_topic]

    # Zipf popularity over a random order of the labels
    ranks = np.arange(1, C + 1, dtype=np.float64)
    pop = ranks ** (-a.zipf)
    pop /= pop.sum()
    order = rng.permutation(C)
    popularity = np.empty(C)
    popularity[order] = pop
    cdf = np.cumsum(popularity)
    cdf[-1] = 1.0

    def zipf_draw(k):
        return np.minimum(np.searchsorted(cdf, rng.random(k), side="right"), C - 1)

    def write(path, n):
        first = zipf_draw(n)
        extra = zipf_draw(n * a.max_labels).reshape(n, a.max_labels)
        nlab = np.clip(1 + rng.poisson(max(a.mean_labels - 1, 0), size=n), 1, a.max_labels)
        with open(path, "w") as f:
            f.write("%d %d %d\n" % (n, F, C))
            lines = []
            for i in range(n):
                labs = [int(first[i])]
                same_topic = labels_by_topic[topic_of[first[i]]]
                tries = 0
                while len(labs) < nlab[i] and tries < 4 * a.max_labels:
                    if rng.random() < 0.6 and len(same_topic) > len(labs):
                        c = int(same_topic[rng.integers(len(same_topic))])
                    else:
                        c = int(extra[i, tries % a.max_labels])
                    tries += 1
                    if c not in labs:
                        labs.append(c)
                L = np.array(labs)
                pf = proto_f[L].ravel()
                pw = proto_w[L].ravel() * rng.uniform(0.5, 1.5, size=pf.size).astype(np.float32)
                keep = rng.random(pf.size) < a.keep
                feats = np.concatenate([pf[keep], rng.integers(0, F, size=a.noise)])
                vals = np.concatenate([pw[keep], rng.uniform(0.2, 1.0, size=a.noise).astype(np.float32)])
                uf, inv = np.unique(feats, return_inverse=True)
                uv = np.zeros(uf.size, dtype=np.float64)
                np.add.at(uv, inv, vals)
                uv /= max(np.linalg.norm(uv), 1e-12)
                lines.append(",".join(map(str, sorted(labs))) + " " +
                             " ".join("%d:%.5f" % (fi, vi) for fi, vi in zip(uf.tolist(), uv.tolist())))
                if len(lines) >= 4096:
                    f.write("\n".join(lines) + "\n")
                    lines = []
            if lines:
                f.write("\n".join(lines) + "\n")

    write(a.out + "_train.txt", a.train)
    write(a.out + "_test.txt", a.test)


if __name__ == "__main__":
    main()
