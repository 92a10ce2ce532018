#!/usr/bin/env bash
# The one test entry point (README quick start, .ci/run). Installs what it needs, then runs:
#   go vet + gofmt, go test ./..., and every suite in tests/suites/*.sh (oracle tests
#   against veritysetup / integritysetup / OpenSSL, CLI contract, real-kernel e2e under
#   QEMU, Bazel). Ends with one "N passed, N failed" line; exits non-zero on any failure.
#
# Knobs: DMTEST_SKIP="e2e bazel"  skip suites whose file name contains one of the words
#        DMTEST_ONLY="verity"      run only suites whose name contains one of the words
#        DMTEST_NO_INSTALL=1       never run apt-get
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ROOT
cd "$ROOT" || exit 1
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

# Debian packages the suites use (the e2e and Bazel suites install their own extras).
PKGS="cryptsetup-bin e2fsprogs python3-cryptography shellcheck busybox-static dash xxd qemu-user"
need=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ] && [ -z "${DMTEST_NO_INSTALL:-}" ]; then
	echo "== installing:$need"
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq &&
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q $need >/dev/null ||
		{ echo "apt-get install$need failed"; exit 1; }
fi

WORKROOT=$(mktemp -d "${TMPDIR:-/tmp}/rules_dm-tests.XXXXXX")
trap 'rm -rf "$WORKROOT"' EXIT
DMTEST_RESULTS="$WORKROOT/results"
: >"$DMTEST_RESULTS"
export DMTEST_RESULTS
BIN="$WORKROOT/bin"
export BIN
PY=/usr/bin/python3
export PY

record() { printf '%s %s\n' "$1" "$2" >>"$DMTEST_RESULTS"; }

echo "== building tools into $BIN"
mkdir -p "$BIN"
if go build -o "$BIN/" ./tools/cmd/... ./initramfs/cmd/... 2>"$WORKROOT/build.log"; then
	record PASS build
else
	cat "$WORKROOT/build.log"
	record FAIL build
fi

echo "== gofmt / go vet"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.bazeldeps/*'))
if [ -z "$bad" ]; then record PASS gofmt; else echo "gofmt: $bad"; record FAIL gofmt; fi
if go vet ./... >"$WORKROOT/vet.log" 2>&1; then record PASS go-vet; else cat "$WORKROOT/vet.log"; record FAIL go-vet; fi

echo "== go test ./..."
go test -count=1 ./... 2>&1 | tee "$WORKROOT/gotest.log"
while read -r status pkg _; do
	case "$status" in
	ok) record PASS "go:$pkg" ;;
	FAIL) [ -n "$pkg" ] && record FAIL "go:$pkg" ;;
	esac
done <<EOT
$(grep -E '^(ok|FAIL)[[:space:]]' "$WORKROOT/gotest.log")
EOT

selected() {
	_n=$(basename "$1" .sh)
	if [ -n "${DMTEST_ONLY:-}" ]; then
		for w in $DMTEST_ONLY; do case "$_n" in *"$w"*) return 0 ;; esac; done
		return 1
	fi
	for w in ${DMTEST_SKIP:-}; do case "$_n" in *"$w"*) return 1 ;; esac; done
	return 0
}

for suite in "$ROOT"/tests/suites/*.sh; do
	[ -e "$suite" ] || continue
	name=$(basename "$suite" .sh)
	if ! selected "$suite"; then
		echo "== suite $name: skipped (DMTEST_SKIP/DMTEST_ONLY)"
		record SKIP "suite:$name"
		continue
	fi
	echo "== suite $name"
	WORK="$WORKROOT/work/$name"
	mkdir -p "$WORK"
	start=$(date +%s)
	if WORK="$WORK" bash "$suite"; then :; else
		rc=$?
		echo "  suite $name exited $rc"
		record FAIL "suite:$name"
	fi
	echo "   ($name took $(($(date +%s) - start)) s)"
done

passed=$(grep -c '^PASS ' "$DMTEST_RESULTS")
failed=$(grep -c '^FAIL ' "$DMTEST_RESULTS")
skipped=$(grep -c '^SKIP ' "$DMTEST_RESULTS")
if [ "$failed" -gt 0 ]; then
	echo "failures:"
	grep '^FAIL ' "$DMTEST_RESULTS" | sed 's/^FAIL /  /'
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
