#!/usr/bin/env bash
# Throughput of dm-integrity format/verify against `cp` + fsync (issue 4 acceptance: a
# crc32c 4K format of 1 GiB must be I/O-bound, <= 1.3x cp; our outputs are fsynced). Dense (random) and sparse input,
# separate and interleaved layouts. Not part of run_tests.sh.
#   tests/bench/integrity.sh [MiB]        (default 1024)
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MIB=${1:-1024}
W=$(mktemp -d "${TMPDIR:-/tmp}/integrity-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
export GOTOOLCHAIN=local
(cd "$ROOT" && go build -o "$W/dm-integrity" ./tools/cmd/dm-integrity)
DI=$W/dm-integrity
head -c "$((MIB << 20))" /dev/urandom >"$W/dense.img"
truncate -s "${MIB}M" "$W/sparse.img"
printf 'hello' | dd of="$W/sparse.img" bs=1 seek=123456789 conv=notrunc 2>/dev/null
secs() { # CMD... -> elapsed seconds
	_s=$(date +%s.%N)
	"$@" >/dev/null
	_e=$(date +%s.%N)
	echo "$_e - $_s" | bc
}
cat "$W/dense.img" >/dev/null # warm the page cache
# baseline: cp + fsync of the copy (our outputs are fsynced before the rename)
cpsync() { cp "$1" "$2" && sync "$2"; }
cp_s=$(secs cpsync "$W/dense.img" "$W/copy.img")
rm -f "$W/copy.img"
sync
printf '%-44s %6.2f s\n' "dense ${MIB} MiB: cp + fsync" "$cp_s"
worst=0
for img in dense sparse; do
	for lay in separate interleaved; do
		for h in crc32c sha256; do
			s=$(secs "$DI" format --layout $lay --hash $h "$W/$img.img" "$W/out.img")
			printf '%-44s %6.2f s\n' "$img ${MIB} MiB: format $lay $h" "$s"
			if [ $img = dense ] && [ $h = crc32c ]; then
				r=$(echo "$s / $cp_s" | bc -l)
				worst=$(echo "if ($r > $worst) $r else $worst" | bc -l)
			fi
			if [ $lay = separate ] && [ $img = dense ]; then
				s=$(secs "$DI" verify --hash $h "$W/$img.img" "$W/out.img")
				printf '%-44s %6.2f s\n' "$img ${MIB} MiB: verify $lay $h" "$s"
			fi
			rm -f "$W/out.img"
			sync
		done
	done
done
printf 'crc32c format / cp (worst layout): %.2f (limit 1.30)\n' "$worst"
[ "$(echo "$worst <= 1.3" | bc)" = 1 ]
