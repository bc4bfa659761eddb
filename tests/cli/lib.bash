# lib.bash -- helpers sourced by the CLI tests in tests/cli/*.sh (not a test itself).
#
# Env: $PILLAR (the built CLI; default build/pillar), $PILLAR_SOURCE_DIR.
# Each check prints "ok ..." or "FAIL ..." with what went wrong; `finish` exits 1 if any
# check failed. Every run of pillar is also checked for sanitizer reports (CI runs the
# tests on an ASan+UBSan build) and for signals (exit codes above 128).

set -uo pipefail

SRC="${PILLAR_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
PILLAR="${PILLAR:-$SRC/build/pillar}"
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pillar-cli.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
FAILS=0
CHECKS=0
OUT="$TMP/stdout"
ERR="$TMP/stderr"
RC=0

if [ ! -x "$PILLAR" ]; then
    echo "FAIL: no pillar CLI at '$PILLAR' (set \$PILLAR)" >&2
    exit 1
fi

fail() {
    FAILS=$((FAILS + 1))
    echo "FAIL: $*"
}

# Runs pillar with the given arguments; sets RC and fills $OUT / $ERR. A sanitizer report
# or a signal is a failure whatever the test expects.
run() {
    CHECKS=$((CHECKS + 1))
    "$PILLAR" "$@" >"$OUT" 2>"$ERR"
    RC=$?
    if grep -qE "Sanitizer|runtime error:|LeakSanitizer" "$ERR"; then
        fail "pillar $* : sanitizer report:"
        sed 's/^/    /' "$ERR" | head -30
        return 1
    fi
    if [ $RC -gt 128 ]; then
        fail "pillar $* : killed by signal $((RC - 128))"
        return 1
    fi
    return 0
}

# expect_ok ARGS... : exit 0 and nothing on stderr.
expect_ok() {
    run "$@" || return 1
    if [ $RC -ne 0 ]; then
        fail "pillar $* : exit $RC, expected 0; stderr: $(head -3 "$ERR")"
        return 1
    fi
    echo "ok: pillar $*"
}

# expect_fail CODE "SUBSTR|SUBSTR2" ARGS... : exit CODE, and stderr is exactly one line
# "pillar: ..." containing every '|'-separated substring (case-insensitive).
expect_fail() {
    local code=$1 subs=$2
    shift 2
    run "$@" || return 1
    local bad=0 cmd="$*"
    if [ $RC -ne "$code" ]; then
        fail "pillar $* : exit $RC, expected $code; stderr: $(head -3 "$ERR")"
        return 1
    fi
    local lines
    lines=$(wc -l <"$ERR")
    if [ "$lines" -ne 1 ] || ! head -1 "$ERR" | grep -q '^pillar: '; then
        fail "pillar $* : expected one line 'pillar: ...' on stderr, got $lines lines:"
        sed 's/^/    /' "$ERR" | head -10
        return 1
    fi
    local IFS='|'
    for s in $subs; do
        if ! grep -qiF -- "$s" "$ERR"; then
            fail "pillar $cmd : message lacks '$s': $(cat "$ERR")"
            bad=1
        fi
    done
    [ $bad -eq 0 ] && echo "ok: pillar $cmd -> $code: $(cat "$ERR")"
}

# expect_out "SUBSTR" : the last run's stdout contains SUBSTR.
expect_out() {
    if ! grep -qF -- "$1" "$OUT"; then
        fail "stdout lacks '$1'; stdout was:"
        sed 's/^/    /' "$OUT" | head -20
        return 1
    fi
}

# py SCRIPT ARGS... : runs python; a nonzero exit is a failure with its output.
py_check() {
    local what=$1
    shift
    local msg
    if ! msg=$("$PY" "$@" 2>&1); then
        fail "$what: $msg"
        return 1
    fi
    echo "ok: $what${msg:+ ($msg)}"
}

finish() {
    if [ $FAILS -ne 0 ]; then
        echo "$(basename "$0"): $FAILS of $CHECKS checks FAILED"
        exit 1
    fi
    echo "$(basename "$0"): all $CHECKS checks passed"
    exit 0
}
