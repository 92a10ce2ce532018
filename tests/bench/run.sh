#!/usr/bin/env bash
# Performance benchmark of the layer tools against what a user would otherwise
# run (issue 7). Prints a markdown table of ratios measured in one run on this
# machine, PASS/MISS per goal. Run by hand; not part of tests/run_tests.sh.
#
#   tests/bench/run.sh                 full: 1 GiB dense, 8 GiB sparse (256 MiB data)
#   BENCH_QUICK=1 tests/bench/run.sh   small: 64 MiB dense, 1 GiB sparse (32 MiB data)
#   BENCH_ONLY=crypt tests/bench/run.sh   only the crypt rows (also: verity,
#                                      integrity, or a comma list; default all)
#
# Environment: BENCH_DIR (inputs, default /var/tmp/rules_dm-bench; reused when
# present), BENCH_OUT (verity and crypt outputs, default a directory on the
# /dev/shm tmpfs when it exists, so the comparison is of computation, not of
# this machine's shared disk: our tools fsync their output, veritysetup and
# openssl speed do not write one), BENCH_RUNS (runs per command, best wall
# time kept, default 3), BENCH_DROP_CACHES (1: drop the page cache before each
# integrity/cp run when /proc/sys/vm/drop_caches is writable, the default; 0:
# warm cache for those too).
#
# How numbers are normalised (be careful comparing them):
#   - wall time: measured around each command (date +%s%N), best of BENCH_RUNS;
#     CPU time (user+sys) and peak RSS come from /usr/bin/time -v of that run
#     (RSS: the maximum over the runs).
#   - our throughput = bytes / wall seconds (the whole tool: reading, hashing
#     or encrypting, writing, on all the cores it uses);
#     our per-core throughput = bytes / CPU seconds (user+sys), i.e. the
#     whole-tool throughput divided by the average number of cores busy.
#   - openssl speed -evp reports bytes per second of user CPU time on one
#     stream (one core), over 4096-byte buffers, pure in-memory crypto.
#   - openssl speed -multi N (N = nproc) runs N such streams at once, one
#     process each; its summary line is the SUM of the N per-process rates, so
#     "openssl per core, all cores busy" = that sum / N. With -multi the
#     children's rates are over elapsed time (each reports 2.00 s for
#     -seconds 2 whatever the load), not user CPU time. Our counterpart is the
#     tools/crypt benchmark ...Parallel (b.RunParallel, one goroutine per core,
#     -cpu N): "MB/s/core" = bytes / wall seconds / N. Both sides of that row
#     are wall-clock per core, pure in-memory crypto on 4 KiB buffers, so it
#     needs an otherwise idle machine to mean anything (see the load line).
#   - copy floor: dd bs=1M conv=fsync of the same input to the same output
#     location, no encryption: the page-cache read and write that any
#     file-to-file tool pays. The tool's CPU seconds minus the floor's is what
#     encryption and our own I/O overhead cost.
#   - dm-crypt and its dd floor also run with the output on disk (next to the
#     inputs, fsynced; dm-crypt writes it with O_DIRECT): wall time is then
#     the disk's, but CPU seconds show the copy-free path.
#   - dm-crypt runs use the default I/O path (DMCRYPT_IO=auto, which is
#     read: pread, pwrite, O_DIRECT on disk); the DMCRYPT_IO=mmap row is XTS
#     with the input read through a shared mapping (no copy out of the page
#     cache), for comparison.
#   - verity and integrity ratios are ratios of wall times on the same file.
#   - verity, crypt: the page cache is warm (inputs read once before timing),
#     outputs go to BENCH_OUT. integrity and cp write next to the inputs.
#   - veritysetup on the sparse image runs once (it reads every hole).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export GOTOOLCHAIN=local
D=${BENCH_DIR:-/var/tmp/rules_dm-bench}
RUNS=${BENCH_RUNS:-3}
QUICK=${BENCH_QUICK:-0}
DROP=${BENCH_DROP_CACHES:-1}
ONLY=${BENCH_ONLY:-all}
for g in ${ONLY//,/ }; do
	case $g in all | verity | crypt | integrity) ;; *)
		echo "bench: BENCH_ONLY=$ONLY: want all, verity, crypt, integrity or a comma list" >&2
		exit 2
		;;
	esac
done
want() { [ "$ONLY" = all ] || [[ ",$ONLY," == *",$1,"* ]]; }
if [ "$QUICK" = 1 ]; then
	DENSE_MIB=64 SPARSE_MIB=1024 SPARSE_DATA_MIB=32
else
	DENSE_MIB=1024 SPARSE_MIB=8192 SPARSE_DATA_MIB=256
fi
SALT=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
UUID=01234567-89ab-4cde-8f01-23456789abcd
if [ -z "${BENCH_OUT:-}" ]; then
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then BENCH_OUT=/dev/shm/rules_dm-bench-out.$$; else BENCH_OUT=$D/out.fast; fi
fi
O=$BENCH_OUT
mkdir -p "$D/bin" "$D/out" "$O"
trap 'rm -rf "$D/out" "$O"' EXIT

log() { echo "bench: $*" >&2; }

if [ ! -x /usr/bin/time ]; then
	log "installing /usr/bin/time (Debian package time)"
	apt-get install -y -qq time >/dev/null
fi
for t in veritysetup openssl; do
	command -v "$t" >/dev/null || { log "missing $t (apt-get install cryptsetup-bin openssl)"; exit 1; }
done

log "building the tools"
(cd "$ROOT" && go build -o "$D/bin/" ./tools/cmd/dm-verity ./tools/cmd/dm-crypt ./tools/cmd/dm-integrity)
B=$D/bin

# ---- inputs (reused when complete) ----------------------------------------
mkinput() { # NAME MIB CMD... : create $D/NAME once; a .ok marker says complete
	local f=$D/$1 mib=$2
	shift 2
	if [ -f "$f.ok" ] && [ "$(stat -c %s "$f")" = $((mib << 20)) ]; then
		return
	fi
	log "creating $f ($mib MiB)"
	rm -f "$f" "$f.ok"
	"$@" "$f"
	touch "$f.ok"
}
dense() { head -c "$((${1} << 20))" /dev/urandom >"$2"; }
sparse() { # TOTAL_MIB DATA_MIB FILE: 16 extents of random data, evenly spaced
	local total=$1 f=$3 ext=$(($2 / 16)) i
	truncate -s "${total}M" "$f"
	for i in $(seq 0 15); do
		head -c "$((ext << 20))" /dev/urandom |
			dd of="$f" bs=1M seek="$((i * (total / 16) + 1))" conv=notrunc status=none
	done
}
DENSE=dense-${DENSE_MIB}M.img
SMALL=dense-${SPARSE_DATA_MIB}M.img
SPARSE=sparse-${SPARSE_MIB}M-${SPARSE_DATA_MIB}M.img
mkinput "$DENSE" "$DENSE_MIB" dense "$DENSE_MIB"
if want verity || want integrity; then
	mkinput "$SMALL" "$SPARSE_DATA_MIB" dense "$SPARSE_DATA_MIB"
	mkinput "$SPARSE" "$SPARSE_MIB" sparse "$SPARSE_MIB" "$SPARSE_DATA_MIB"
fi
(umask 077 && head -c 64 /dev/urandom >"$O/xts.key" && head -c 16 /dev/urandom >"$O/cbc.key")

# ---- measuring --------------------------------------------------------------
declare -A WALL CPU RSS
warm() { cat "$D/$DENSE" >/dev/null && { [ ! -f "$D/$SMALL" ] || cat "$D/$SMALL" >/dev/null; }; }
cold() {
	sync
	if [ "$DROP" = 1 ] && [ -w /proc/sys/vm/drop_caches ]; then
		echo 3 >/proc/sys/vm/drop_caches
	else
		cat "$D/$DENSE" >/dev/null
	fi
}
# measure KEY PREP CMD... : best wall time of RUNS runs; CPU of that run, max RSS.
measure() {
	local key=$1 prep=$2 i t0 t1 w c r tf=$D/out/time.txt
	shift 2
	for i in $(seq "$RUNS"); do
		rm -f "$D"/out/*.out "$O"/*.out
		$prep
		t0=$(date +%s%N)
		/usr/bin/time -v -o "$tf" "$@" >/dev/null
		t1=$(date +%s%N)
		w=$(((t1 - t0) / 1000)) # microseconds
		c=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%d", s * 1e6 }' "$tf")
		r=$(awk -F': ' '/Maximum resident/ { print $2 }' "$tf")
		if [ -z "${WALL[$key]:-}" ] || [ "$w" -lt "${WALL[$key]}" ]; then
			WALL[$key]=$w CPU[$key]=$c
		fi
		if [ -z "${RSS[$key]:-}" ] || [ "$r" -gt "${RSS[$key]}" ]; then RSS[$key]=$r; fi
	done
	log "$(printf '%-22s wall %8.3f s  cpu %8.3f s  rss %6d KiB' "$key" "$(fdiv "${WALL[$key]}" 1e6)" "$(fdiv "${CPU[$key]}" 1e6)" "${RSS[$key]}")"
}
fdiv() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", (b != 0) ? a / b : 0 }'; }
ossl() { # EVP -> bytes per second of user CPU time, 4 KiB buffers, best of RUNS
	local best=0 v i
	for i in $(seq "$RUNS"); do
		v=$(openssl speed -seconds 2 -bytes 4096 -evp "$1" 2>/dev/null | tail -1 | awk '{ sub(/k$/, "", $NF); printf "%.0f", $NF * 1000 }')
		[ "$v" -gt "$best" ] && best=$v
	done
	echo "$best"
}
ossl_multi() { # EVP N -> bytes per second per process of `openssl speed -multi N` (its sum / N), best of RUNS
	local best=0 v i
	for i in $(seq "$RUNS"); do
		v=$(openssl speed -multi "$2" -seconds 2 -bytes 4096 -evp "$1" 2>/dev/null |
			awk -v n="$(echo "$1" | tr '[:lower:]' '[:upper:]')" -v k="$2" 'toupper($1) == n && NF == 2 { sub(/k$/, "", $2); v = $2 * 1000 / k } END { printf "%.0f", v }')
		[ "$v" -gt "$best" ] && best=$v
	done
	echo "$best"
}

# ---- runs -------------------------------------------------------------------
load0=$(cut -d' ' -f1-3 /proc/loadavg)
log "load before: $load0"
V="format --salt $SALT --uuid $UUID"
# shellcheck disable=SC2086
if want verity; then
	measure v_ours_dense warm "$B/dm-verity" $V --quiet "$D/$DENSE" "$O/v1.out"
	cp "$O/v1.out" "$O/v1.ours"
	measure v_vs_dense warm veritysetup $V "$D/$DENSE" "$O/v1.out"
	cmp -s "$O/v1.out" "$O/v1.ours" && V_SAME=identical || V_SAME=DIFFERENT
	measure v_ours_small warm "$B/dm-verity" $V --quiet "$D/$SMALL" "$O/v2.out"
	measure v_vs_small warm veritysetup $V "$D/$SMALL" "$O/v2.out"
	measure v_ours_sparse warm "$B/dm-verity" $V --quiet "$D/$SPARSE" "$O/v3.out"
	cp "$O/v3.out" "$O/v3.ours"
	# The same two on disk (next to the inputs): our output is fsynced.
	measure v_ours_small_disk warm "$B/dm-verity" $V --quiet "$D/$SMALL" "$D/out/v2.out"
	measure v_ours_sparse_disk warm "$B/dm-verity" $V --quiet "$D/$SPARSE" "$D/out/v3.out"
	RUNS=1 measure v_vs_sparse warm veritysetup $V "$D/$SPARSE" "$O/v3.out"
	cmp -s "$O/v3.out" "$O/v3.ours" && VS_SAME=identical || VS_SAME=DIFFERENT
fi
rm -f "$O"/*.ours
NCPU=$(nproc)
if want crypt; then
	CX=(encrypt --cipher aes-xts-plain64 --key-file "$O/xts.key" --sector-size 4096 "$D/$DENSE" "$O/c.out")
	measure c_xts warm "$B/dm-crypt" "${CX[@]}"
	measure c_cbc warm "$B/dm-crypt" encrypt --cipher aes-cbc-plain --key-file "$O/cbc.key" --sector-size 4096 "$D/$DENSE" "$O/c.out"
	measure c_xts_mmap warm env DMCRYPT_IO=mmap "$B/dm-crypt" "${CX[@]}"
	measure c_floor warm dd if="$D/$DENSE" of="$O/c.out" bs=1M conv=fsync status=none
	# The same on disk (next to the inputs): O_DIRECT writes, no page-cache copy on either side.
	measure c_xts_disk warm "$B/dm-crypt" encrypt --cipher aes-xts-plain64 --key-file "$O/xts.key" --sector-size 4096 "$D/$DENSE" "$D/out/c.out"
	measure c_floor_disk warm dd if="$D/$DENSE" of="$D/out/c.out" bs=1M conv=fsync status=none
	O_XTS=$(ossl aes-256-xts)
	O_CBC=$(ossl aes-128-cbc)
	O_XTS_MULTI=$(ossl_multi aes-256-xts "$NCPU")
	gobench() { # REGEX METRIC CPUS -> best METRIC of a tools/crypt benchmark (in memory), or n/a
		(cd "$ROOT" && go test -run '^$' -bench "$1" -benchtime 300ms -count "$RUNS" -cpu "$3" ./tools/crypt/ 2>/dev/null) |
			awk -v u="$2" '/MB\/s/ { for (i = 1; i <= NF; i++) if ($(i+1) == u && $i > m) m = $i } END { if (m) printf "%.0f", m; else print "n/a" }'
	}
	G_XTS=$(gobench 'XTS256Encrypt4K$' MB/s 1)
	G_CBC=$(gobench 'CBC128PlainEncrypt4K$' MB/s 1)
	G_XTS_MULTI=$(gobench 'XTS256Encrypt4KParallel$' MB/s/core "$NCPU")
	G_CBC_MULTI=$(gobench 'CBC128PlainEncrypt4KParallel$' MB/s/core "$NCPU")
	log "tools/crypt go bench, one core: xts $G_XTS MB/s, cbc-plain $G_CBC MB/s; $NCPU cores busy, per core: xts $G_XTS_MULTI, cbc-plain $G_CBC_MULTI"
	log "openssl per core: xts $O_XTS B/s alone, $O_XTS_MULTI B/s with $NCPU busy; cbc $O_CBC B/s"
fi
if want integrity; then
	measure i_ours cold "$B/dm-integrity" format "$D/$DENSE" "$D/out/i.out"
	measure i_cp cold cp "$D/$DENSE" "$D/out/cp.out"
	# Peak RSS on the 8 GiB image for integrity too (one run; warm; holes read or skipped as the tool does).
	RUNS=1 measure i_sparse warm "$B/dm-integrity" format "$D/$SPARSE" "$D/out/i.out"
fi
load1=$(cut -d' ' -f1-3 /proc/loadavg)
log "load after: $load1"

# ---- table --------------------------------------------------------------------
if [ "$DROP" = 1 ] && [ -w /proc/sys/vm/drop_caches ]; then CACHE="cold cache: dropped before each run"; else CACHE="warm page cache"; fi
DB=$((DENSE_MIB << 20))
SB=$((SPARSE_DATA_MIB << 20))
s() { awk -v u="${WALL[$1]}" 'BEGIN { printf "%.3f", u / 1e6 }'; } # wall seconds
cs() { awk -v u="${CPU[$1]}" 'BEGIN { printf "%.2f", u / 1e6 }'; } # cpu seconds
mbs() { awk -v b="$1" -v us="$2" 'BEGIN { printf "%.0f", (us > 0) ? b / us : 0 }'; } # bytes, microseconds -> MB/s
cores() { awk -v c="${CPU[$1]}" -v w="${WALL[$1]}" 'BEGIN { printf "%.2f", c / w }'; }
mib() { awk -v k="${RSS[$1]}" 'BEGIN { printf "%.1f", k / 1024 }'; }
verdict() { # VALUE OP GOAL
	awk -v v="$1" -v op="$2" -v g="$3" 'BEGIN { ok = (op == ">=") ? v >= g : v <= g; print ok ? "PASS" : "MISS" }'
}
maxrss=0
for k in v_ours_dense v_ours_sparse v_ours_sparse_disk c_xts c_cbc c_xts_mmap c_xts_disk i_ours i_sparse; do
	if [ -n "${RSS[$k]:-}" ] && [ "${RSS[$k]}" -gt "$maxrss" ]; then maxrss=${RSS[$k]}; fi
done
maxrss_mib=$(awk -v k="$maxrss" 'BEGIN { printf "%.1f", k / 1024 }')
gor() { if [ "$1" = n/a ]; then echo n/a; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a * 1e6 / b }'; fi; }
f2() { awk -v v="$1" 'BEGIN { printf "%.2f", v }'; }
mb() { fdiv "$1" 1e6 | cut -d. -f1; } # bytes/s -> MB/s
if want verity || want integrity; then RSS_INPUTS="${DENSE_MIB} MiB and ${SPARSE_MIB} MiB"; else RSS_INPUTS="${DENSE_MIB} MiB"; fi

cat <<EOF
## Benchmark ($( [ "$QUICK" = 1 ] && echo "BENCH_QUICK: ${DENSE_MIB} MiB dense, ${SPARSE_MIB} MiB sparse with ${SPARSE_DATA_MIB} MiB data" || echo "1 GiB dense, 8 GiB sparse with 256 MiB data")$( [ "$ONLY" = all ] || echo "; BENCH_ONLY=$ONLY"))

Built from: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && [ -n "$(git status --porcelain --untracked-files=no -- tools 2>/dev/null)" ] && echo " plus uncommitted changes under tools/").
Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), Linux $(uname -r); $(go version | cut -d' ' -f3), $(openssl version | cut -d' ' -f1-2), $(veritysetup --version | cut -d' ' -f1-2).
Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average $load0 before, $load1 after (shared machine); best of $RUNS runs.
Inputs in $D (page cache warm except where noted); verity and crypt outputs in $O$(df --output=fstype "$O" 2>/dev/null | tail -1 | sed 's/^/ (/; s/$/)/').

| Goal | Ours | Reference | Ratio | Target | Result |
|---|---|---|---|---|---|
EOF
if want verity; then
	r_verity=$(fdiv "${WALL[v_vs_dense]}" "${WALL[v_ours_dense]}")
	echo "| verity format ${DENSE_MIB} MiB: throughput vs veritysetup | $(s v_ours_dense) s ($(mbs "$DB" "${WALL[v_ours_dense]}") MB/s, $(cores v_ours_dense) cores) | $(s v_vs_dense) s ($(mbs "$DB" "${WALL[v_vs_dense]}") MB/s) | $(f2 "$r_verity")× | ≥ 2.2× | $(verdict "$r_verity" ">=" 2.2) |"
fi
if want crypt; then
	xts_pc=$(mbs "$DB" "${CPU[c_xts]}")
	cbc_tp=$(mbs "$DB" "${WALL[c_cbc]}")
	r_xts=$(fdiv "$xts_pc" "$(fdiv "$O_XTS" 1e6)")
	r_cbc=$(fdiv "$cbc_tp" "$(fdiv "$O_CBC" 1e6)")
	r_xts_multi=$(gor "$G_XTS_MULTI" "$O_XTS_MULTI")
	floor_pc=$(mbs "$DB" "${CPU[c_floor]}")
	r_floor=$(fdiv "$floor_pc" "$(fdiv "$O_XTS" 1e6)")
	echo "| aes-xts-plain64 encrypt (64-byte key, 4 KiB sectors), per core, whole tool | $xts_pc MB/s per CPU-s ($(mbs "$DB" "${WALL[c_xts]}") MB/s wall, $(cores c_xts) cores) | openssl aes-256-xts $(mb "$O_XTS") MB/s per core | $(f2 "$r_xts")× | ≥ 0.8× | $(verdict "$r_xts" ">=" 0.8) |"
	echo "| aes-xts-plain64 encrypt, per core with all $NCPU cores busy, tools/crypt in memory | $G_XTS_MULTI MB/s per core (wall, $NCPU goroutines) | openssl speed -multi $NCPU aes-256-xts: $(mb "$O_XTS_MULTI") MB/s per process (its sum / $NCPU, wall) | ${r_xts_multi}× | ≥ 0.8× | $(verdict "$r_xts_multi" ">=" 0.8) |"
	echo "| (bound for the whole-tool row) copy floor: dd of the same ${DENSE_MIB} MiB to the same place, no encryption | $floor_pc MB/s per CPU-s ($(cs c_floor) CPU-s; the tool $(cs c_xts)) | openssl aes-256-xts $(mb "$O_XTS") MB/s per core | $(f2 "$r_floor")× | ≥ 0.8× | $(verdict "$r_floor" ">=" 0.8) |"
	echo "| aes-cbc-plain encrypt (16-byte key, 4 KiB sectors), whole tool | $cbc_tp MB/s wall ($(mbs "$DB" "${CPU[c_cbc]}") MB/s per CPU-s, $(cores c_cbc) cores) | openssl aes-128-cbc $(mb "$O_CBC") MB/s single stream | $(f2 "$r_cbc")× | ≥ 2× | $(verdict "$r_cbc" ">=" 2) |"
fi
if want integrity; then
	r_int=$(fdiv "${WALL[i_ours]}" "${WALL[i_cp]}")
	echo "| integrity format crc32c/4K separate, time vs cp (${CACHE}) | $(s i_ours) s | cp $(s i_cp) s | $(f2 "$r_int")× | ≤ 1.3× | $(verdict "$r_int" "<=" 1.3) |"
fi
echo "| peak RSS, $RSS_INPUTS inputs (max over our runs) | $maxrss_mib MiB | — | — | ≤ 64 MiB | $(verdict "$maxrss_mib" "<=" 64) |"
if want verity; then
	r_sparse=$(fdiv "${WALL[v_ours_sparse]}" "${WALL[v_ours_small]}")
	echo "| verity ${SPARSE_MIB} MiB sparse (${SPARSE_DATA_MIB} MiB data) vs dense ${SPARSE_DATA_MIB} MiB | $(s v_ours_sparse) s | $(s v_ours_small) s | $(f2 "$r_sparse")× | ≤ 3× | $(verdict "$r_sparse" "<=" 3) |"
fi
cat <<EOF

| Run | Wall s | CPU s (user+sys) | Cores used | MB/s (wall) | MB/s per CPU-s | Peak RSS MiB |
|---|---|---|---|---|---|---|
EOF
row() { # KEY LABEL BYTES
	printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$2" "$(s "$1")" "$(cs "$1")" "$(cores "$1")" \
		"$(mbs "$3" "${WALL[$1]}")" "$(mbs "$3" "${CPU[$1]}")" "$(mib "$1")"
}
if want verity; then
	row v_ours_dense "dm-verity format, dense ${DENSE_MIB} MiB" "$DB"
	row v_vs_dense "veritysetup format, dense ${DENSE_MIB} MiB" "$DB"
	row v_ours_small "dm-verity format, dense ${SPARSE_DATA_MIB} MiB" "$SB"
	row v_vs_small "veritysetup format, dense ${SPARSE_DATA_MIB} MiB" "$SB"
	row v_ours_sparse "dm-verity format, sparse ${SPARSE_MIB} MiB (MB/s of the image size)" "$((SPARSE_MIB << 20))"
	row v_vs_sparse "veritysetup format, sparse ${SPARSE_MIB} MiB" "$((SPARSE_MIB << 20))"
	row v_ours_small_disk "dm-verity format, dense ${SPARSE_DATA_MIB} MiB, output on disk" "$SB"
	row v_ours_sparse_disk "dm-verity format, sparse ${SPARSE_MIB} MiB, output on disk" "$((SPARSE_MIB << 20))"
fi
if want crypt; then
	row c_xts "dm-crypt encrypt aes-xts-plain64, ${DENSE_MIB} MiB" "$DB"
	row c_cbc "dm-crypt encrypt aes-cbc-plain, ${DENSE_MIB} MiB" "$DB"
	row c_xts_mmap "dm-crypt encrypt aes-xts-plain64, ${DENSE_MIB} MiB, DMCRYPT_IO=mmap (input mapped, no copy out of the page cache)" "$DB"
	row c_floor "dd bs=1M conv=fsync, ${DENSE_MIB} MiB, same input and output place (copy floor, no encryption)" "$DB"
	row c_xts_disk "dm-crypt encrypt aes-xts-plain64, ${DENSE_MIB} MiB, output on disk (O_DIRECT)" "$DB"
	row c_floor_disk "dd bs=1M conv=fsync, ${DENSE_MIB} MiB, output on disk (copy floor)" "$DB"
fi
if want integrity; then
	row i_ours "dm-integrity format, ${DENSE_MIB} MiB ($CACHE)" "$DB"
	row i_cp "cp, ${DENSE_MIB} MiB ($CACHE)" "$DB"
	row i_sparse "dm-integrity format, sparse ${SPARSE_MIB} MiB (warm)" "$((SPARSE_MIB << 20))"
fi
echo
if want verity; then
	cat <<EOF
Hash devices of dm-verity and veritysetup (same salt and UUID): dense $V_SAME, sparse $VS_SAME.
Sparse vs dense ${SPARSE_DATA_MIB} MiB with the hash device on disk (fsynced, $((SPARSE_MIB / 128)) MiB of tree for the sparse image): $(f2 "$(fdiv "${WALL[v_ours_sparse_disk]}" "${WALL[v_ours_small_disk]}")")×.
veritysetup on the sparse image: $(s v_vs_sparse) s, so dm-verity is $(f2 "$(fdiv "${WALL[v_vs_sparse]}" "${WALL[v_ours_sparse]}")")× faster there.
EOF
fi
if want crypt; then
	cat <<EOF
openssl speed measures one stream's user CPU time on 4 KiB buffers in memory; our per-core figure is the
whole tool (read, encrypt, write the file) divided by its user+sys CPU time. The copy floor row is what
reading and writing the file costs without any encryption (dd): the whole-tool ratio cannot exceed it.
With all $NCPU cores busy: openssl speed -multi $NCPU sums its $NCPU processes' rates (each over elapsed time)
and we divide by $NCPU; tools/crypt ...Parallel runs $NCPU goroutines: bytes / wall seconds / $NCPU. Wall-clock on
both sides: meaningful only on an otherwise idle machine.
The tools/crypt library alone (go test -bench, one core, 4 KiB sectors in memory, best of $RUNS):
aes-xts-plain64 $G_XTS MB/s ($(gor "$G_XTS" "$O_XTS")× openssl per core), aes-cbc-plain $G_CBC MB/s ($(gor "$G_CBC" "$O_CBC")× openssl single stream).
With all $NCPU cores busy, per core: aes-xts-plain64 $G_XTS_MULTI MB/s (${r_xts_multi}× openssl's $(mb "$O_XTS_MULTI")), aes-cbc-plain $G_CBC_MULTI MB/s.
EOF
fi
