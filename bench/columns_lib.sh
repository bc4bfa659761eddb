# columns_lib.sh -- sourced by bench/compare_columns.sh and bench/traffic.sh (not run on
# its own): the models of the tensor-column comparison, made on demand and kept in
# OUT/columns/. Each starts from the torchvision export of bench/models/export.py
# (through bench/sparse_lib.sh), with the batch, height and width of its input made
# symbolic (bench/columns_free_dims.py) so that one file serves batch 1, batch 16 and
# 1024x1024 through `pillar bench --shape`. Variants: dense, s90 (`pillar prune
# --sparsity 0.9`, first and last layers dense), s90_int8 (s90 quantized, `pillar
# quantize`, QDQ), s90b4_int8 (pruned in blocks of 4 input channels, then quantized).

source "$(dirname "${BASH_SOURCE[0]}")/sparse_lib.sh"

# columns_init OUT PILLAR: sets COLUMNS_DIR (made) and the sparse_lib state.
columns_init() {
    sparse_init "$1" "$2" || return 1
    COLUMNS_DIR="$1/columns"
    COLUMNS_PILLAR=$2
    mkdir -p "$COLUMNS_DIR" || return 1
}

# columns_model MODEL VARIANT: prints the file, making it (and what it starts from) if
# missing.
columns_model() {
    local m=$1 v=$2 f="$COLUMNS_DIR/$1.$2.onnx" src cal
    if [ -f "$f" ]; then
        echo "$f"
        return 0
    fi
    case "$v" in
        dense)
            sparse_export "$m" || { echo "columns: exporting $m failed" >&2; return 1; }
            /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/columns_free_dims.py" \
                "$SPARSE_OUT/$m.onnx" "$f.tmp" >&2 ;;
        s90)
            src=$(columns_model "$m" dense) || return 1
            "$COLUMNS_PILLAR" prune "$src" --sparsity 0.9 --out "$f.tmp" >/dev/null ;;
        s90b4)
            src=$(columns_model "$m" dense) || return 1
            "$COLUMNS_PILLAR" prune "$src" --sparsity 0.9 --block 4 --out "$f.tmp" >/dev/null ;;
        s90_int8|s90b4_int8)
            src=$(columns_model "$m" "${v%_int8}") || return 1
            cal=$(sparse_calib "$m") || return 1
            "$COLUMNS_PILLAR" quantize "$src" --calibration "$cal" --out "$f.tmp" >&2 ;;
        *) echo "columns: unknown variant '$v'" >&2; return 1 ;;
    esac || { echo "columns: making $m $v failed" >&2; rm -f "$f.tmp"; return 1; }
    mv "$f.tmp" "$f" || return 1
    echo "$f"
}
