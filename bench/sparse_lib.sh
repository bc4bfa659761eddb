# sparse_lib.sh -- sourced by bench/compare_sparse.sh and bench/int8_agreement.sh (not
# run on its own): the pruned and quantized variants of the benchmark models, made on
# demand with `pillar prune` and `pillar quantize` and kept in OUT/sparse/.
#
# Variants: dense (the exported float model), sNN (pruned to NN% with `pillar prune
# --sparsity 0.NN`, first and last layers dense), int8 (the dense model quantized), sNN_int8
# (sNN quantized), sNNb4 / sNNb4_int8 (pruned in blocks of 4 input channels, the
# layout the INT8 sparse kernel skips). Calibration: 8 random samples (standard normal images; token ids in
# [0, 30000) with a full attention mask for bert_like), per-channel min-max.

# sparse_init OUT PILLAR: exports the models if missing; sets SPARSE_OUT, SPARSE_PILLAR,
# SPARSE_DIR.
sparse_init() {
    SPARSE_OUT=$1
    SPARSE_PILLAR=$2
    SPARSE_DIR="$SPARSE_OUT/sparse"
    mkdir -p "$SPARSE_DIR/calib" || return 1
}

# sparse_shape MODEL: the image input shape (images only).
sparse_shape() {
    case "$1" in
        resnet50|mobilenet_v2) echo 1x3x224x224 ;;
        *) return 1 ;;
    esac
}

sparse_export() {
    [ -f "$SPARSE_OUT/$1.onnx" ] && return 0
    /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/models/export.py" --models "$1" --out "$SPARSE_OUT" >&2
}

# sparse_calib MODEL: path of the calibration data (made once).
sparse_calib() {
    local m=$1 c="$SPARSE_DIR/calib/$1"
    if [ "$m" = bert_like ]; then
        if [ ! -f "$c/input_ids.npy" ]; then
            mkdir -p "$c" && /usr/bin/python3 -c '
import sys, numpy as np
r = np.random.default_rng(11)
np.save(sys.argv[1] + "/input_ids.npy", r.integers(0, 30000, (8, 128)).astype(np.int64))
np.save(sys.argv[1] + "/attention_mask.npy", np.ones((8, 128), np.int64))' "$c" >&2 || return 1
        fi
        echo "$c"
    else
        if [ ! -f "$c.npy" ]; then
            /usr/bin/python3 -c '
import sys, numpy as np
np.save(sys.argv[1], np.random.default_rng(11).standard_normal((8, 3, 224, 224)).astype(np.float32))' "$c.npy" >&2 ||
                return 1
        fi
        echo "$c.npy"
    fi
}

# sparse_variant MODEL VARIANT: prints the file of that variant, making it if missing.
sparse_variant() {
    local m=$1 v=$2 f src cal
    sparse_export "$m" || { echo "sparse: exporting $m failed" >&2; return 1; }
    if [ "$v" = dense ]; then
        echo "$SPARSE_OUT/$m.onnx"
        return 0
    fi
    f="$SPARSE_DIR/$m.$v.onnx"
    if [ ! -f "$f" ]; then
        case "$v" in
            s[0-9]*_int8)
                src=$(sparse_variant "$m" "${v%_int8}") || return 1
                cal=$(sparse_calib "$m") || return 1
                "$SPARSE_PILLAR" quantize "$src" --calibration "$cal" --out "$f.tmp" >&2 ;;
            int8)
                cal=$(sparse_calib "$m") || return 1
                "$SPARSE_PILLAR" quantize "$SPARSE_OUT/$m.onnx" --calibration "$cal" --out "$f.tmp" >&2 ;;
            s[0-9]*b4)
                v=${v%b4}
                "$SPARSE_PILLAR" prune "$SPARSE_OUT/$m.onnx" --sparsity "0.${v#s}" --block 4 --out "$f.tmp" >/dev/null ;;
            s[0-9]*)
                "$SPARSE_PILLAR" prune "$SPARSE_OUT/$m.onnx" --sparsity "0.${v#s}" --out "$f.tmp" >/dev/null ;;
            *) echo "sparse: unknown variant '$v'" >&2; return 1 ;;
        esac || { echo "sparse: making $m $v failed" >&2; rm -f "$f.tmp"; return 1; }
        mv "$f.tmp" "$f" || return 1
    fi
    echo "$f"
}
