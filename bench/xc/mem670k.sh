#!/usr/bin/env bash
# mem670k.sh [OUT_DIR] -- peak memory of LSH training on Amazon-670K's shape: 670,091
# labels, 135,909 features, a 128-wide hidden layer (synthetic data from gen_xc.py;
# the network, optimizer state and tables are what take memory, so a short run on a
# modest number of points measures the peak). Prints the peak resident set size.
#
# Environment: PILLAR [build/pillar], TRAIN [50000], EPOCHS [1], THREADS [2], LSH_ARGS.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
OUT=${1:-$SRC/bench/out/xc670k}
PILLAR=${PILLAR:-$SRC/build/pillar}
TRAIN=${TRAIN:-50000}
EPOCHS=${EPOCHS:-1}
THREADS=${THREADS:-2}
LSH_ARGS=${LSH_ARGS:---lsh simhash,10,32 --lsh-source examples --sample topk:500 --max-active 500 --bucket-policy fifo}
mkdir -p "$OUT"
D="$OUT/xc670k"
if [ ! -s "${D}_train.txt" ]; then
    /usr/bin/python3 "$HERE/gen_xc.py" "$D" --labels 670091 --features 135909 --train "$TRAIN" --test 2000
fi
/usr/bin/time -v "$PILLAR" train-xc "${D}_train.txt" "${D}_test.txt" --hidden 128 --epochs "$EPOCHS" \
    --threads "$THREADS" --eval-points 2000 --quiet --out "$OUT/model670k.onnx" $LSH_ARGS \
    >"$OUT/train.txt" 2>"$OUT/time.txt"
cat "$OUT/train.txt"
grep -E "Maximum resident|Elapsed|User time" "$OUT/time.txt"
kb=$(grep "Maximum resident" "$OUT/time.txt" | awk '{print $NF}')
echo "peak memory: $((kb / 1024)) MB (limit in issue 6: 8192 MB)"
