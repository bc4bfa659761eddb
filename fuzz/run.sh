#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] [TARGET...] -- builds the libFuzzer targets with clang
# (-fsanitize=fuzzer,address,undefined) against the library sources and runs each for
# SECONDS (default 30; CI uses 30, a longer campaign e.g. `fuzz/run.sh 3600`).
#
# Targets: onnx_loader (fuzz_onnx_loader.c: model bytes -> load -> session -> run) and
# request (fuzz_request.c: the server's KServe v2 request parser and response writer).
# Before fuzzing, every file in fuzz/regressions/TARGET/ (inputs that once crashed,
# kept after the fix) and the seed corpus fuzz/corpus_TARGET/ is replayed. New corpus
# entries go to $PILLAR_FUZZ_DIR/corpus_TARGET (default build-fuzz/), crashes to
# build-fuzz/artifacts/: to keep one as a regression test, fix the bug and copy the
# file into fuzz/regressions/TARGET/.
#
# Slow inputs (over the per-input timeout) and allocations beyond 512 MiB (returned to
# pillar as NULL, which it must report as out of memory) are not failures. Exit status:
# 0 if no target found a crash, leak or undefined behaviour; 1 otherwise. The last line
# is "fuzz: N passed, N failed".
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS="${1:-30}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(onnx_loader request)
OUT="${PILLAR_FUZZ_DIR:-$ROOT/build-fuzz}"
CC="${CC_FUZZ:-clang}"
JOBS="$(nproc 2>/dev/null || echo 2)"

if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz: clang is needed (apt-get install clang; scripts/install-deps.sh)"
    exit 1
fi
for lib in libprotobuf-c libcjson; do
    if ! pkg-config --exists "$lib"; then
        echo "fuzz: $lib is needed (scripts/install-deps.sh)"
        exit 1
    fi
done
mkdir -p "$OUT/gen" "$OUT/obj" "$OUT/artifacts"

# ---- build (incremental: an object is rebuilt when its source or any header is newer)
PROTO=/usr/include/onnx/onnx.proto
if [ ! -f "$OUT/gen/onnx.pb-c.c" ] || [ "$PROTO" -nt "$OUT/gen/onnx.pb-c.c" ]; then
    protoc-c -I"$(dirname "$PROTO")" --c_out="$OUT/gen" "$PROTO" || exit 1
fi
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-std=gnu11 -g -O1 $SAN -fsanitize=fuzzer-no-link -I$ROOT/include -I$ROOT/src -I$OUT/gen -w"
newest_header=$(find "$ROOT/src" "$ROOT/include" -name '*.h' -printf '%T@\n' | sort -n | tail -1)

# ISA-specific kernel files (intrinsics, long to compile instrumented) are built
# without sanitizers or coverage: the fuzz targets exercise parsing, planning and the
# reference paths, and those kernels have their own tests against the reference.
KFLAGS="-std=gnu11 -g -O2 -I$ROOT/include -I$ROOT/src -I$OUT/gen -w"
compile() { # SRC OBJ
    local src=$1 obj=$2
    case "$(basename "$src")" in
    *avx512*) "$CC" $KFLAGS -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16 -mfma \
        -mavx2 -mf16c -c "$src" -o "$obj" ;;
    *avx2*) "$CC" $KFLAGS -mavx2 -mfma -mf16c -c "$src" -o "$obj" ;;
    *) "$CC" $CFLAGS -c "$src" -o "$obj" ;;
    esac
}
export -f compile
export CC CFLAGS KFLAGS

mapfile -t SOURCES < <(find "$ROOT/src" -name '*.c' | sort; echo "$OUT/gen/onnx.pb-c.c")
OBJS=()
TODO=()
for src in "${SOURCES[@]}"; do
    rel=${src#"$ROOT/"}
    rel=${rel#"$OUT/"}
    obj="$OUT/obj/$(echo "$rel" | tr '/' '_').o"
    OBJS+=("$obj")
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] ||
        awk -v a="$newest_header" -v b="$(stat -c %Y "$obj")" 'BEGIN{exit !(a > b)}'; then
        TODO+=("$src" "$obj")
    fi
done
if [ ${#TODO[@]} -gt 0 ]; then
    echo "fuzz: compiling $((${#TODO[@]} / 2)) library files with $CC (address, undefined, fuzzer)"
    if ! printf '%s\0' "${TODO[@]}" | xargs -0 -n 2 -P "$JOBS" bash -c 'compile "$0" "$1"'; then
        echo "fuzz: the library did not compile"
        echo "fuzz: 0 passed, ${#TARGETS[@]} failed"
        exit 1
    fi
fi
LIBS="$(pkg-config --libs libprotobuf-c libcjson) -lm -lpthread"
link() { # TARGET extra sources...
    local t=$1
    shift
    "$CC" $CFLAGS -fsanitize=fuzzer -I"$ROOT/tools/serve" "$ROOT/fuzz/fuzz_$t.c" "$@" "${OBJS[@]}" $LIBS \
        -o "$OUT/fuzz_$t"
}
link onnx_loader || exit 1
link request "$ROOT/tools/serve/request.c" || exit 1

# ---- replay regressions and seeds, then fuzz
export ASAN_OPTIONS="allocator_may_return_null=1:max_allocation_size_mb=512:detect_leaks=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
passed=0
failed=0
for t in "${TARGETS[@]}"; do
    bin="$OUT/fuzz_$t"
    if [ ! -x "$bin" ]; then
        echo "fuzz: unknown target '$t' (onnx_loader, request)"
        failed=$((failed + 1))
        continue
    fi
    log="$OUT/fuzz_$t.log"
    extra=()
    [ -f "$ROOT/fuzz/$t.dict" ] && extra+=("-dict=$ROOT/fuzz/$t.dict")
    [ "$t" = request ] && [ -f "$ROOT/fuzz/request.dict" ] && extra+=("-dict=$ROOT/fuzz/request.dict")
    replay=()
    for dir in "$ROOT/fuzz/regressions/$t" "$ROOT/fuzz/corpus_$t"; do
        [ -d "$dir" ] && while IFS= read -r f; do replay+=("$f"); done < <(find "$dir" -type f | sort)
    done
    if [ ${#replay[@]} -gt 0 ] && ! "$bin" -timeout=60 -rss_limit_mb=4096 "${replay[@]}" >"$log" 2>&1; then
        echo "FAIL: fuzz_$t: a regression or seed input fails:"
        grep -E "ERROR|runtime error|Running:" "$log" | tail -5 | sed 's/^/    /'
        failed=$((failed + 1))
        continue
    fi
    if [ "$SECS" -le 0 ]; then
        echo "ok: fuzz_$t: ${#replay[@]} regression and seed inputs replayed"
        passed=$((passed + 1))
        continue
    fi
    mkdir -p "$OUT/corpus_$t"
    "$bin" -max_total_time="$SECS" -timeout=20 -timeout_exitcode=0 -rss_limit_mb=4096 -malloc_limit_mb=1024 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$t-" "${extra[@]}" \
        "$OUT/corpus_$t" "$ROOT/fuzz/corpus_$t" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        echo "FAIL: fuzz_$t found a problem (exit $rc); log $log:"
        grep -E "ERROR|runtime error|SUMMARY|Test unit written" "$log" | head -10 | sed 's/^/    /'
        failed=$((failed + 1))
    else
        echo "ok: fuzz_$t: ${SECS}s, ${execs:-?} inputs, ${cov:-cov: ?}, ${#replay[@]} regression/seed inputs replayed"
        passed=$((passed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ $failed -eq 0 ]
