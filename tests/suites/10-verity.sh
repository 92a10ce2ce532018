#!/usr/bin/env bash
# dm-verity: tools/cmd/dm-verity against veritysetup (cryptsetup-bin), the
# independent oracle. Root hashes and whole hash devices must be
# byte-identical for every hash, block size, format, salt and superblock
# choice; veritysetup must accept our trees; our verify must find flipped
# bytes; bad input must fail with one line and leave no HASH file.
set -u
: "${ROOT:?}" "${BIN:?}" "${WORK:?}" "${PY:?}"
. "$ROOT/tests/lib.sh"

VS=$(command -v veritysetup || true)
DV="$BIN/dm-verity"
UUID=0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0
SALT=5eed00112233445566778899aabbccddeeff0123456789abcdef0123456789ab
cd "$WORK" || exit 1

# Deterministic pseudo-random data: N blocks of BS bytes, some of them zero.
mkdata() { # FILE BLOCKS BS
	"$PY" - "$@" <<'EOF'
import hashlib, sys
path, n, bs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "wb") as f:
    for i in range(n):
        if i % 7 == 3:
            f.write(bytes(bs))
            continue
        seed = hashlib.sha256(b"rules_dm verity test %d %d" % (bs, i)).digest()
        f.write((seed * (bs // 32 + 1))[:bs])
EOF
}

flip() { # FILE OFFSET
	"$PY" -c 'import sys
f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 1]))' "$1" "$2"
}
roothash() { sed -n 's/^Root hash:[[:space:]]*//p' "$1"; }

# compare NAME DATA FLAGS... : veritysetup format and dm-verity format with the
# same flags; root hashes and hash files must be identical.
compare() {
	_data=$1
	shift
	rm -f vs.hash dv.hash
	"$VS" format "$_data" vs.hash "$@" >vs.out 2>&1 || { echo "veritysetup failed: $*"; cat vs.out; return 1; }
	"$DV" format "$_data" dv.hash "$@" >dv.out 2>&1 || { echo "dm-verity failed: $*"; cat dv.out; return 1; }
	_a=$(roothash vs.out)
	_b=$(roothash dv.out)
	if [ -z "$_a" ] || [ "$_a" != "$_b" ]; then
		echo "root hash differs for $*: veritysetup $_a, dm-verity $_b"
		return 1
	fi
	cmp vs.hash dv.hash || { echo "hash devices differ for $*"; return 1; }
}

# matrix HASH DBS HBS BLOCKS: formats 0/1 x salt given/empty x superblock on/off.
matrix() {
	_h=$1 _dbs=$2 _hbs=$3 _n=$4
	_d=data.$_dbs.$_n
	[ -e "$_d" ] || mkdata "$_d" "$_n" "$_dbs"
	for _fmt in 1 0; do
		for _salt in "$SALT" -; do
			for _sb in --uuid=$UUID --no-superblock; do
				compare "$_d" --hash "$_h" --data-block-size "$_dbs" --hash-block-size "$_hbs" \
					--format "$_fmt" --salt "$_salt" "$_sb" || return 1
			done
		done
	done
}

if [ -z "$VS" ]; then
	skip verity-oracle "veritysetup not installed"
else
	for h in sha256 sha1 sha512; do
		for bs in 512:512 1024:1024 4096:4096 512:4096 4096:512 1024:2048; do
			dbs=${bs%:*} hbs=${bs#*:}
			check "verity-matrix-$h-$dbs-$hbs-777blocks" matrix "$h" "$dbs" "$hbs" 777
		done
	done
	# Tree shapes: one block (no tree), exactly full levels, one block more.
	for n in 1 2 128 129; do
		check "verity-matrix-sha256-4096-4096-${n}blocks" matrix sha256 4096 4096 "$n"
	done
	for n in 256 257; do # 16 digests per 512-byte block: 2 full levels, then 3
		check "verity-matrix-sha256-512-512-${n}blocks" matrix sha256 512 512 "$n"
	done
	for n in 64 65; do # 8 sha512 digests per 512-byte hash block
		check "verity-matrix-sha512-4096-512-${n}blocks" matrix sha512 4096 512 "$n"
	done
	check "verity-matrix-sha1-512-512-4097blocks" matrix sha1 512 512 4097

	# Defaults: only salt and UUID pinned; then the hash in the same file as the data.
	check verity-defaults compare data.4096.777 --salt "$SALT" --uuid "$UUID"
	check verity-hash-offset-separate compare data.4096.777 --salt "$SALT" --uuid "$UUID" --hash-offset 8192
	check verity-hash-offset-512 compare data.4096.777 --salt "$SALT" --uuid "$UUID" --hash-offset 512 --hash-block-size 4096
	same_file() { # FLAGS...
		_sz=$(stat -c %s data.4096.777)
		cp data.4096.777 vs.img
		cp data.4096.777 dv.img
		"$VS" format vs.img vs.img --hash-offset "$_sz" --data-blocks 777 "$@" >vs.out 2>&1 || { cat vs.out; return 1; }
		"$DV" format dv.img dv.img --hash-offset "$_sz" "$@" >dv.out 2>&1 || { cat dv.out; return 1; }
		[ "$(roothash vs.out)" = "$(roothash dv.out)" ] || { echo "root hash differs"; return 1; }
		cmp vs.img dv.img || return 1
		cmp -n "$_sz" dv.img data.4096.777 || { echo "data changed"; return 1; }
		# veritysetup verify takes the parameters from the superblock, else from VFLAGS.
		"$VS" verify dv.img dv.img "$(roothash dv.out)" --hash-offset "$_sz" --data-blocks 777 "${VFLAGS[@]}"
	}
	VFLAGS=()
	check verity-same-file-superblock same_file --salt "$SALT" --uuid "$UUID"
	VFLAGS=(--salt - --no-superblock --format 0 --hash sha1)
	check verity-same-file-no-superblock same_file "${VFLAGS[@]}"
	VFLAGS=()

	# veritysetup verify accepts our output (superblock read by veritysetup).
	vs_verify() {
		rm -f dv.hash
		"$DV" format data.1024.777 dv.hash --data-block-size 1024 --hash sha512 --seed vs-verify >dv.out || return 1
		"$VS" verify data.1024.777 dv.hash "$(roothash dv.out)"
	}
	check verity-veritysetup-verifies-ours vs_verify
	vs_verify_nosb() {
		rm -f dv.hash
		"$DV" format data.4096.777 dv.hash --format 0 --salt - --no-superblock >dv.out || return 1
		"$VS" verify data.4096.777 dv.hash "$(roothash dv.out)" --format 0 --salt - --no-superblock
	}
	check verity-veritysetup-verifies-ours-no-superblock vs_verify_nosb
	# ... and our verify accepts veritysetup's.
	dv_verify_vs() {
		rm -f vs.hash
		"$VS" format data.512.777 vs.hash --data-block-size 512 --hash-block-size 1024 --hash sha1 >vs.out || return 1
		"$DV" verify data.512.777 vs.hash "$(roothash vs.out)"
	}
	check verity-ours-verifies-veritysetup dv_verify_vs
fi

# FEC: parity byte-identical to veritysetup's, separate and all in one file.
fec_compare() { # ROOTS FLAGS...
	_r=$1
	shift
	rm -f vs.hash dv.hash vs.fec dv.fec
	"$VS" format "$@" vs.hash --fec-device vs.fec --fec-roots "$_r" >vs.out 2>&1 || { cat vs.out; return 1; }
	"$DV" format "$@" dv.hash --fec-device dv.fec --fec-roots "$_r" >dv.out 2>&1 || { cat dv.out; return 1; }
	[ "$(roothash vs.out)" = "$(roothash dv.out)" ] || { echo "root hash differs"; return 1; }
	cmp vs.hash dv.hash && cmp vs.fec dv.fec
}
fec_one_file() { # ROOTS
	_sz=$(stat -c %s data.4096.777)
	_fo=$((_sz + 9 * 4096))
	cp data.4096.777 vs.img
	cp data.4096.777 dv.img
	"$VS" format vs.img vs.img --hash-offset "$_sz" --data-blocks 777 --fec-device vs.img --fec-offset "$_fo" \
		--fec-roots "$1" --salt "$SALT" --uuid "$UUID" >vs.out 2>&1 || { cat vs.out; return 1; }
	"$DV" format dv.img dv.img --hash-offset "$_sz" --fec-device dv.img --fec-offset "$_fo" \
		--fec-roots "$1" --salt "$SALT" --uuid "$UUID" >dv.out 2>&1 || { cat dv.out; return 1; }
	cmp vs.img dv.img
}
fec_on_data() { # parity appended to the data file, tree in a separate file
	rm -f vs.hash dv.hash
	cp data.4096.777 vs.img
	cp data.4096.777 dv.img
	"$VS" format vs.img vs.hash --salt - --no-superblock --fec-device vs.img --fec-offset $((800 * 4096)) \
		--fec-roots 9 >vs.out 2>&1 || { cat vs.out; return 1; }
	"$DV" format dv.img dv.hash --salt - --no-superblock --fec-device dv.img --fec-offset $((800 * 4096)) \
		--fec-roots 9 >dv.out 2>&1 || { cat dv.out; return 1; }
	cmp vs.img dv.img && cmp vs.hash dv.hash
}
fec_repairs() { # veritysetup repairs a flipped data byte with our parity
	rm -f dv.hash dv.fec
	"$DV" format data.4096.777 dv.hash --fec-device dv.fec --fec-roots 4 --seed fec >dv.out || return 1
	cp data.4096.777 fbad.data
	flip fbad.data 12345
	"$VS" verify fbad.data dv.hash "$(roothash dv.out)" --fec-device dv.fec --fec-roots 4 >vs.out 2>&1
	cat vs.out
	grep -q 'Found [1-9][0-9]* repairable errors' vs.out
}
if [ -n "$VS" ]; then
	for r in 2 7 24; do
		check "verity-fec-roots-$r-4096" fec_compare "$r" data.4096.777 --salt "$SALT" --uuid "$UUID"
	done
	check verity-fec-roots-11-512-chromeos fec_compare 11 data.512.777 --data-block-size 512 --hash-block-size 512 \
		--format 0 --salt - --no-superblock --hash sha1
	check verity-fec-roots-3-1024-sha512 fec_compare 3 data.1024.777 --data-block-size 1024 --hash-block-size 1024 \
		--hash sha512 --salt "$SALT" --uuid "$UUID"
	check verity-fec-one-file fec_one_file 5
	check verity-fec-on-data-file fec_on_data
	check verity-fec-hash-offset-fec-offset fec_compare 5 data.4096.777 --salt "$SALT" --uuid "$UUID" \
		--hash-offset 8192 --fec-offset 4096
	check verity-fec-veritysetup-repairs fec_repairs
	fec_verify_vs() { # our verify checks veritysetup's parity, and finds a flipped parity byte
		rm -f vs.hash vs.fec
		"$VS" format data.4096.777 vs.hash --fec-device vs.fec --fec-roots 6 >vs.out || return 1
		"$DV" verify data.4096.777 vs.hash "$(roothash vs.out)" --fec-device vs.fec --fec-roots 6 || return 1
		flip vs.fec 100
		! "$DV" verify data.4096.777 vs.hash "$(roothash vs.out)" --fec-device vs.fec --fec-roots 6
	}
	check verity-fec-verify-veritysetup-parity fec_verify_vs
fi
rm -f out.fec
expect_fail verity-fec-bad-roots 'fec-roots' "$DV" format data.4096.777 out.hash --fec-device out.fec --fec-roots 25
expect_fail verity-fec-block-sizes 'block sizes' "$DV" format data.4096.777 out.hash --fec-device out.fec --hash-block-size 512
no_fec_left() { [ ! -e out.fec ] && [ ! -e out.hash ]; }
check verity-fec-no-partial-output no_fec_left

# Determinism: the same seed gives the same bytes; another seed another salt.
determinism() {
	rm -f d1 d2 d3
	"$DV" format data.4096.777 d1 --seed abc >o1 && "$DV" format data.4096.777 d2 --seed abc >o2 &&
		"$DV" format data.4096.777 d3 --seed abd >o3 || return 1
	cmp d1 d2 && cmp o1.tmp o1.tmp 2>/dev/null
	[ "$(roothash o1)" = "$(roothash o2)" ] && [ "$(roothash o1)" != "$(roothash o3)" ]
}
check verity-deterministic-seed determinism

# JSON outputs.
json_out() {
	rm -f dv.hash p.json
	"$DV" format data.4096.777 dv.hash --json --params-out p.json --seed j >j.out || return 1
	"$PY" - j.out p.json <<'EOF'
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
assert a == b, (a, b)
for k in ["target", "version", "data_block_size", "hash_block_size", "data_blocks", "hash_start_block",
          "hash_offset", "hash_algorithm", "root_hash", "salt", "superblock", "uuid", "hash_bytes", "data_sectors"]:
    assert k in a, k
assert a["target"] == "verity" and a["data_blocks"] == 777 and a["hash_start_block"] == 1
assert a["data_sectors"] == 777 * 8 and a["hash_bytes"] == 9 * 4096 and len(a["root_hash"]) == 64
EOF
}
check verity-json-params-out json_out

# Our verify finds a flipped byte in the data and in each part of the tree.
rm -f good.hash
"$DV" format data.4096.777 good.hash --seed flip >good.out
ROOTH=$(roothash good.out)
check verity-verify-good "$DV" verify data.4096.777 good.hash "$ROOTH"
cp data.4096.777 bad.data
flip bad.data $((500 * 4096 + 17))
expect_fail verity-verify-flipped-data 'data block 500 ' "$DV" verify bad.data good.hash "$ROOTH"
cp good.hash bad.hash
flip bad.hash $((4096 + 5))
expect_fail verity-verify-flipped-top-hash 'hash block 1 .*root hash' "$DV" verify data.4096.777 bad.hash "$ROOTH"
cp good.hash bad.hash
flip bad.hash $((5 * 4096 + 100))
expect_fail verity-verify-flipped-level0-hash 'hash block 5 \(level 0' "$DV" verify data.4096.777 bad.hash "$ROOTH"
expect_fail verity-verify-wrong-root 'root hash' "$DV" verify data.4096.777 good.hash "$(printf '%064d' 0)"
if [ -n "$VS" ]; then
	vs_rejects() { ! "$VS" verify bad.data good.hash "$ROOTH" >/dev/null 2>&1; }
	check verity-veritysetup-rejects-flipped-data vs_rejects
fi

# Bad input: exit != 0, one stderr line, no HASH left behind.
nohash() { # NAME PATTERN ARGS... (HASH is out.hash)
	_n=$1 _p=$2
	shift 2
	rm -f out.hash
	expect_fail "$_n" "$_p" "$DV" format "$@"
	if compgen -G 'out.hash' >/dev/null || compgen -G '.out.hash.tmp-*' >/dev/null; then
		echo "  FAIL $_n-no-output (out.hash left behind)"
		_record FAIL "$_n-no-output"
	fi
}
head -c 5000 data.4096.777 >odd.data
nohash verity-bad-size 'not a non-zero multiple' odd.data out.hash
nohash verity-bad-block-size 'block size' data.4096.777 out.hash --data-block-size 1000
nohash verity-big-block-size 'block size' data.4096.777 out.hash --hash-block-size 8192
nohash verity-nonhex-salt 'salt' data.4096.777 out.hash --salt xyz
nohash verity-long-salt 'salt.*257 bytes' data.4096.777 out.hash --salt "$(printf 'ab%.0s' $(seq 257))"
nohash verity-missing-data 'no such file' missing.data out.hash
nohash verity-unknown-hash 'hash' data.4096.777 out.hash --hash md5
nohash verity-bad-format 'format' data.4096.777 out.hash --format 2
nohash verity-bad-uuid 'uuid' data.4096.777 out.hash --uuid nope
nohash verity-bad-offset 'hash-offset' data.4096.777 out.hash --hash-offset 1000
nohash verity-unknown-flag 'flag' data.4096.777 out.hash --bogus
usage_rc() { "$DV" format data.4096.777 out.hash --hash md5 2>/dev/null; [ $? -eq 2 ]; }
check verity-usage-exit-2 usage_rc
same_needs_offset() { cp data.4096.777 s.img; ! "$DV" format s.img s.img 2>/dev/null && cmp s.img data.4096.777; }
check verity-same-file-needs-offset same_needs_offset

# DATA = HASH with --hash-offset past the end of the file: veritysetup covers
# the whole blocks the file holds (a partial last block is left out) and grows
# the file to hold the tree; dm-verity must write the same bytes.
past_eof() { # SIZE
	[ -n "$VS" ] || return 0
	head -c "$1" data.4096.777 >pe.vs.img && cp pe.vs.img pe.dv.img && cp pe.vs.img pe.orig.img
	"$VS" format pe.vs.img pe.vs.img --hash-offset 4194304 --salt "$SALT" --uuid "$UUID" >vs.out 2>&1 || { cat vs.out; return 1; }
	"$DV" format pe.dv.img pe.dv.img --hash-offset 4194304 --salt "$SALT" --uuid "$UUID" >dv.out 2>&1 || { cat dv.out; return 1; }
	[ "$(roothash vs.out)" = "$(roothash dv.out)" ] || { echo "root hash differs: $(roothash vs.out) vs $(roothash dv.out)"; return 1; }
	grep '^Data blocks' vs.out dv.out
	cmp pe.vs.img pe.dv.img && cmp -n "$1" pe.dv.img pe.orig.img
}
if [ -n "$VS" ]; then
	check verity-same-file-offset-past-eof past_eof 1048576
	check verity-same-file-offset-past-eof-partial-block past_eof 1000000
else
	skip verity-same-file-offset-past-eof "veritysetup missing"
fi
# More than 1 GiB of growth is refused (usage), and DATA is left as it was.
too_far() {
	cp data.4096.777 pe.dv.img
	"$DV" format pe.dv.img pe.dv.img --hash-offset 4294967296 >dv.out 2>&1
	tf_rc=$?
	cat dv.out
	[ $tf_rc -eq 2 ] && grep -q 'past the end' dv.out && cmp pe.dv.img data.4096.777
}
check verity-same-file-offset-too-far too_far
# A failure while growing in place (file size limit) gives DATA its size back.
grow_fail() {
	cp data.4096.777 pe.dv.img
	(ulimit -f $(( $(stat -c %s pe.dv.img) / 512 + 8 )); "$DV" format pe.dv.img pe.dv.img --hash-offset 8388608) >dv.out 2>&1 && { echo "succeeded?"; return 1; }
	cat dv.out
	cmp pe.dv.img data.4096.777
}
check verity-same-file-grow-failure-restores-size grow_fail
# SIGTERM while growing in place: DATA goes back to its size (a run that ends
# before the signal lands must have succeeded instead).
grow_term() {
	head -c $((192 << 20)) /dev/urandom >pe.orig.img && cp pe.orig.img pe.dv.img || return 1
	gt_sz=$(stat -c %s pe.dv.img)
	"$DV" format pe.dv.img pe.dv.img --hash-offset $((gt_sz + 4096)) >dv.out 2>dv.err &
	gt_p=$!
	sleep 0.1
	kill -TERM $gt_p 2>/dev/null
	wait $gt_p
	gt_rc=$?
	cat dv.err
	if [ $gt_rc -eq 0 ]; then echo "(finished before the signal)"; return 0; fi
	[ "$(stat -c %s pe.dv.img)" = "$gt_sz" ] || { echo "size $(stat -c %s pe.dv.img), was $gt_sz"; return 1; }
	cmp pe.dv.img pe.orig.img
}
check verity-same-file-sigterm-restores-size grow_term
# --params-out that cannot be created: no HASH left behind.
params_unwritable() {
	rm -f out.hash; : >plainfile
	"$DV" format --params-out plainfile/p.json data.4096.777 out.hash >dv.out 2>&1 && return 1
	cat dv.out
	[ ! -e out.hash ] && ! compgen -G '.out.hash.tmp-*' >/dev/null
}
check verity-params-out-unwritable-no-hash params_unwritable
rm -f pe.vs.img pe.dv.img pe.orig.img plainfile
