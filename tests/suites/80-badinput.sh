#!/usr/bin/env bash
# Bad input, robustness and key hygiene across the CLIs (issue 8).
#
#   - a table of bad invocations of dm-verity, dm-crypt, dm-integrity,
#     dm-compose and dm-activate: missing / empty / truncated / unaligned
#     inputs, overflowing sizes, bad keys, unknown names, conflicting flags,
#     unwritable outputs, disk full (ulimit -f and a 1 MiB tmpfs), hostile
#     manifests. Each must exit with the contract's code (2 usage, 1 other),
#     print exactly one stderr line naming the problem, no Go panic or trace,
#     and leave no artifact under its final name and no .*.tmp-* file;
#   - SIGTERM in the middle of a long write (sparse multi-GiB inputs);
#   - corruption: one flipped byte in data, hash tree, verity superblock,
#     integrity tags and integrity superblock is caught by dm-compose verify
#     (even with the manifest's sha256 rewritten to match) and by the layer
#     tool's own verify;
#   - key hygiene: the key (raw, hex, either XTS half) appears in no output,
#     no log, no argv or environment of a running build, no error message;
#     a group-readable key file gets one warning;
#   - two concurrent dm-compose builds into one outdir: one fails cleanly;
#   - tests/fuzz/run.sh with a short fuzz time.
# Oracles that are not our own decoders: veritysetup for the DATA=HASH case;
# the flipped bytes are placed from the on-disk layouts (kernel structs).
set -u
. "$ROOT/tests/lib.sh"

cd "$WORK" || exit 1
umask 077 # key files private (the tools warn otherwise)
export PATH=$PATH:/usr/sbin:/sbin
V=$BIN/dm-verity
C=$BIN/dm-crypt
I=$BIN/dm-integrity
DC=$BIN/dm-compose
DA=$BIN/dm-activate
for t in "$V" "$C" "$I" "$DC" "$DA"; do
	if [ ! -x "$t" ]; then
		skip "badinput" "$(basename "$t") was not built"
		exit 0
	fi
done

# ---- helpers -------------------------------------------------------------------

# leftovers: temporaries (.NAME.tmp-*) anywhere under $WORK; removed once reported
# so that one bad case does not fail the next ones.
leftovers() {
	local l
	l=$(find "$WORK" -name '.*.tmp-*' 2>/dev/null)
	if [ -n "$l" ]; then
		echo "temporary files left:"
		echo "$l" | sed 's/^/  /'
		echo "$l" | while read -r f; do rm -rf "$f"; done
		return 1
	fi
}

# _bad CODE REGEX OUT CMD...: CMD exits CODE (an ERE over the status, e.g. 1, 2,
# [12]), prints exactly one stderr line matching REGEX and nothing like a Go
# panic; OUT ("-" for none; several paths separated by ':') must not exist
# afterwards; no temporary file is left.
_bad() {
	local code=$1 re=$2 out=$3 rc ok=0 o
	shift 3
	if declare -F "$1" >/dev/null; then # a helper of this suite (fsz, act)
		"$@" >"$WORK/.bad.out" 2>"$WORK/.bad.err"
	else
		timeout 120 "$@" >"$WORK/.bad.out" 2>"$WORK/.bad.err"
	fi
	rc=$?
	if ! [[ $rc =~ ^($code)$ ]]; then
		echo "exit $rc, want $code"
		ok=1
	fi
	if [ "$(wc -l <"$WORK/.bad.err")" -ne 1 ]; then
		echo "want exactly one stderr line, got $(wc -l <"$WORK/.bad.err")"
		ok=1
	elif ! grep -Eq -- "$re" "$WORK/.bad.err"; then
		echo "stderr does not match /$re/"
		ok=1
	fi
	if grep -Eq 'goroutine [0-9]|panic:|runtime error|\.go:[0-9]+' "$WORK/.bad.err"; then
		echo "Go panic or trace on stderr"
		ok=1
	fi
	if [ "$out" != - ]; then
		IFS=: read -r -a outs <<<"$out"
		for o in "${outs[@]}"; do
			if [ -e "$o" ]; then
				echo "artifact left under its final name: $o"
				rm -rf "$o" # so that the next rows start clean
				ok=1
			fi
		done
	fi
	leftovers || ok=1
	echo "stderr:"
	sed 's/^/  | /' "$WORK/.bad.err" | head -n 10
	return $ok
}

# bad NAME CODE REGEX OUT CMD...: one row of the table.
bad() {
	local name=$1
	shift
	check "bad: $name" _bad "$@"
}

flip() { # FILE OFFSET: xor one byte with 0x01
	"$PY" - "$1" "$2" <<'EOF'
import sys
f = open(sys.argv[1], "r+b")
off = int(sys.argv[2])
f.seek(off)
b = f.read(1)
if len(b) != 1:
    sys.exit("offset %d is past the end of %s" % (off, sys.argv[1]))
f.seek(off)
f.write(bytes([b[0] ^ 1]))
EOF
}

mget() { # MANIFEST EXPR: a manifest field (python expression on m)
	"$PY" -c 'import json, sys; m = json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"m": m}))' "$1" "$2"
}

# rehash MANIFEST: rewrite every artifact's size and sha256 to match the files
# (an attacker who can edit the manifest but not the root hash or tags).
rehash() {
	"$PY" - "$1" <<'EOF'
import hashlib, json, os, sys
p = sys.argv[1]
m = json.load(open(p))
d = os.path.dirname(p)
for a in m["artifacts"]:
    b = open(os.path.join(d, a["path"]), "rb").read()
    a["size"], a["sha256"] = len(b), hashlib.sha256(b).hexdigest()
open(p, "w").write(json.dumps(m, indent=2) + "\n")
EOF
}

# ---- inputs --------------------------------------------------------------------
"$PY" -c "import random; r=random.Random(80); open('d.img','wb').write(bytes(r.getrandbits(8) for _ in range(1<<20)))"
"$PY" -c "import random; r=random.Random(81); open('fs.img','wb').write(bytes(r.getrandbits(8) for _ in range(8<<20)))"
: >empty.img
head -c 1000 d.img >odd.img          # not a multiple of 512
head -c $((4096 * 3 + 512)) d.img >odd4k.img # a multiple of 512, not of 4096
"$PY" -c "import os; open('k64.key','wb').write(bytes(range(0x41, 0x81)))" # fixed, recognisable
head -c 16 d.img >k16.key
: >kempty.key
mkdir -p kdir.key
echo not-a-dir >plainfile
SALT257=$(head -c 257 /dev/zero | od -An -tx1 | tr -d ' \n')

# ---- dm-verity --------------------------------------------------------------
bad "dm-verity: missing data" 1 "no such file" h.img "$V" format nope.img h.img
bad "dm-verity: empty data" 1 "0 bytes" h.img "$V" format empty.img h.img
bad "dm-verity: data not a multiple of the block" 1 "multiple of the data block size" h.img "$V" format odd.img h.img
bad "dm-verity: --hash-offset 2^63-1 (overflow)" 2 "hash-offset" h.img "$V" format --hash-offset 9223372036854775807 d.img h.img
bad "dm-verity: --hash-offset near 2^63, aligned" 2 "hash-offset.*too large" h.img "$V" format --hash-offset 9223372036854775296 d.img h.img
bad "dm-verity: --hash-offset 2^64 (does not parse)" 2 "hash-offset" h.img "$V" format --hash-offset 18446744073709551616 d.img h.img
bad "dm-verity: --data-blocks overflow" 2 "data-blocks.*too large" h.img "$V" format --data-blocks 4503599627370496 d.img h.img
bad "dm-verity: salt too long (257 bytes)" 2 "salt" h.img "$V" format --salt "$SALT257" d.img h.img
bad "dm-verity: non-hex salt" 2 "salt" h.img "$V" format --salt xyz d.img h.img
bad "dm-verity: unknown hash" 2 "unknown --hash" h.img "$V" format --hash md5 d.img h.img
bad "dm-verity: block size not a power of two" 2 "block size" h.img "$V" format --data-block-size 1000 d.img h.img
bad "dm-verity: unknown format version" 2 "format version" h.img "$V" format --format 2 d.img h.img
bad "dm-verity: unknown command" 2 "unknown command" - "$V" frobnicate d.img
bad "dm-verity: unknown flag" 2 "not defined" h.img "$V" format --bogus d.img h.img
bad "dm-verity: output under a regular file" 1 "not a directory" plainfile/h.img "$V" format d.img plainfile/h.img
bad "dm-verity: output directory missing" 1 "no such file" nodir/h.img "$V" format d.img nodir/h.img
bad "dm-verity: --params-out under a regular file" 1 "not a directory" h.img:plainfile/p.json "$V" format --params-out plainfile/p.json d.img h.img
bad "dm-verity verify: non-hex root" 2 "not a hex root hash" - "$V" verify d.img d.img zz
bad "dm-verity verify: no superblock in HASH" 1 "superblock|magic|signature" - "$V" verify d.img d.img 00
"$V" format d.img vh.img >/dev/null 2>&1
bad "dm-verity verify: root hash of the wrong length" 2 "ROOT is 2 bytes.*sha256 root hash is 32" - "$V" verify d.img vh.img abcd
# DATA = HASH with --hash-offset past the end of the file: veritysetup covers
# the file's blocks only; the tree must agree with it (or be refused).
if command -v veritysetup >/dev/null; then
	same_past_eof() {
		cp d.img vs.img && cp d.img ours.img || return 1
		veritysetup format --hash-offset=2097152 vs.img vs.img >vs.out || return 1
		salt=$(awk '/^Salt:/{print $2}' vs.out)
		uuid=$(awk '/^UUID:/{print $2}' vs.out)
		want=$(awk '/^Root hash:/{print $3}' vs.out)
		if ! "$V" format --salt "$salt" --uuid "$uuid" --hash-offset 2097152 ours.img ours.img >ours.out 2>ours.err; then
			# refusing is fine too, with one line
			[ "$(wc -l <ours.err)" -eq 1 ] && cat ours.err && return 0
			cat ours.err
			return 1
		fi
		got=$(awk '/^Root hash:/{print $3}' ours.out)
		echo "veritysetup: $want ($(awk '/^Data blocks:/{print $3}' vs.out) blocks); dm-verity: $got ($(awk '/^Data blocks:/{print $3}' ours.out) blocks)"
		[ "$got" = "$want" ]
	}
	check "dm-verity: DATA=HASH, --hash-offset past EOF agrees with veritysetup" same_past_eof
	rm -f vs.img ours.img
else
	skip "dm-verity: DATA=HASH past EOF" "veritysetup missing"
fi

# ---- dm-crypt -----------------------------------------------------------------
CX=("$C" encrypt --cipher aes-xts-plain64)
bad "dm-crypt: missing input" 1 "no such file" o.img "${CX[@]}" --key-file k64.key nope.img o.img
bad "dm-crypt: empty input (no 0-sector device)" 1 "empty|0 bytes|size" o.img "${CX[@]}" --key-file k64.key empty.img o.img
bad "dm-crypt: input a directory" 1 "regular file|directory" o.img "${CX[@]}" --key-file k64.key kdir.key o.img
bad "dm-crypt: input not a multiple of the sector" 1 "multiple of the sector size" o.img "${CX[@]}" --key-file k64.key --sector-size 4096 odd4k.img o.img
bad "dm-crypt: truncated input (1000 bytes)" 1 "multiple of the sector size" o.img "${CX[@]}" --key-file k64.key odd.img o.img
bad "dm-crypt: unknown cipher" 2 "cipher" o.img "$C" encrypt --cipher serpent-xts-plain64 --key-file k64.key d.img o.img
bad "dm-crypt: unknown IV mode" 2 "cipher" o.img "$C" encrypt --cipher aes-cbc-lmk --key-file k64.key d.img o.img
bad "dm-crypt: missing --cipher" 2 "cipher is required" o.img "$C" encrypt --key-file k64.key d.img o.img
bad "dm-crypt: no key" 2 "key is required" o.img "${CX[@]}" d.img o.img
bad "dm-crypt: key of wrong length (file, 16 bytes for xts)" "[12]" "key size|key is|bytes" o.img "${CX[@]}" --key-file k16.key d.img o.img
bad "dm-crypt: key of wrong length (hex, 2 bytes)" "[12]" "key size|key is|bytes" o.img "${CX[@]}" --key-hex 0011 d.img o.img
bad "dm-crypt: non-hex key" 2 "not a hex string" o.img "${CX[@]}" --key-hex xyz d.img o.img
bad "dm-crypt: --key-file with --key-hex" 2 "mutually exclusive" o.img "${CX[@]}" --key-file k64.key --key-hex 00 d.img o.img
bad "dm-crypt: key file missing" 1 "key file.*no such file" o.img "${CX[@]}" --key-file nokey.key d.img o.img
bad "dm-crypt: key file is a directory (unreadable as a key)" 1 "key file.*not a regular file" o.img "${CX[@]}" --key-file kdir.key d.img o.img
bad "dm-crypt: key file empty" 1 "key file.*empty" o.img "${CX[@]}" --key-file kempty.key d.img o.img
bad "dm-crypt: --iv-offset 2^64 (overflow)" 2 "iv-offset" o.img "${CX[@]}" --key-file k64.key --iv-offset 18446744073709551616 d.img o.img
bad "dm-crypt: --iv-offset negative" 2 "iv-offset" o.img "${CX[@]}" --key-file k64.key --iv-offset -1 d.img o.img
bad "dm-crypt: --iv-offset not a multiple of the sector" 2 "iv-offset" o.img "${CX[@]}" --key-file k64.key --sector-size 4096 --iv-offset 3 d.img o.img
bad "dm-crypt: --sector-size 3000" 2 "sector-size" o.img "${CX[@]}" --key-file k64.key --sector-size 3000 d.img o.img
bad "dm-crypt: --sector-size 2^32" 2 "sector-size" o.img "${CX[@]}" --key-file k64.key --sector-size 4294967296 d.img o.img
bad "dm-crypt: missing OUT" 2 "want IN and OUT" - "${CX[@]}" --key-file k64.key d.img
bad "dm-crypt: output under a regular file" 1 "not a directory" plainfile/o.img "${CX[@]}" --key-file k64.key d.img plainfile/o.img
bad "dm-crypt: --params-out under a regular file (OUT not committed either)" 1 "not a directory" o.img:plainfile/p.json \
	"${CX[@]}" --key-file k64.key --params-out plainfile/p.json d.img o.img

# ---- dm-integrity -------------------------------------------------------------
bad "dm-integrity: missing data" 1 "no such file" m.img "$I" format nope.img m.img
bad "dm-integrity: empty data" 1 "positive|empty|0" m.img "$I" format empty.img m.img
bad "dm-integrity: data not a multiple of the block" 1 "multiple of the block size" m.img "$I" format odd4k.img m.img
bad "dm-integrity: --journal-sections 2^32 (overflow)" 2 "journal.sections" m.img "$I" format --journal-sections 4294967296 d.img m.img
bad "dm-integrity: --journal-sections 2^31-1" 2 "journal.sections" m.img "$I" format --journal-sections 2147483647 d.img m.img
bad "dm-integrity: --interleave-sectors not a power of two" 2 "interleave" m.img "$I" format --layout interleaved --interleave-sectors 3 d.img m.img
bad "dm-integrity: --tag-size too large" 2 "tag size" m.img "$I" format --tag-size 1000 d.img m.img
bad "dm-integrity: salt of wrong length" 2 "salt" m.img "$I" format --salt 0011 d.img m.img
bad "dm-integrity: salt too long" 2 "salt" m.img "$I" format --salt "$SALT257" d.img m.img
bad "dm-integrity: unknown hash" 2 "unknown --hash" m.img "$I" format --hash md5 d.img m.img
bad "dm-integrity: unknown layout" 2 "layout" m.img "$I" format --layout striped d.img m.img
bad "dm-integrity: unknown mode" 2 "mode" m.img "$I" format --mode B d.img m.img
bad "dm-integrity: hmac-sha256 without a key" 2 "needs --hmac-key-file" m.img "$I" format --hash hmac-sha256 d.img m.img
bad "dm-integrity: hmac key file missing" 1 "key file" m.img "$I" format --hash hmac-sha256 --hmac-key-file nokey.key d.img m.img
bad "dm-integrity: hmac key with crc32c" 2 "only apply" m.img "$I" format --hmac-key-file k64.key d.img m.img
bad "dm-integrity: DATA = OUT" 2 "same file" - "$I" format d.img d.img
bad "dm-integrity: output under a regular file" 1 "not a directory" plainfile/m.img "$I" format d.img plainfile/m.img
bad "dm-integrity verify: garbage metadata" 1 "magic|superblock" - "$I" verify d.img d.img
bad "dm-integrity verify: empty metadata" 1 "superblock|EOF|short|small" - "$I" verify d.img empty.img
bad "dm-integrity table: not an integrity image" 1 "magic|superblock" - "$I" table d.img

# ---- dm-compose build -----------------------------------------------------------
DB=("$DC" build --in fs.img --outdir cbad)
bad "dm-compose: missing --in" 2 "--in" cbad "$DC" build --outdir cbad --stack verity-only
bad "dm-compose: missing --outdir" 2 "--outdir" - "$DC" build --in fs.img --stack verity-only
bad "dm-compose: input missing" 1 "input.*no such file" cbad/data.img "$DC" build --in nope.img --outdir cbad --stack verity-only
bad "dm-compose: --name too long for the lower layers' names" 2 "too long for a stack.*at most 54" cbad/data.img "$DC" build --in fs.img --outdir cbad --stack verity-then-crypt --key-file k64.key --name "$(printf '%060d' 0)"
bad "dm-compose: input empty" 1 "empty" cbad/data.img "$DC" build --in empty.img --outdir cbad --stack verity-only
bad "dm-compose: input truncated (not a multiple of 512)" 1 "multiple of 512" cbad/data.img "$DC" build --in odd.img --outdir cbad --stack verity-only
bad "dm-compose: input a directory" 1 "regular file" cbad/data.img "$DC" build --in kdir.key --outdir cbad --stack verity-only
bad "dm-compose: unknown stack" 2 "unknown stack" cbad "${DB[@]}" --stack verity-then-verity
bad "dm-compose: unknown profile" 2 "unknown profile" cbad "${DB[@]}" --stack crypt-only --profile fancy --key-file k64.key
bad "dm-compose: unknown cipher" 2 "cipher" cbad "${DB[@]}" --stack crypt-only --cipher aes-ctr-plain64 --key-file k64.key
bad "dm-compose: unknown verity hash" 2 "verity-hash" cbad "${DB[@]}" --stack verity-only --verity-hash md5
bad "dm-compose: unknown integrity hash" 2 "integrity-hash" cbad "${DB[@]}" --stack integrity-only --integrity-hash md5
bad "dm-compose: verity block size overflow" 2 "block size" cbad "${DB[@]}" --stack verity-only --verity-data-block-size 9223372036854775807
bad "dm-compose: --sector-size 2^32" 2 "sector-size" cbad "${DB[@]}" --stack crypt-only --key-file k64.key --sector-size 4294967296
bad "dm-compose: salt too long" 2 "salt" cbad "${DB[@]}" --stack verity-only --salt "$SALT257"
bad "dm-compose: key of wrong length" 2 "key is 16 bytes" cbad "${DB[@]}" --stack crypt-only --key-file k16.key
bad "dm-compose: non-hex key" 2 "not a hex string" cbad "${DB[@]}" --stack crypt-only --key-hex 0g
bad "dm-compose: --key-file with --key-hex" 2 "mutually exclusive" cbad "${DB[@]}" --stack crypt-only --key-file k64.key --key-hex 00
bad "dm-compose: key file is a directory" 1 "not a regular file" cbad "${DB[@]}" --stack crypt-only --key-file kdir.key
bad "dm-compose: key for a keyless stack" 2 "no crypt layer" cbad "${DB[@]}" --stack verity-only --key-file k64.key
bad "dm-compose: integrity option on a verity stack" 2 "integrity" cbad "${DB[@]}" --stack verity-only --integrity-hash sha256
bad "dm-compose: positional argument" 2 "positional" cbad "${DB[@]}" --stack verity-only extra
bad "dm-compose: outdir under a regular file" 1 "outdir" plainfile/out "$DC" build --in fs.img --outdir plainfile/out --stack verity-only
bad "dm-compose: unknown command" 2 "unknown command" - "$DC" compile

# ---- disk full ------------------------------------------------------------------
# ulimit -f: SIGXFSZ ignored so that the write fails with EFBIG.
fsz() { # BLOCKS CMD...: run CMD with a file size limit of BLOCKS KiB
	local n=$1
	shift
	(
		trap '' XFSZ
		ulimit -f "$n"
		exec "$@"
	)
}
bad "disk full (ulimit -f): dm-crypt" 1 "too large|no space" full.img fsz 1024 "${CX[@]}" --key-file k64.key fs.img full.img
bad "disk full (ulimit -f): dm-verity" 1 "too large|no space" hfull.img fsz 16 "$V" format fs.img hfull.img
bad "disk full (ulimit -f): dm-integrity interleaved" 1 "too large|no space" ifull.img fsz 1024 "$I" format --layout interleaved fs.img ifull.img
bad "disk full (ulimit -f): dm-compose" 1 "too large|no space" cfull/data.img:cfull/manifest.json fsz 1024 "$DC" build --in fs.img --outdir cfull --stack verity-only
mkdir -p tmpfs
if mount -t tmpfs -o size=1m rules_dm_badinput "$WORK/tmpfs" 2>/dev/null; then
	bad "disk full (1 MiB tmpfs): dm-crypt" 1 "no space" tmpfs/o.img "${CX[@]}" --key-file k64.key fs.img tmpfs/o.img
	bad "disk full (1 MiB tmpfs): dm-compose" 1 "no space" tmpfs/c/data.img:tmpfs/c/manifest.json "$DC" build --in fs.img --outdir tmpfs/c --stack integrity-only
	check "disk full (1 MiB tmpfs): nothing left on it" sh -c "[ -z \"\$(find '$WORK/tmpfs' -type f)\" ]"
	umount "$WORK/tmpfs"
else
	skip "disk full (1 MiB tmpfs)" "mount -t tmpfs not permitted"
fi

# ---- interrupted runs (SIGTERM mid-write) --------------------------------------
truncate -s 3G sparse.img
# interrupted DIR FINAL... -- CMD...: start CMD, wait for a temporary in DIR,
# SIGTERM it; then nothing under a final name, no temporary.
interrupted() {
	local dir=$1 pid rc f
	shift
	local finals=()
	while [ "$1" != -- ]; do
		finals+=("$1")
		shift
	done
	shift
	"$@" >int.out 2>int.err &
	pid=$!
	for _ in $(seq 400); do
		[ -n "$(find "$dir" -maxdepth 1 -name '.*.tmp-*' 2>/dev/null)" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.025
	done
	sleep 0.3
	kill -TERM "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
	echo "exit $rc; stderr: $(cat int.err)"
	if [ "$rc" = 0 ]; then
		echo "finished before the signal (machine too fast for this input?)"
		return 1
	fi
	for f in "${finals[@]}"; do
		if [ -e "$f" ]; then
			echo "left under a final name: $f ($(stat -c %s "$f") bytes)"
			rm -rf "$f"
			return 1
		fi
	done
	leftovers && [ "$(wc -l <int.err)" -le 1 ]
}
mkdir -p intr
check "SIGTERM mid-write: dm-crypt (3 GiB sparse input)" interrupted intr intr/o.img -- "${CX[@]}" --key-file k64.key sparse.img intr/o.img
# dm-verity reads no holes: only a huge sparse input makes it write long
# (the tree of a 256 GiB input is 2 GiB).
truncate -s 256G vsparse.img
check "SIGTERM mid-write: dm-verity (256 GiB sparse input)" interrupted intr intr/h.img -- "$V" format vsparse.img intr/h.img
rm -f vsparse.img
# dm-integrity skips holes too but must tag every block (the sector is hashed):
# 64 GiB keeps it busy for seconds.
truncate -s 64G isparse.img
check "SIGTERM mid-write: dm-integrity interleaved (64 GiB sparse input)" interrupted intr intr/i.img -- "$I" format --layout interleaved isparse.img intr/i.img
rm -f isparse.img
check "SIGTERM mid-write: dm-compose verity-then-crypt (3 GiB sparse input)" interrupted intr/c \
	intr/c/data.img intr/c/manifest.json intr/c/manifest.env -- "$DC" build --in sparse.img --outdir intr/c --stack verity-then-crypt --key-file k64.key
rm -rf intr
# SIGTERM as soon as data.img appears under its final name: the run must end
# with all of the outdir (a manifest that verifies) or none of it; never images
# without a manifest. Three tries (the window is short).
all_or_nothing() {
	local try pid rc
	truncate -s 512M aon.img
	for try in 1 2 3; do
		rm -rf aon
		"$DC" build --in aon.img --outdir aon --stack integrity-only >/dev/null 2>aon.err &
		pid=$!
		while kill -0 "$pid" 2>/dev/null && [ ! -e aon/data.img ]; do sleep 0.005; done
		kill -TERM "$pid" 2>/dev/null
		wait "$pid"
		rc=$?
		echo "try $try: exit $rc, outdir: $(ls -A aon 2>/dev/null | tr '\n' ' ')"
		if [ -e aon/manifest.json ]; then
			"$DC" verify aon/manifest.json >/dev/null || return 1
		elif [ -n "$(ls -A aon 2>/dev/null)" ]; then
			echo "a failed run left files without a manifest"
			rm -rf aon aon.img
			return 1
		fi
	done
	rm -rf aon aon.img
}
check "SIGTERM right after data.img is committed: all or nothing" all_or_nothing
rm -f sparse.img

# ---- dm-compose verify / env / dm-activate on hostile manifests -----------------
"$DC" build --in fs.img --outdir good --stack verity-only >/dev/null 2>&1
check "reference outdir (verity-only) builds and verifies" "$DC" verify good/manifest.json --in fs.img
"$DC" build --in fs.img --outdir goodi --stack integrity-only >/dev/null 2>&1
check "reference outdir (integrity-only) builds and verifies" "$DC" verify goodi/manifest.json --in fs.img
G=good/manifest.json
sed 's/"path": "data.img"/"path": "..\/good\/data.img"/' $G >good/dotdot.json
sed "s|\"path\": \"data.img\"|\"path\": \"$WORK/good/data.img\"|" $G >good/abs.json
sed 's/"path": "data.img"/"path": "sub\/data.img"/' $G >good/slash.json
head -c 300 $G >good/trunc.json
sed 's/"schema_version": 1/"schema_version": 2/' $G >good/v2.json
sed 's/"stack": "verity-only"/"stack": "verity-only", "key": "00"/' $G >good/extra.json
cp -r good stale
printf 'X' | dd of=stale/data.img bs=1 seek=1000 conv=notrunc 2>/dev/null
cp -r good short && truncate -s -4096 short/data.img
cp -r good gone && rm gone/data.img
bad "dm-compose verify: artifact path with .." 1 "path.*plain file name" - "$DC" verify good/dotdot.json
bad "dm-compose verify: absolute artifact path" 1 "path.*plain file name" - "$DC" verify good/abs.json
bad "dm-compose verify: artifact path with /" 1 "path.*plain file name" - "$DC" verify good/slash.json
bad "dm-compose verify: sha256 no longer matches" 1 "sha256" - "$DC" verify stale/manifest.json
bad "dm-compose verify: artifact truncated" 1 "size" - "$DC" verify short/manifest.json
bad "dm-compose verify: artifact missing" 1 "data.img.*no such file" - "$DC" verify gone/manifest.json
bad "dm-compose verify: truncated manifest" 1 "manifest" - "$DC" verify good/trunc.json
bad "dm-compose verify: unknown schema version" 1 "schema" - "$DC" verify good/v2.json
bad "dm-compose verify: unknown field" 1 "unknown field|key" - "$DC" verify good/extra.json
bad "dm-compose verify: missing manifest" 1 "no such file" - "$DC" verify nope.json
bad "dm-compose verify: key for a keyless stack" 1 "no crypt layer" - "$DC" verify $G --key-file k64.key
bad "dm-compose env: output under a regular file" 1 "not a directory" plainfile/m.env "$DC" env $G plainfile/m.env
bad "dm-compose env: manifest with .." 1 "plain file name" e.env "$DC" env good/dotdot.json e.env

E=good/manifest.env
sed "s/^DMTOOLS_NAME='dmroot'/DMTOOLS_NAME='\$(touch PWNED)'/" $E >h-subst.env
{ cat $E; echo "touch PWNED"; } >h-cmd.env
{ cat $E; echo "DMTOOLS_MOUNT_CMD='touch PWNED'"; } >h-key.env
sed "s/^\(DMTOOLS_L0_TABLE='[^']*\)'/\1;touch PWNED'/" $E >h-semi.env
sed "s/^DMTOOLS_DATA_PATH='data.img'/DMTOOLS_DATA_PATH='..\/..\/etc\/shadow'/" $E >h-path.env
sed "s/^DMTOOLS_LAYERS='1'/DMTOOLS_LAYERS='9'/" $E >h-layers.env
sed "s/^DMTOOLS_NAME='dmroot'/DMTOOLS_NAME=\"dmroot\"/" $E >h-dquote.env
{ cat $E; echo "DMTOOLS_NAME='dup'"; } >h-dup.env
head -c 100000 /dev/zero | tr '\0' '#' >h-huge.env
act() { env -i PATH="$PATH" MODE=dry-run "$DA" "$@"; }
for h in subst cmd key semi path layers dquote dup huge; do
	bad "dm-activate: hostile manifest.env ($h)" 1 "manifest" - act h-$h.env
done
bad "dm-activate: manifest.json with .. path" 1 "plain file name" - act good/dotdot.json
bad "dm-activate: no manifest" 2 "exactly one argument" - act
bad "dm-activate: missing manifest" 1 "no such file" - act nope.env
bad "dm-activate: unknown MODE" 2 "MODE" - env -i PATH="$PATH" MODE=bogus "$DA" $E
check "dm-activate: no hostile command ran" test ! -e PWNED

# ---- corruption is detected -----------------------------------------------------
# verity-only: data.img = data ‖ pad ‖ superblock (at hash_offset) ‖ tree.
OFF=$(mget $G "m['layers'][0]['verity']['hash_offset']")
ROOT_HASH=$(mget $G "m['layers'][0]['verity']['root_hash']")
HBS=$(mget $G "m['layers'][0]['verity']['hash_block_size']")
corrupt_verity() { # NAME OFFSET
	rm -rf "cv-$1"
	cp -r good "cv-$1"
	flip "cv-$1/data.img" "$2"
	bad "corrupt $1: dm-compose verify" 1 "sha256" - "$DC" verify "cv-$1/manifest.json"
	bad "corrupt $1: dm-verity verify" 1 "does not match|superblock|digest|root" - \
		"$V" verify --hash-offset "$OFF" "cv-$1/data.img" "cv-$1/data.img" "$ROOT_HASH"
	rehash "cv-$1/manifest.json"
	bad "corrupt $1: dm-compose verify, manifest sha256 rewritten to match" 1 "layer 0|verity" - "$DC" verify "cv-$1/manifest.json"
}
corrupt_verity "verity data byte" 5000
corrupt_verity "verity hash tree byte" $((OFF + HBS + 100))
corrupt_verity "verity superblock salt byte" $((OFF + 88))
corrupt_verity "verity superblock data_blocks byte" $((OFF + 72))
# integrity-only (separate): integrity.meta.img = superblock (8 sectors) ‖
# journal ‖ tags (tag_size bytes per block, block order).
GI=goodi/manifest.json
JS=$(mget $GI "m['layers'][0]['integrity']['journal_sectors']")
TS=$(mget $GI "m['layers'][0]['integrity']['tag_size']")
corrupt_integrity() { # NAME FILE OFFSET REGEX
	rm -rf "ci-$1"
	cp -r goodi "ci-$1"
	flip "ci-$1/$2" "$3"
	bad "corrupt $1: dm-compose verify" 1 "sha256" - "$DC" verify "ci-$1/manifest.json"
	bad "corrupt $1: dm-integrity verify" 1 "$4" - "$I" verify "ci-$1/data.img" "ci-$1/integrity.meta.img"
	rehash "ci-$1/manifest.json"
	bad "corrupt $1: dm-compose verify, manifest sha256 rewritten to match" 1 "layer 0|integrity" - "$DC" verify "ci-$1/manifest.json"
}
corrupt_integrity "integrity data byte" data.img 12345 "tag mismatch at block 3"
corrupt_integrity "integrity tag byte" integrity.meta.img $(((8 + JS) * 512 + 5 * TS + 1)) "tag mismatch at block 5"
corrupt_integrity "integrity superblock salt byte" integrity.meta.img 48 "tag mismatch"
corrupt_integrity "integrity superblock magic byte" integrity.meta.img 0 "magic|superblock"
corrupt_integrity "integrity superblock provided_data_sectors byte" integrity.meta.img 17 "superblock|sectors|size|provided"

# ---- key hygiene ----------------------------------------------------------------
cat >nokey.py <<'EOF'
# nokey.py KEYFILE FILE...: fails if the key appears in any FILE: raw bytes,
# hex (either case), or either half (XTS uses two keys), raw or hex.
import sys
key = open(sys.argv[1], "rb").read()
needles = [key, key.hex().encode(), key.hex().upper().encode()]
h = len(key) // 2
for part in (key[:h], key[h:]):
    needles += [part, part.hex().encode(), part.hex().upper().encode()]
bad = 0
for f in sys.argv[2:]:
    b = open(f, "rb").read()
    for n in needles:
        if n in b:
            print("key material (%d bytes) found in %s" % (len(n), f))
            bad = 1
            break
sys.exit(bad)
EOF
nokey() { "$PY" "$WORK/nokey.py" "$@"; }
check "key hygiene: dm-compose build verity-then-crypt with --key-file" \
	sh -c "'$DC' build --in fs.img --outdir kh --stack verity-then-crypt --key-file k64.key >kh.out 2>kh.err"
check "key hygiene: crypt-then-integrity too" \
	sh -c "'$DC' build --in fs.img --outdir kh2 --stack crypt-then-integrity --key-file k64.key >kh2.out 2>kh2.err"
check "key hygiene: dm-crypt --params-out" \
	sh -c "'$C' encrypt --cipher aes-xts-plain64 --key-file k64.key --params-out kh.params.json d.img kh.crypt.img >kh3.out 2>kh3.err"
check "key hygiene: dm-crypt decrypt writes the plaintext 0600 (umask 022), the ciphertext 0644" \
	sh -c "umask 022 && '$C' encrypt --cipher aes-xts-plain64 --key-file k64.key d.img kh.c2.img 2>/dev/null && '$C' decrypt --cipher aes-xts-plain64 --key-file k64.key kh.c2.img kh.plain.img 2>/dev/null && [ \$(stat -c %a kh.plain.img) = 600 ] && [ \$(stat -c %a kh.c2.img) = 644 ] && cmp -s kh.plain.img d.img"
# every file of the outdirs but the images (manifests, env, boot/*), the
# params fragment, stdout and stderr
check "key hygiene: no key in manifests, env, boot files, params, stdout, stderr" \
	sh -c "'$PY' '$WORK/nokey.py' k64.key \$(find kh kh2 -type f ! -name '*.img') kh.out kh.err kh2.out kh2.err kh.params.json kh3.out kh3.err"
# no copy of the key, nothing unexpected: images, the two manifests, boot/*
unexpected() {
	find kh kh2 -type f ! -name '*.img' ! -name manifest.json ! -name manifest.env ! -path '*/boot/*' | grep . && return 1
	find kh kh2 -type f -name '*.img' ! -name data.img ! -name integrity.meta.img | grep . && return 1
	return 0
}
check "key hygiene: outdir holds only images, manifests and boot files" unexpected
# error paths must not echo a key either
KHEX=$(od -An -tx1 k64.key | tr -d ' \n')
"$C" encrypt --cipher aes-cbc-plain --key-hex "$KHEX" d.img kerr.img >kerr1.out 2>kerr1.err
"$DC" build --in fs.img --outdir kerr --stack crypt-only --cipher aes-cbc-plain64 --key-hex "$KHEX" >kerr2.out 2>kerr2.err
"$C" encrypt --cipher aes-xts-plain64 --key-hex "${KHEX}0" d.img kerr.img >kerr3.out 2>kerr3.err
"$DC" build --in fs.img --outdir kerr --stack crypt-only --key-hex "${KHEX}zz" >kerr4.out 2>kerr4.err
check "key hygiene: error messages (wrong size, odd hex, bad hex) hold no key" \
	sh -c "[ -s kerr1.err ] && [ -s kerr2.err ] && [ -s kerr3.err ] && [ -s kerr4.err ] && '$PY' '$WORK/nokey.py' k64.key kerr1.out kerr1.err kerr2.out kerr2.err kerr3.out kerr3.err kerr4.out kerr4.err"
# argv and environment of a running build and of any child it starts
truncate -s 2G khbig.img
running_build_hides_key() {
	local pid kids found=0 p
	"$DC" build --in khbig.img --outdir khbig --stack crypt-only --key-file k64.key >/dev/null 2>&1 &
	pid=$!
	sleep 0.5
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "build ended before it could be inspected"
		wait "$pid"
		return 1
	fi
	tr '\0' '\n' <"/proc/$pid/cmdline" >khps.argv
	tr '\0' '\n' <"/proc/$pid/environ" >khps.env
	kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null)
	for p in $kids; do
		found=1
		echo "child $p: $(tr '\0' ' ' <"/proc/$p/cmdline")"
		tr '\0' '\n' <"/proc/$p/cmdline" >>khps.argv
		tr '\0' '\n' <"/proc/$p/environ" >>khps.env
	done
	ps -eo args >khps.all
	kill -TERM "$pid"
	wait "$pid"
	rm -rf khbig
	echo "children: ${kids:-none}"
	"$PY" "$WORK/nokey.py" k64.key khps.argv khps.env khps.all && [ "$found" = 0 ]
}
check "key hygiene: running build: no key in argv/environ (ps), no child process" running_build_hides_key
rm -f khbig.img
cp k64.key kgroup.key
chmod 640 kgroup.key
check "key hygiene: group-readable key file: build works, one warning naming it" \
	sh -c "'$DC' build --in fs.img --outdir kgrp --stack crypt-only --key-file kgroup.key >/dev/null 2>kgrp.err && grep -c 'warning: key file kgroup.key is readable by group or others' kgrp.err | grep -qx 1"
chmod 604 kgroup.key
check "key hygiene: world-readable key file warns too (dm-crypt)" \
	sh -c "'$C' encrypt --cipher aes-xts-plain64 --key-file kgroup.key d.img kw.img 2>kw.err && grep -q 'readable by group or others' kw.err"
check "key hygiene: a 0600 key file gives no warning" \
	sh -c "'$C' encrypt --cipher aes-xts-plain64 --key-file k64.key d.img kq.img 2>kq.err && [ ! -s kq.err ]"

# ---- two concurrent builds into one outdir ----------------------------------------
# A runs; B starts on another input while A's temporaries exist. B must fail
# with one line (outdir in use / already holds a manifest), A must succeed, and
# the outdir must verify against A's input.
truncate -s 768M ca.img
cp --sparse=always ca.img cb.img
printf A | dd of=ca.img conv=notrunc 2>/dev/null
printf B | dd of=cb.img conv=notrunc 2>/dev/null
concurrent() {
	local pa pb ra rb
	rm -rf conc
	"$DC" build --in ca.img --outdir conc --stack verity-only >conc.a.out 2>conc.a.err &
	pa=$!
	for _ in $(seq 400); do
		[ -n "$(find conc -maxdepth 1 -name '.*.tmp-*' 2>/dev/null)" ] && break
		sleep 0.025
	done
	"$DC" build --in cb.img --outdir conc --stack verity-only >conc.b.out 2>conc.b.err &
	pb=$!
	wait "$pa"
	ra=$?
	wait "$pb"
	rb=$?
	echo "A: exit $ra: $(cat conc.a.err)"
	echo "B: exit $rb: $(cat conc.b.err)"
	[ "$ra" = 0 ] || return 1
	if [ "$rb" = 0 ]; then
		echo "both builds succeeded into the same outdir"
		return 1
	fi
	[ "$rb" = 1 ] && [ "$(wc -l <conc.b.err)" = 1 ] && grep -Eq 'in use by another build|already holds' conc.b.err || return 1
	"$DC" verify conc/manifest.json --in ca.img && leftovers
}
check "concurrent builds into one outdir: one fails cleanly, the other's outdir verifies" concurrent
# both at once, --force: at least one succeeds, any failure is one clean line,
# and the outdir is wholly one build's.
concurrent_force() {
	local pa pb ra rb
	rm -rf concf
	"$DC" build --force --in ca.img --outdir concf --stack verity-only >/dev/null 2>concf.a.err &
	pa=$!
	"$DC" build --force --in cb.img --outdir concf --stack verity-only >/dev/null 2>concf.b.err &
	pb=$!
	wait "$pa"
	ra=$?
	wait "$pb"
	rb=$?
	echo "A: exit $ra: $(cat concf.a.err)"
	echo "B: exit $rb: $(cat concf.b.err)"
	[ "$ra" = 0 ] || [ "$rb" = 0 ] || return 1
	for r in "$ra:concf.a.err" "$rb:concf.b.err"; do
		[ "${r%%:*}" = 0 ] || { [ "${r%%:*}" = 1 ] && [ "$(wc -l <"${r#*:}")" = 1 ]; } || return 1
	done
	"$DC" verify concf/manifest.json --in ca.img >/dev/null 2>&1 || "$DC" verify concf/manifest.json --in cb.img
}
check "concurrent --force builds: the outdir is wholly one build's" concurrent_force
rm -rf ca.img cb.img conc concf

# ---- fuzz targets, briefly -----------------------------------------------------------
if command -v go >/dev/null; then
	check "tests/fuzz/run.sh 2s (every Go fuzz target)" env FUZZ_BUDGET=100 FUZZ_OUT="$WORK/fuzz" "$ROOT/tests/fuzz/run.sh" 2s
else
	skip "tests/fuzz/run.sh" "no go toolchain"
fi
exit 0
