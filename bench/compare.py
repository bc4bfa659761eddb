#!/usr/bin/python3
"""Compares two directories of model outputs (<output name>.npy each): REF_DIR (the
reference, e.g. ONNX Runtime's) and TEST_DIR (e.g. pillar's).

For each output in REF_DIR the error is max|test - ref| / max|ref|: the worst absolute
difference relative to the output's own scale (so logits in the hundreds and
probabilities below one are judged alike). Prints a table and exits 1 if any output is
missing, has another shape, has NaN/Inf where the reference has none, or exceeds --tol;
exits 2 on usage errors.

    /usr/bin/python3 bench/compare.py REF_DIR TEST_DIR [--tol 1e-4] [--label NAME]
"""
import argparse
import os
import sys

import numpy as np


def compare(ref, test):
    """Returns (relative error, absolute error, note); relative error is inf on a
    structural mismatch."""
    if ref.shape != test.shape:
        return float("inf"), float("inf"), "shape %s, expected %s" % (test.shape, ref.shape)
    if ref.dtype != test.dtype:
        note = "dtype %s, expected %s" % (test.dtype, ref.dtype)
        if ref.dtype.kind != test.dtype.kind:
            return float("inf"), float("inf"), note
    else:
        note = ""
    if ref.size == 0:
        return 0.0, 0.0, note or "empty"
    if ref.dtype.kind in "biu":  # integer/bool outputs must match exactly (int64-safe)
        bad = int(np.count_nonzero(ref != test))
        return (0.0 if bad == 0 else float("inf")), float(bad), note or (
            "%d elements differ" % bad if bad else "")
    r = ref.astype(np.float64)
    t = test.astype(np.float64)
    rfin = np.isfinite(r)
    # non-finite values must appear at the same places with the same value
    if not np.array_equal(rfin, np.isfinite(t)) or not np.array_equal(r[~rfin], t[~rfin]):
        return float("inf"), float("inf"), "NaN/Inf mismatch"
    if not rfin.any():
        return 0.0, 0.0, note
    absdiff = float(np.max(np.abs(t[rfin] - r[rfin])))
    scale = float(np.max(np.abs(r[rfin])))
    rel = absdiff / scale if scale > 0 else (0.0 if absdiff == 0 else float("inf"))
    return rel, absdiff, note


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ref_dir")
    ap.add_argument("test_dir")
    ap.add_argument("--tol", type=float, default=1e-4,
                    help="max allowed max|diff|/max|ref| (default 1e-4)")
    ap.add_argument("--label", default="", help="name printed in each row (e.g. the model)")
    ap.add_argument("--quiet", action="store_true", help="print only the summary line")
    a = ap.parse_args()

    for d in (a.ref_dir, a.test_dir):
        if not os.path.isdir(d):
            print("compare.py: %s is not a directory" % d, file=sys.stderr)
            return 2
    names = sorted(f[:-4] for f in os.listdir(a.ref_dir) if f.endswith(".npy"))
    if not names:
        print("compare.py: no .npy files in %s" % a.ref_dir, file=sys.stderr)
        return 2

    rows, worst, failed = [], 0.0, 0
    for n in names:
        ref = np.load(os.path.join(a.ref_dir, n + ".npy"))
        tpath = os.path.join(a.test_dir, n + ".npy")
        if not os.path.exists(tpath):
            rel, absd, note = float("inf"), float("inf"), "missing in " + a.test_dir
        else:
            try:
                rel, absd, note = compare(ref, np.load(tpath))
            except ValueError as e:
                rel, absd, note = float("inf"), float("inf"), "unreadable: %s" % e
        ok = rel <= a.tol
        failed += not ok
        worst = max(worst, rel)
        rows.append((n, "x".join(map(str, ref.shape)) or "scalar", rel, absd,
                     "pass" if ok else "FAIL", note))

    prefix = (a.label + " ") if a.label else ""
    if not a.quiet:
        print("%-32s %-18s %12s %12s  %s" % ("output", "shape", "max rel diff", "max abs diff",
                                             "result"))
        for n, shape, rel, absd, res, note in rows:
            print("%-32s %-18s %12.3e %12.3e  %s%s" % (prefix + n, shape, rel, absd, res,
                                                       ("  (" + note + ")") if note else ""))
    print("%s%d outputs, %d failed, worst max rel diff %.3e (tol %.0e)"
          % (prefix, len(rows), failed, worst, a.tol))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
