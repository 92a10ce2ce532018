#!/usr/bin/env bash
# Throughput of dm-verity format/verify against veritysetup, on a dense image
# (random data) and a sparse one (mostly holes). Not part of run_tests.sh.
#   tests/bench/verity.sh [MiB]        (default 256; needs veritysetup)
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MIB=${1:-256}
W=$(mktemp -d "${TMPDIR:-/tmp}/verity-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
export GOTOOLCHAIN=local
(cd "$ROOT" && go build -o "$W/dm-verity" ./tools/cmd/dm-verity)
head -c "$((MIB << 20))" /dev/urandom >"$W/dense.img"
truncate -s "$((MIB * 16))M" "$W/sparse.img"
printf 'hello' | dd of="$W/sparse.img" bs=1 seek=123456789 conv=notrunc 2>/dev/null
SALT=00112233
UUID=01234567-89ab-4cde-8f01-23456789abcd
t() { # LABEL CMD...
	_l=$1
	shift
	_s=$(date +%s.%N)
	"$@" >/dev/null
	_e=$(date +%s.%N)
	printf '%-40s %6.2f s\n' "$_l" "$(echo "$_e - $_s" | bc)"
}
cat "$W/dense.img" >/dev/null # warm the page cache
for img in dense sparse; do
	sz=$(($(stat -c %s "$W/$img.img") >> 20))
	t "$img ${sz} MiB: dm-verity format" "$W/dm-verity" format "$W/$img.img" "$W/$img.dv" --salt $SALT --uuid $UUID
	root=$(sed -n 's/^Root hash:[[:space:]]*//p' <("$W/dm-verity" format "$W/$img.img" "$W/$img.dv" --salt $SALT --uuid $UUID))
	t "$img ${sz} MiB: dm-verity verify" "$W/dm-verity" verify "$W/$img.img" "$W/$img.dv" "$root"
	if command -v veritysetup >/dev/null; then
		t "$img ${sz} MiB: veritysetup format" veritysetup format "$W/$img.img" "$W/$img.vs" --salt $SALT --uuid $UUID
		cmp "$W/$img.dv" "$W/$img.vs" || { echo "hash devices differ"; exit 1; }
	fi
done
t "dense ${MIB} MiB: dm-verity format + FEC roots 2" "$W/dm-verity" format "$W/dense.img" "$W/dense.dv" --salt $SALT --uuid $UUID --fec-device "$W/dense.fec"
