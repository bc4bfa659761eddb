#!/usr/bin/env python3
"""The Markdown table of bench/compare_sparse.sh from its per-run logs.

    sparse_table.py LOGDIR --models "resnet50 ..." --variants "dense s50 ... s90_int8"
                    [--header TEXT]

LOGDIR holds MODEL.VARIANT.TOOL.rROUND.log (TOOL: pillar, ort, or pillar-avx2), each
ending with a JSON line with "median_ms", and a .rc file with the exit code. Each cell is
the median over rounds of the per-run medians; a failed run shows "error". Speed-up vs
ORT dense = ORT ms on the dense float model / pillar ms; vs ORT same file = ORT ms on the
same file / pillar ms (above 1: pillar is faster)."""
import argparse
import glob
import json
import os
import statistics

NAMES = {"resnet50": "ResNet-50", "mobilenet_v2": "MobileNetV2", "bert_like": "BERT-like encoder"}


def variant_name(v, isa=None):
    if v == "dense":
        s = "dense fp32"
    elif v == "int8":
        s = "dense INT8"
    elif v.endswith("_int8"):
        base = v[1:-5]
        s = ("%s%% (blocks of 4) + INT8" % base[:-2]) if base.endswith("b4") else "%s%% + INT8" % base
    elif v.endswith("b4"):
        s = "%s%% (blocks of 4) fp32" % v[1:-2]
    else:
        s = "%s%% fp32" % v[1:]
    return s + (" (PILLAR_ISA=%s)" % isa if isa else "")


def median_of(logdir, model, variant, tool):
    """(median ms or None, any run failed)"""
    meds, failed = [], False
    for log in sorted(glob.glob(os.path.join(logdir, "%s.%s.%s.r*.log" % (model, variant, tool)))):
        rc_path = log[:-4] + ".rc"
        try:
            rc = int(open(rc_path).read().strip())
        except (OSError, ValueError):
            rc = 1
        try:
            last = open(log).read().strip().splitlines()[-1]
            ms = float(json.loads(last[last.index("{"):])["median_ms"])
        except (IndexError, ValueError, KeyError):
            ms = None
        if rc != 0 or ms is None:
            failed = True
        else:
            meds.append(ms)
    return (statistics.median(meds) if meds and not failed else None), failed


def fmt(x, nd=1):
    return "error" if x is None else "%.*f" % (nd, x)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logdir")
    ap.add_argument("--models", required=True)
    ap.add_argument("--variants", required=True)
    ap.add_argument("--header", default="")
    a = ap.parse_args()
    if a.header:
        print(a.header)
        print()
    print("| model | variant | pillar ms | ORT same file ms | ORT dense fp32 ms | speed-up vs ORT dense | vs ORT same file |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for m in a.models.split():
        ort_dense, _ = median_of(a.logdir, m, "dense", "ort")
        rows = [(v, None) for v in a.variants.split()]
        if glob.glob(os.path.join(a.logdir, "%s.*.pillar-avx2.r*.log" % m)):
            for v in a.variants.split():
                if glob.glob(os.path.join(a.logdir, "%s.%s.pillar-avx2.r*.log" % (m, v))):
                    rows.append((v, "avx2"))
        for v, isa in rows:
            p, _ = median_of(a.logdir, m, v, "pillar" + ("-" + isa if isa else ""))
            o = ort_dense if v == "dense" else median_of(a.logdir, m, v, "ort")[0]
            su = ratio(ort_dense, p)
            ss = ratio(o, p)
            print("| %s | %s | %s | %s | %s | %s | %s |" % (
                NAMES.get(m, m), variant_name(v, isa), fmt(p), fmt(o), fmt(ort_dense),
                "error" if su is None else "%.2fx" % su, "error" if ss is None else "%.2fx" % ss))


if __name__ == "__main__":
    main()
