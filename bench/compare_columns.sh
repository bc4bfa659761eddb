#!/usr/bin/env bash
# Tensor columns against layer-by-layer execution (issue 8), side by side in one run:
# ResNet-50 and MobileNetV2 (torchvision exports, bench/columns_lib.sh), dense and pruned
# to 90% (`pillar prune`), float32, at batch 1 and 16, ResNet-50 also at 1x3x1024x1024,
# and the INT8 variants (90% QDQ, and 90% in blocks of 4 then QDQ) at batch 1; each
# timed with `pillar bench --schedule layers`, `--schedule columns` and `--schedule
# auto` ALTERNATELY for several rounds (the order rotates every round, so drift in
# machine load hits all three alike), each run a fresh process on the same seeded
# inputs. Prints a Markdown table (bench/columns_table.py) of the median of the per-run
# medians: ms under layers, columns and auto (with the schedule auto chose), the speed-up
# layers/columns, and whether auto is within 3% of the better of the two; the same for
# the CPU time per inference (user + system of all threads, from `pillar bench`'s
# cpu_ms), which a busy machine disturbs less than wall time; with the date, the CPU and
# the load average.
#
#   bench/compare_columns.sh [--threads N] [--rounds 3] [--time S] [--warmup S]
#                            [--cases "resnet50.s90@1x3x224x224 ..."] [--no-int8]
#                            [--fresh] [--out DIR] [--pillar PATH]
#
# --threads defaults to $THREADS, else 2. A case is MODEL.VARIANT@NxCxHxW (MODEL:
# resnet50, mobilenet_v2; VARIANT: dense, s90, s90_int8, s90b4_int8). --time is the
# timed seconds of each run (default 3) after --warmup seconds (default 1). Model files
# are kept in OUT/columns/ and reused (--fresh remakes them); per-run logs go to
# OUT/columns/runs/<UTC date-time>/, the table to table.md there. Exit 0 if every run
# worked, 1 if some failed (the table shows "error"), 2 if it cannot start.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
threads=${THREADS:-2}
rounds=3
time_s=3
warmup_s=1
int8=1
fresh=0
cases=""
out="$root/bench/out"
pillar="${PILLAR:-$root/build/pillar}"

die() { echo "compare_columns: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in --no-int8) int8=0; shift; continue ;; --fresh) fresh=1; shift; continue ;; esac
    [ $# -ge 2 ] || case "$1" in -h|--help) ;; *) die "$1 needs a value" ;; esac
    case "$1" in
        --threads) threads="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --time) time_s="$2"; shift 2 ;;
        --warmup) warmup_s="$2"; shift 2 ;;
        --cases) cases="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --pillar) pillar="$2"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer"
if [ -z "$cases" ]; then
    for v in dense s90; do
        cases="$cases resnet50.$v@1x3x224x224 resnet50.$v@16x3x224x224 resnet50.$v@1x3x1024x1024"
        cases="$cases mobilenet_v2.$v@1x3x224x224 mobilenet_v2.$v@16x3x224x224"
    done
    if [ "$int8" = 1 ]; then
        for m in resnet50 mobilenet_v2; do
            cases="$cases $m.s90_int8@1x3x224x224 $m.s90b4_int8@1x3x224x224"
        done
    fi
fi
for c in $cases; do
    [[ "$c" =~ ^(resnet50|mobilenet_v2)\.(dense|s90|s90_int8|s90b4_int8)@[1-9][0-9]*x3x[1-9][0-9]*x[1-9][0-9]*$ ]] ||
        die "case '$c' is not MODEL.VARIANT@Nx3xHxW (MODEL resnet50|mobilenet_v2, VARIANT dense|s90|s90_int8|s90b4_int8)"
done
[ -x "$pillar" ] || die "no pillar CLI at $pillar (build it, or pass --pillar)"
"$pillar" bench --help | grep -q -- "--schedule" || die "$pillar has no 'bench --schedule' (rebuild it)"
"$PY" -c "import torch, torchvision, onnx, numpy" 2>/dev/null ||
    die "$PY lacks torch/torchvision/onnx/numpy (run scripts/install-deps.sh)"

source "$root/bench/columns_lib.sh"
columns_init "$out" "$pillar" || die "cannot create $out/columns"
[ "$fresh" = 1 ] && rm -f "$COLUMNS_DIR"/*.onnx

# make every file first (export, pruning and calibration are not timed)
declare -A file
for c in $cases; do
    mv=${c%@*}
    [ -n "${file[$mv]:-}" ] && continue
    f=$(columns_model "${mv%%.*}" "${mv#*.}") || die "cannot make $mv"
    file[$mv]=$f
done

logs="$COLUMNS_DIR/runs/$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$logs" || die "cannot create $logs"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
status=0
k=0

# run CASE SCHEDULE ROUND: one timed process; its log ends with bench's JSON line
run() {
    local c=$1 s=$2 r=$3 log rc med used cpu
    log="$logs/$c.$s.r$r.log"
    k=$((k + 1))
    "$pillar" bench "${file[${c%@*}]}" --shape "input=${c#*@}" --schedule "$s" --threads "$threads" \
        --time "$time_s" --warmup "$warmup_s" --json >"$log" 2>&1
    rc=$?
    echo "$rc" >"${log%.log}.rc"
    med=$(tail -1 "$log" | sed -n 's/.*"median_ms": *\([0-9.eE+-]*\).*/\1/p')
    used=$(tail -1 "$log" | sed -n 's/.*"schedule": *"\([a-z]*\)".*/\1/p')
    cpu=$(tail -1 "$log" | sed -n 's/.*"cpu_ms": *\([0-9.eE+-]*\).*/\1/p')
    if [ "$rc" -ne 0 ] || [ -z "$med" ]; then
        status=1
        echo "[$k] $c round $r $s: FAILED (exit $rc): $(tail -1 "$log")" >&2
    else
        printf '[%d] %s round %d %-8s median %9.2f ms, CPU %9.2f ms (ran %s)\n' "$k" "$c" "$r" "$s:" \
            "$med" "${cpu:-0}" "$used" >&2
    fi
}

scheds=(layers columns auto)
for ((r = 1; r <= rounds; r++)); do
    for c in $cases; do
        for ((i = 0; i < 3; i++)); do run "$c" "${scheds[$(((i + r - 1) % 3))]}" "$r"; done
    done
done

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(lscpu | grep -m1 "Model name" | sed 's/  */ /g')
isa=$(sed -n 's/.*"isa": *"\([a-z0-9]*\)".*/\1/p' "$logs"/*.r1.log 2>/dev/null | head -1)
header="$(date -u '+%Y-%m-%d %H:%M UTC'); $cpu; $(nproc) CPUs; pillar $("$pillar" --version | cut -d' ' -f2) ($isa); $threads thread(s); $rounds rounds of ${time_s} s (+${warmup_s} s warm-up) per schedule and case, alternating; load average $load_start at the start, $load_end at the end"
"$PY" "$root/bench/columns_table.py" "$logs" --cases "$cases" --rounds "$rounds" --header "$header" |
    tee "$logs/table.md"
exit $status
