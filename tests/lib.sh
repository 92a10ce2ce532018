#!/bin/sh
# Shared helpers for the suites under tests/suites/. Source it; do not run it.
#
#   check NAME CMD...     runs CMD, records "PASS NAME" or "FAIL NAME" (with its output)
#   expect_fail NAME PATTERN CMD...
#                         CMD must exit non-zero and print one stderr line matching PATTERN
#   skip NAME WHY         records a skip
#
# Results go to $DMTEST_RESULTS (one line each); tests/run_tests.sh counts them.
# Every suite gets $ROOT (repo root), $BIN (built tools: dm-verity, dm-crypt, ...),
# $WORK (a scratch dir of its own) and $PY (a python3 with Debian's cryptography).

: "${DMTEST_RESULTS:?run the suites through tests/run_tests.sh}"

_record() {
	printf '%s %s\n' "$1" "$2" >>"$DMTEST_RESULTS"
}

check() {
	_name=$1
	shift
	_log="$WORK/.check.log"
	_rc=0
	"$@" >"$_log" 2>&1 || _rc=$?
	if [ "$_rc" -eq 0 ]; then
		echo "  PASS $_name"
		_record PASS "$_name"
	else
		echo "  FAIL $_name (exit $_rc)"
		sed 's/^/    | /' "$_log" | tail -n 40
		_record FAIL "$_name"
	fi
}

expect_fail() {
	_name=$1
	_pat=$2
	shift 2
	_err="$WORK/.expect.err"
	_rc=0
	"$@" >/dev/null 2>"$_err" || _rc=$?
	if [ "$_rc" -eq 0 ]; then
		echo "  FAIL $_name (succeeded, expected an error)"
		_record FAIL "$_name"
		return
	fi
	_lines=$(wc -l <"$_err")
	if [ "$_lines" -ne 1 ] || ! grep -Eq -- "$_pat" "$_err" || grep -q 'goroutine\|panic:' "$_err"; then
		echo "  FAIL $_name (exit $_rc; want one stderr line matching /$_pat/, got $_lines:)"
		sed 's/^/    | /' "$_err" | head -n 10
		_record FAIL "$_name"
		return
	fi
	echo "  PASS $_name (exit $_rc: $(cat "$_err"))"
	_record PASS "$_name"
}

skip() {
	echo "  SKIP $1: $2"
	_record SKIP "$1"
}
