#!/usr/bin/env bash
# The pillar CLI's version, help and usage errors: exact exit codes (0 ok, 1 usage) and
# one-line messages.
source "$(dirname "$0")/lib.bash"

"$PY" "$SRC/tests/data/make_models.py" "$TMP/m" >/dev/null || { echo "FAIL: make_models.py"; exit 1; }
M="$TMP/m"

expect_ok --version
want=$(sed -n 's/^#define PILLAR_VERSION_MAJOR \([0-9]*\)/\1/p;s/^#define PILLAR_VERSION_MINOR \([0-9]*\)/\1/p;s/^#define PILLAR_VERSION_PATCH \([0-9]*\)/\1/p' \
    "$SRC/include/pillar.h" | paste -sd.)
expect_out "pillar $want"

expect_ok --help
expect_out "usage: pillar COMMAND"
expect_out "inspect"
expect_ok help
expect_out "exit codes"
expect_ok help run
expect_out "--input NAME=FILE"
expect_ok help inspect
expect_out "--json"
expect_ok run --help
expect_out "usage: pillar run"
expect_ok inspect -h
expect_out "usage: pillar inspect"
expect_ok help help

# usage errors: exit 1
run # no command at all: the help goes to stderr, exit 1
[ $RC -eq 1 ] || fail "pillar (no arguments): exit $RC, expected 1"
grep -q "usage: pillar COMMAND" "$ERR" || fail "pillar (no arguments): no usage on stderr"
expect_fail 1 "unknown command 'frobnicate'" frobnicate
expect_fail 1 "unknown option '--frob'" --frob
expect_fail 1 "unknown command 'nope'" help nope
expect_fail 1 "at most one" help run inspect
expect_fail 1 "missing MODEL" run
expect_fail 1 "missing MODEL" inspect --json
expect_fail 1 "unknown option '--bogus'" run "$M/add.onnx" --bogus
expect_fail 1 "unknown option '--bogus'" inspect "$M/add.onnx" --bogus=3
expect_fail 1 "unexpected argument 'extra'" run "$M/add.onnx" extra
expect_fail 1 "--input needs a value" run "$M/add.onnx" --input
expect_fail 1 "--input expects NAME=VALUE" run "$M/add.onnx" --input A
expect_fail 1 "--input A: missing file name" run "$M/add.onnx" --input A=
expect_fail 1 "--shape needs a value" inspect "$M/add.onnx" --shape
expect_fail 1 "not a shape" run "$M/add.onnx" --shape A=2xx3
expect_fail 1 "not a shape" run "$M/add.onnx" --shape A=-2x3
expect_fail 1 "not a shape" run "$M/add.onnx" --shape A=2x3x
expect_fail 1 "more than 8 dimensions" run "$M/add.onnx" --shape A=1x1x1x1x1x1x1x1x1
expect_fail 1 "too large" run "$M/add.onnx" --shape A=99999999999999999999x1
expect_fail 1 "more elements than fit in int64" run "$M/add.onnx" --shape A=4294967296x4294967296x4
expect_fail 1 "--shape expects NAME=VALUE" run "$M/add.onnx" --shape 2x3
expect_fail 1 "given twice" run "$M/add.onnx" --shape A=2x3 --shape A=2x3
expect_fail 1 "--dim batch: 'x' is not" run "$M/dynamic.onnx" --dim batch=x
expect_fail 1 "--dim batch: '-1' is not" run "$M/dynamic.onnx" --dim batch=-1
expect_fail 1 "--threads" run "$M/add.onnx" --threads -3
expect_fail 1 "--seed" run "$M/add.onnx" --seed abc
expect_fail 1 "--output: empty" run "$M/add.onnx" --output ""
expect_fail 1 "--json takes no value" inspect "$M/add.onnx" --json=yes
expect_fail 1 "--version takes no arguments" --version extra

# flags may come before the model, "--flag=value" works, "--" ends the options
expect_ok run --seed=3 "$M/add.onnx"
expect_ok run --shape A=2,3 -- "$M/add.onnx"

finish
