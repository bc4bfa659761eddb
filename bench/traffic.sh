#!/usr/bin/env bash
# Memory traffic per inference under the layer and the column schedule (issue 8),
# measured with valgrind's cachegrind (Debian package valgrind; `perf stat` cache
# counters are not available in every VM), so that anyone can rerun it. For each case
# and schedule, `pillar bench --iterations N --warmup 0 --threads 1` runs under
# `valgrind --tool=cachegrind --cache-sim=yes` with the last-level cache set to
#   L2: 1 MiB, 16-way (the misses are the traffic leaving a core's L2), and
#   L3: 32 MiB, 16-way (the misses are the DRAM traffic),
# 64-byte lines, a 32 KiB 8-way L1d; once with N and once with N+K inferences: the
# difference of the LL misses (reads + writes, instruction fetches included), divided by
# K and times 64 bytes, is the traffic of one inference in steady state (session
# creation, weight packing and the first run cancel out). Prints a Markdown table of MB
# per inference under layers and columns and their ratio, next to the planner's own
# estimate (`pillar inspect --schedule`, "total bytes per inference").
#
#   bench/traffic.sh [--cases "resnet50.s90@1x3x224x224 ..."] [--n 1] [--k 1]
#                    [--jobs 2] [--out DIR] [--pillar PATH]
#
# Cases are MODEL.VARIANT@NxCxHxW as in bench/compare_columns.sh (default: the pruned
# MobileNetV2 and ResNet-50 at 224x224). Cachegrind
# runs one thread at a time and does not model AVX-512, so the runs use one thread and
# PILLAR_ISA=avx2 (the same data movement; the kernels differ in vector width only). It
# counts a miss per line fetched or written-allocated, not write-backs of dirty lines,
# so the figures are the traffic into the cache level, a lower bound of the total.
# Expect minutes per run: cachegrind is some 1000x slower than native on this vector code
# (the pruned ResNet-50 at 224x224: about 2 minutes per inference, 4 minutes for
# session creation and the first run; 8 runs per case). --jobs runs that many
# valgrind processes at once. Logs go to OUT/columns/traffic/<UTC date-time>/.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
cases="mobilenet_v2.s90@1x3x224x224 resnet50.s90@1x3x224x224"
n=1
k=1
jobs=2
out="$root/bench/out"
pillar="${PILLAR:-$root/build/pillar}"

die() { echo "traffic: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || case "$1" in -h|--help) ;; *) die "$1 needs a value" ;; esac
    case "$1" in
        --cases) cases="$2"; shift 2 ;;
        --n) n="$2"; shift 2 ;;
        --k) k="$2"; shift 2 ;;
        --jobs) jobs="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --pillar) pillar="$2"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
done
for v in "$n" "$k" "$jobs"; do [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "--n, --k and --jobs take positive integers"; done
for c in $cases; do
    [[ "$c" =~ ^(resnet50|mobilenet_v2)\.(dense|s90|s90_int8|s90b4_int8)@[1-9][0-9]*x3x[1-9][0-9]*x[1-9][0-9]*$ ]] ||
        die "case '$c' is not MODEL.VARIANT@Nx3xHxW"
done
command -v valgrind >/dev/null || die "valgrind is not installed (run scripts/install-deps.sh)"
[ -x "$pillar" ] || die "no pillar CLI at $pillar (build it, or pass --pillar)"
"$pillar" bench --help | grep -q -- "--iterations" || die "$pillar has no 'bench --iterations' (rebuild it)"

source "$root/bench/columns_lib.sh"
columns_init "$out" "$pillar" || die "cannot create $out/columns"
declare -A file
for c in $cases; do
    mv=${c%@*}
    [ -n "${file[$mv]:-}" ] && continue
    f=$(columns_model "${mv%%.*}" "${mv#*.}") || die "cannot make $mv"
    file[$mv]=$f
done

logs="$COLUMNS_DIR/traffic/$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$logs" || die "cannot create $logs"
L1="--D1=32768,8,64 --I1=32768,8,64"
declare -A LL=([l2]="--LL=1048576,16,64" [l3]="--LL=33554432,16,64")

# grind CASE SCHEDULE LEVEL ITERS: one cachegrind run, log CASE.SCHEDULE.LEVEL.ITERS.log
grind() {
    local c=$1 s=$2 lv=$3 it=$4
    # shellcheck disable=SC2086
    PILLAR_ISA=avx2 valgrind --tool=cachegrind --cache-sim=yes $L1 ${LL[$lv]} \
        --cachegrind-out-file=/dev/null \
        "$pillar" bench "${file[${c%@*}]}" --shape "input=${c#*@}" --schedule "$s" --threads 1 \
        --iterations "$it" --warmup 0 --json >"$logs/$c.$s.$lv.$it.log" 2>&1
    echo "$?" >"$logs/$c.$s.$lv.$it.rc"
}

# the runs, at most $jobs at a time
for c in $cases; do
    for s in layers columns; do
        for lv in l2 l3; do
            for it in "$n" $((n + k)); do
                while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
                echo "cachegrind: $c $s $lv $it inferences (+1 warm-up)" >&2
                grind "$c" "$s" "$lv" "$it" &
            done
        done
    done
    # the planner's estimate, for the table
    "$pillar" inspect "${file[${c%@*}]}" --schedule columns --shape "input=${c#*@}" --threads 1 \
        >"$logs/$c.inspect.txt" 2>&1
done
wait

"$PY" - "$logs" "$n" "$k" "$cases" <<'EOF' | tee "$logs/table.md"
import os, re, sys
logs, n, k, cases = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split()

def misses(path):
    # "==123== LL misses:    1,234,567  (  1,000,000 rd   +   234,567 wr)"
    try:
        text = open(path).read()
    except OSError:
        return None
    m = re.search(r"^==\d+== LL misses:\s+([\d,]+)", text, re.M)
    return int(m.group(1).replace(",", "")) if m else None

def per_inference(c, s, lv):
    a = misses(os.path.join(logs, "%s.%s.%s.%d.log" % (c, s, lv, n)))
    b = misses(os.path.join(logs, "%s.%s.%s.%d.log" % (c, s, lv, n + k)))
    if a is None or b is None:
        return None
    return (b - a) / k * 64 / 1e6

def estimate(c):
    try:
        text = open(os.path.join(logs, c + ".inspect.txt")).read()
    except OSError:
        return None
    m = re.search(r"total bytes per inference: layers ([\d.]+) MB, columns ([\d.]+) MB", text)
    return (float(m.group(1)), float(m.group(2))) if m else None

def f(x):
    return "%.1f" % x if x is not None else "error"

print("Memory traffic per inference (MB = 10^6 bytes), cachegrind, 1 thread, PILLAR_ISA=avx2; "
      "(misses with %d+%d inferences - misses with %d) / %d x 64 B" % (n, k, n, k))
print()
print("| model | variant | input | leaving L2: layers | columns | layers / columns "
      "| DRAM (32 MiB L3): layers | columns | layers / columns | planner estimate: layers | columns |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in cases:
    mv, shape = c.split("@")
    model, variant = mv.split(".", 1)
    row = [model, variant, shape]
    for lv in ("l2", "l3"):
        lay, col = per_inference(c, "layers", lv), per_inference(c, "columns", lv)
        row += [f(lay), f(col), "%.2fx" % (lay / col) if lay and col else "-"]
    e = estimate(c)
    row += [f(e[0]), f(e[1])] if e else ["-", "-"]
    print("| " + " | ".join(row) + " |")
EOF
status=0
for r in "$logs"/*.rc; do [ "$(cat "$r")" = 0 ] || { status=1; echo "traffic: failed: ${r%.rc}.log" >&2; }; done
exit $status
