#!/usr/bin/python3
"""Reads the logs bench/compare_speed.sh wrote (one per run: CASE.tTHREADS.rROUND.TOOL.log,
whose last line is the JSON object of `pillar bench --json` / `ort_bench.js --json`, and
a .rc file with the exit code) and prints the Markdown comparison table:

    model | batch | threads | ORT median ms | pillar median ms | pillar/ORT |
    ORT items/s | pillar items/s | ORT peak RSS MB | pillar peak RSS MB

Latency is the median over rounds of each run's median; items/s the median over rounds;
peak RSS the largest over rounds (a peak is a peak). A ratio below 1 means pillar is
faster. Runs that failed show "error" and their message under the table.

    speed_table.py LOGDIR --cases "resnet50 mobilenet_v2" --threads "1 2" [--header TEXT]
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys


def load(logdir, case, threads, tool):
    """[(round, result dict or None, error text)] for one cell, in round order."""
    out = []
    pat = os.path.join(logdir, "%s.t%s.r*.%s.log" % (case, threads, tool))
    for path in sorted(glob.glob(pat), key=lambda p: int(re.search(r"\.r(\d+)\.", p).group(1))):
        rnd = int(re.search(r"\.r(\d+)\.", path).group(1))
        with open(path, errors="replace") as f:
            lines = [l.strip() for l in f if l.strip()]
        rc_path = path[:-4] + ".rc"
        rc = open(rc_path).read().strip() if os.path.exists(rc_path) else "?"
        res, err = None, None
        if lines and lines[-1].startswith("{"):
            try:
                res = json.loads(lines[-1])
            except ValueError as e:
                err = "bad JSON: %s" % e
        if res is None and err is None:
            msg = [l for l in lines if "error" in l.lower() or l.startswith(("pillar:", "ort_bench:"))]
            err = "exit %s: %s" % (rc, (msg or lines or ["no output"])[-1])
        out.append((rnd, res, err))
    return out


def fmt(x, digits=2):
    return "-" if x is None else ("%.*f" % (digits, x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("logdir")
    ap.add_argument("--cases", required=True)
    ap.add_argument("--threads", required=True)
    ap.add_argument("--header", default="")
    a = ap.parse_args()
    rows, errors = [], []
    for case in a.cases.split():
        for t in a.threads.split():
            cell = {}
            for tool in ("ort", "pillar"):
                runs = load(a.logdir, case, t, tool)
                ok = [r for _, r, _ in runs if r]
                for rnd, _, e in runs:
                    if e:
                        errors.append("%s, %s threads, round %d, %s: %s" % (case, t, rnd, tool, e))
                cell[tool] = dict(
                    n=len(ok),
                    median=statistics.median([r["median_ms"] for r in ok]) if ok else None,
                    items=statistics.median([r["items_per_s"] for r in ok]) if ok else None,
                    rss=max(r["peak_rss_mb"] for r in ok) if ok else None,
                    batch=ok[0]["batch"] if ok else None,
                    isa=ok[0].get("isa") if ok else None)
            o, p = cell["ort"], cell["pillar"]
            ratio = p["median"] / o["median"] if o["median"] and p["median"] else None
            batch = o["batch"] or p["batch"] or "?"
            rows.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                case, batch, t, fmt(o["median"]), fmt(p["median"]),
                fmt(ratio, 3) if ratio else "error" if not p["median"] or not o["median"] else "-",
                fmt(o["items"], 1), fmt(p["items"], 1), fmt(o["rss"], 0), fmt(p["rss"], 0)))
    if a.header:
        print(a.header)
        print()
    print("| model | batch | threads | ORT median ms | pillar median ms | pillar/ORT "
          "| ORT items/s | pillar items/s | ORT peak RSS MB | pillar peak RSS MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(r)
    if errors:
        print()
        print("Failed runs:")
        for e in errors:
            print("- " + e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
