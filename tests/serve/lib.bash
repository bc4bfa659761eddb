# lib.bash -- helpers sourced by the server tests in tests/serve/*.sh (not a test itself).
#
# Env: $PILLAR (the built CLI; default build/pillar), $PILLAR_SOURCE_DIR.
# start_server runs `pillar serve --port 0 ...` in the background and waits for its
# address; stop_server sends SIGTERM and checks a clean exit (code 0, no sanitizer
# report). Each check prints "ok ..." or "FAIL ..."; `finish` exits 1 if any failed.
# All traffic goes to 127.0.0.1 only.

set -uo pipefail

SRC="${PILLAR_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
PILLAR="${PILLAR:-$SRC/build/pillar}"
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pillar-serve.XXXXXX") || exit 1
FAILS=0
CHECKS=0
SPID=""
PORT=""
URL=""
CODE=""
BODY="$TMP/body"
HDRS="$TMP/headers"

cleanup() {
    if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
        kill -KILL "$SPID" 2>/dev/null
        wait "$SPID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

for tool in curl "$PY"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "FAIL: $tool is needed (scripts/install-deps.sh)"
        exit 1
    fi
done
if [ ! -x "$PILLAR" ]; then
    echo "FAIL: no pillar CLI at '$PILLAR' (set \$PILLAR)" >&2
    exit 1
fi
if "$PILLAR" serve --model x=/nonexistent 2>&1 | grep -q "built without the HTTP server"; then
    echo "FAIL: this pillar was built without the HTTP server (libmicrohttpd-dev, libcjson-dev)"
    exit 1
fi

fail() {
    FAILS=$((FAILS + 1))
    echo "FAIL: $*"
}

ok() {
    echo "ok: $*"
}

# Writes the test models into $TMP/m.
make_models() {
    "$PY" "$SRC/tests/serve/make_models.py" "$TMP/m" >/dev/null || {
        echo "FAIL: make_models.py"
        exit 1
    }
    M="$TMP/m"
}

# start_server ARGS... : `pillar serve --port 0 ARGS` in the background; sets SPID, PORT,
# URL. The log is $TMP/server.log.
start_server() {
    SLOG="$TMP/server.log"
    : >"$SLOG"
    "$PILLAR" serve --port 0 "$@" 2>"$SLOG" &
    SPID=$!
    local i
    for i in $(seq 1 400); do
        PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$SLOG" | head -1)
        [ -n "$PORT" ] && break
        if ! kill -0 "$SPID" 2>/dev/null; then
            fail "pillar serve $* exited at start:"
            sed 's/^/    /' "$SLOG" | head -20
            SPID=""
            return 1
        fi
        sleep 0.05
    done
    if [ -z "$PORT" ]; then
        fail "pillar serve $* did not start listening within 20 s"
        return 1
    fi
    URL="http://127.0.0.1:$PORT"
    return 0
}

# stop_server : SIGTERM; the server must exit 0 within 30 s with no sanitizer report.
stop_server() {
    [ -n "$SPID" ] || return 1
    CHECKS=$((CHECKS + 1))
    kill -TERM "$SPID"
    local i rc
    for i in $(seq 1 300); do
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SPID" 2>/dev/null; then
        fail "server did not stop within 30 s of SIGTERM"
        kill -KILL "$SPID"
    fi
    wait "$SPID"
    rc=$?
    SPID=""
    if grep -qE "Sanitizer|runtime error:" "$SLOG"; then
        fail "sanitizer report in the server log:"
        sed 's/^/    /' "$SLOG" | head -40
        return 1
    fi
    if [ $rc -ne 0 ]; then
        fail "server exited $rc after SIGTERM; log:"
        sed 's/^/    /' "$SLOG" | tail -10
        return 1
    fi
    ok "server stopped cleanly on SIGTERM"
}

# http METHOD PATH [curl args...] : sets CODE; body in $BODY, headers in $HDRS.
http() {
    local method=$1 path=$2
    shift 2
    CODE=$(curl -s -m 60 -o "$BODY" -D "$HDRS" -w '%{http_code}' -X "$method" "$@" "$URL$path")
}

# expect_http CODE SUBSTR METHOD PATH [curl args...] : status CODE and SUBSTR in the
# body; 4xx/5xx bodies must be JSON objects with a string "error".
expect_http() {
    local want=$1 sub=$2
    shift 2
    CHECKS=$((CHECKS + 1))
    http "$@"
    local what="$1 $2"
    if [ "$CODE" != "$want" ]; then
        fail "$what: status $CODE, expected $want; body: $(head -c 300 "$BODY")"
        return 1
    fi
    if [ -n "$sub" ] && ! grep -qF -- "$sub" "$BODY"; then
        fail "$what: body lacks '$sub': $(head -c 300 "$BODY")"
        return 1
    fi
    if [ "$want" -ge 400 ] && ! "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d, dict) and isinstance(d.get("error"), str) and d["error"], d
' "$BODY" 2>/dev/null; then
        fail "$what: error body is not {\"error\": \"...\"}: $(head -c 300 "$BODY")"
        return 1
    fi
    ok "$what -> $CODE $(head -c 120 "$BODY" | tr '\n' ' ')"
}

# infer MODEL JSON : POST the JSON to MODEL's infer URL.
infer() {
    local model=$1 json=$2
    shift 2
    http POST "/v2/models/$model/infer" -H 'Content-Type: application/json' --data-binary "$json" "$@"
}

# expect_infer CODE SUBSTR MODEL JSON
expect_infer() {
    local want=$1 sub=$2 model=$3 json=$4
    expect_http "$want" "$sub" POST "/v2/models/$model/infer" -H 'Content-Type: application/json' \
        --data-binary "$json"
}

# py_check WHAT ARGS... : runs python; a nonzero exit is a failure with its output.
py_check() {
    local what=$1
    shift
    CHECKS=$((CHECKS + 1))
    local msg
    if ! msg=$("$PY" "$@" 2>&1); then
        fail "$what: $msg"
        return 1
    fi
    ok "$what${msg:+ ($msg)}"
}

finish() {
    if [ $FAILS -ne 0 ]; then
        echo "$(basename "$0"): $FAILS of $CHECKS checks FAILED"
        exit 1
    fi
    echo "$(basename "$0"): all $CHECKS checks passed"
    exit 0
}
