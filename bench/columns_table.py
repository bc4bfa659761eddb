"""columns_table.py LOGDIR --cases "..." --rounds N [--header TEXT] -- the Markdown table
of bench/compare_columns.sh: for every case, the median over rounds of `pillar bench`'s
median latency under --schedule layers, columns and auto (logs CASE.SCHEDULE.rR.log,
each ending with bench's JSON line), the speed-up layers/columns, the schedule auto
chose, and whether auto is within 3% of the better of the two."""
import argparse
import json
import os
import statistics


def last_json(path):
    try:
        with open(path) as f:
            lines = [l for l in f.read().splitlines() if l.startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("logs")
    ap.add_argument("--cases", required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--header", default="")
    a = ap.parse_args()
    if a.header:
        print(a.header)
        print()
    print("| model | variant | input | layers ms | columns ms | auto ms (ran) | layers / columns "
          "| auto / best | auto within 3% | CPU ms layers | CPU ms columns | CPU ms auto "
          "| layers / columns (CPU) | auto within 3% (CPU) |")
    print("|---|---|---|---:|---:|---:|---:|---:|:---:|---:|---:|---:|---:|:---:|")
    for case in a.cases.split():
        mv, shape = case.split("@")
        model, variant = mv.split(".", 1)
        med, cpu, ran = {}, {}, {}
        for s in ("layers", "columns", "auto"):
            vals, cvals, used = [], [], set()
            for r in range(1, a.rounds + 1):
                j = last_json(os.path.join(a.logs, "%s.%s.r%d.log" % (case, s, r)))
                if j and "median_ms" in j:
                    vals.append(j["median_ms"])
                    if "cpu_ms" in j:
                        cvals.append(j["cpu_ms"])
                    used.add(j.get("schedule", "?"))
            med[s] = statistics.median(vals) if vals else None
            cpu[s] = statistics.median(cvals) if cvals else None
            ran[s] = "/".join(sorted(used)) if used else "?"

        def ms(d, s):
            return "%.2f" % d[s] if d[s] is not None else "error"

        def cmp(d):
            """layers / columns, auto / best, auto within 3%"""
            if not (d["layers"] and d["columns"]):
                return ["-", "-", "-"]
            out = ["%.2fx" % (d["layers"] / d["columns"])]
            if d["auto"]:
                best = min(d["layers"], d["columns"])
                out += ["%.3f" % (d["auto"] / best), "yes" if d["auto"] <= 1.03 * best else "**no**"]
            else:
                out += ["-", "-"]
            return out

        w, c = cmp(med), cmp(cpu)
        cells = [model, variant, shape, ms(med, "layers"), ms(med, "columns"),
                 "%s (%s)" % (ms(med, "auto"), ran["auto"])] + w
        cells += [ms(cpu, "layers"), ms(cpu, "columns"), ms(cpu, "auto"), c[0], c[2]]
        print("| " + " | ".join(cells) + " |")
    print()
    print("Wall: median of %d per-run median latencies (each run a fresh `pillar bench` "
          "process). CPU: median of the per-run CPU time (user + system, all threads) per "
          "inference, less sensitive to other load on the machine. layers / columns above 1: "
          "columns are faster. `ran`: the schedule the session used under auto." % a.rounds)


if __name__ == "__main__":
    main()
