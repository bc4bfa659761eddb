#!/usr/bin/env bash
# Side-by-side speed of pillar and ONNX Runtime on the same CPU, in one run: exports the
# models if missing (bench/models/export.py), then for every model and thread count
# times ONNX Runtime (bench/ort_bench.js: all graph optimisations, intra-op threads N,
# inter-op 1, sequential) and pillar (`pillar bench`) ALTERNATELY for several rounds
# (the order flips every round, so drift in machine load hits both alike), each run a
# fresh process on the same random inputs. Prints a Markdown table of the median of the
# per-run medians, the ratio pillar/ORT (below 1: pillar is faster), items/s and peak
# RSS of both, with the date, the CPU and the load average.
#
#   bench/compare_speed.sh [--threads "1 2"] [--rounds 3] [--time S] [--warmup S]
#                          [--models "resnet50 resnet50_b16 mobilenet_v2 bert_like"]
#                          [--out DIR] [--pillar PATH]
#
# Models: resnet50 (batch 1), resnet50_b16 (resnet50_dyn at --batch 16), mobilenet_v2,
# bert_like (sequence 128). --time is the timed seconds of each run (default 3) after
# --warmup seconds (default 1). --out defaults to bench/out (exports are reused); the
# per-run logs go to OUT/speed/<UTC date-time>/, with the table as table.md. Peak RSS
# is each process's (for ORT the whole node process, runtime included). --pillar defaults
# to $PILLAR, then build/pillar. Exit 0 if every run worked, 1 if some failed (the
# table shows "error"), 2 if it cannot start.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
threads="1 2"
rounds=3
time_s=3
warmup_s=1
models="resnet50 resnet50_b16 mobilenet_v2 bert_like"
out="$root/bench/out"
pillar="${PILLAR:-$root/build/pillar}"

die() { echo "compare_speed: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || case "$1" in -h|--help) ;; *) die "$1 needs a value" ;; esac
    case "$1" in
        --threads) threads="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --time) time_s="$2"; shift 2 ;;
        --warmup) warmup_s="$2"; shift 2 ;;
        --models) models="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --pillar) pillar="$2"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
for t in $threads; do [[ "$t" =~ ^[1-9][0-9]*$ ]] || die "--threads: '$t' is not a positive integer"; done

# case -> export name, file, extra arguments for both tools
case_export() {
    case "$1" in
        resnet50) echo resnet50 ;;
        resnet50_b16) echo resnet50_dyn ;;
        mobilenet_v2) echo mobilenet_v2 ;;
        bert_like) echo bert_like ;;
        *) return 1 ;;
    esac
}
case_args() {
    case "$1" in
        resnet50_b16) echo "--batch 16" ;;
        *) echo "" ;;
    esac
}
exports=()
for m in $models; do
    e=$(case_export "$m") || die "unknown model '$m' (known: resnet50 resnet50_b16 mobilenet_v2 bert_like)"
    exports+=("$e")
done

[ -x "$pillar" ] || die "no pillar CLI at $pillar (build it, or pass --pillar)"
command -v node >/dev/null || die "node is not installed (run scripts/install-deps.sh)"
[ -d "$root/bench/node_modules/onnxruntime-node" ] ||
    die "onnxruntime-node is not installed in bench/node_modules (run scripts/install-deps.sh)"
"$PY" -c "import torch, torchvision, onnx, numpy" 2>/dev/null ||
    die "$PY lacks torch/torchvision/onnx/numpy (run scripts/install-deps.sh)"

mkdir -p "$out" || die "cannot create $out"
list=$(IFS=,; echo "${exports[*]}")
"$PY" "$root/bench/models/export.py" --models "$list" --out "$out" >&2 || die "export failed"

logs="$out/speed/$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$logs" || die "cannot create $logs"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
nm=$(wc -w <<<"$models"); nt=$(wc -w <<<"$threads")
total=$((nm * nt * rounds * 2))
k=0
status=0

# run TOOL CASE THREADS ROUND: one process, its output in a log, its exit code in .rc
run() {
    local tool=$1 c=$2 t=$3 r=$4 file log
    file="$out/$(case_export "$c").onnx"
    log="$logs/$c.t$t.r$r.$tool.log"
    local -a extra
    read -r -a extra <<<"$(case_args "$c")"
    k=$((k + 1))
    if [ "$tool" = ort ]; then
        node "$root/bench/ort_bench.js" "$file" --threads "$t" --time "$time_s" \
            --warmup "$warmup_s" --json "${extra[@]}" >"$log" 2>&1
    else
        "$pillar" bench "$file" --threads "$t" --time "$time_s" --warmup "$warmup_s" \
            --json "${extra[@]}" >"$log" 2>&1
    fi
    local rc=$?
    echo "$rc" >"${log%.log}.rc"
    local med
    med=$(tail -1 "$log" | sed -n 's/.*"median_ms": *\([0-9.eE+-]*\).*/\1/p')
    if [ "$rc" -ne 0 ] || [ -z "$med" ]; then
        status=1
        echo "[$k/$total] $c, $t threads, round $r, $tool: FAILED (exit $rc): $(tail -1 "$log")" >&2
    else
        printf '[%d/%d] %s, %s threads, round %d, %-6s median %.2f ms\n' "$k" "$total" "$c" "$t" \
            "$r" "$tool:" "$med" >&2
    fi
}

for c in $models; do
    for t in $threads; do
        for ((r = 1; r <= rounds; r++)); do
            if ((r % 2)); then
                run ort "$c" "$t" "$r"; run pillar "$c" "$t" "$r"
            else
                run pillar "$c" "$t" "$r"; run ort "$c" "$t" "$r"
            fi
        done
    done
done

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(lscpu | grep -m1 "Model name" | sed 's/  */ /g')
ortv=$(node -p "require('$root/bench/node_modules/onnxruntime-node/package.json').version" 2>/dev/null)
isa=$(sed -n 's/.*"isa": *"\([a-z0-9]*\)".*/\1/p' "$logs"/*.pillar.log 2>/dev/null | head -1)
header="$(date -u '+%Y-%m-%d %H:%M UTC'); $cpu; $(nproc) CPUs; pillar $("$pillar" --version | cut -d' ' -f2) ($isa) vs onnxruntime-node $ortv; $rounds rounds of ${time_s} s (+${warmup_s} s warm-up) per tool, alternating; load average $load_start at the start, $load_end at the end"
"$PY" "$root/bench/speed_table.py" "$logs" --cases "$models" --threads "$threads" \
    --header "$header" | tee "$logs/table.md"
exit $status
