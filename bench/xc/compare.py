#!/usr/bin/python3
"""compare.py -- P@1 against training time for the runs of bench/xc/run_bench.sh.

    compare.py lsh.csv dense.csv torch.csv [--names LSH,dense,PyTorch] [--tolerance 0.01]

Each CSV has one row per evaluation (columns epoch, seconds, p_at_1, p_at_5 at least,
as written by `pillar train-xc --log` and torch_xc.py). The target is the final P@1
of the second run (pillar's dense training) minus the tolerance; for every run it
prints when it first reached the target, the ratios, and a table of P@1 at common
times. Markdown on stdout.
"""
import argparse
import csv
import math


def load(path):
    rows = list(csv.DictReader(open(path)))
    return [(float(r["seconds"]), float(r["p_at_1"]), float(r["p_at_5"]), int(r["epoch"])) for r in rows]


def first_reach(rows, target):
    for s, p1, _, _ in rows:
        if p1 >= target:
            return s
    return None


def at_time(rows, t):
    best = None
    for s, p1, p5, _ in rows:
        if s <= t:
            best = (p1, p5)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--names", default="LSH (pillar),dense (pillar),PyTorch full softmax")
    ap.add_argument("--tolerance", type=float, default=0.01)
    a = ap.parse_args()
    names = a.names.split(",")
    runs = [load(p) for p in a.csv]
    ref = runs[1] if len(runs) > 1 else runs[0]
    final = ref[-1][1]
    target = final - a.tolerance
    print("target: P@1 >= %.4f (%s final P@1 %.4f minus %.2f)\n" % (target, names[1], final, a.tolerance))
    print("| run | evaluations | trained s | final P@1 | final P@5 | reached target at s |")
    print("|---|---|---|---|---|---|")
    reach = []
    for n, r in zip(names, runs):
        t = first_reach(r, target)
        reach.append(t)
        print("| %s | %d | %.1f | %.4f | %.4f | %s |" % (n, len(r), r[-1][0], r[-1][1], r[-1][2],
                                                        "%.1f" % t if t is not None else "not reached"))
    print()
    if reach[0] is not None:
        for n, r, t in zip(names[1:], runs[1:], reach[1:]):
            if t is not None:
                print("- %s reached the target %.1fx later than %s" % (n, t / reach[0], names[0]))
            else:
                print("- %s did not reach the target in %.1f s: at least %.1fx later than %s" %
                      (n, r[-1][0], r[-1][0] / reach[0], names[0]))
    print()
    tmax = max(r[-1][0] for r in runs)
    grid, t = [], 15.0
    while t < tmax * 1.5:
        grid.append(t)
        t *= 2
    print("| training s | " + " | ".join("%s P@1" % n for n in names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for t in grid:
        cells = []
        for r in runs:
            v = at_time(r, t)
            cells.append("%.4f" % v[0] if v else "-")
        print("| %g | %s |" % (t, " | ".join(cells)))


if __name__ == "__main__":
    main()
