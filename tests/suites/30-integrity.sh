#!/usr/bin/env bash
# dm-integrity: tools/cmd/dm-integrity against independent oracles:
#  - reference images made by the real kernel (integritysetup 2.6.1 format + writes +
#    close under Linux 6.1; tools/integrity/testdata/refs): byte-identical for the same
#    salt after normalising the journal commit sequence (the only free variable, see the
#    refs README), and the same table line as dmsetup showed;
#  - `integritysetup dump` must parse every superblock we write with the expected fields;
#  - a Python tag oracle (crc32c/sha256/hmac from the kernel's formula) for cases the
#    references do not cover (no fix_hmac, hmac, interleave 2048, several areas);
#  - verify finds flipped data and tag bytes; bad input fails with one line and no output.
set -u
. "$ROOT/tests/lib.sh"

DI="$BIN/dm-integrity"
IS=$(command -v integritysetup || true)
REFS="$ROOT/tools/integrity/testdata/refs"
cd "$WORK" || exit 1
umask 077

"$PY" "$REFS/payload.py" 67108864 >payload
printf 'rules_dm integrity test hmac key' | sha256sum | cut -c1-64 | xxd -r -p >hmac.key

# ---------------------------------------------------------------- kernel references
# refcmp NAME LAYOUT HASH BS MODE DATA_BYTES
refcmp() {
	_n=$1 _lay=$2 _h=$3 _bs=$4 _m=$5 _sz=$6
	_ext=meta
	[ "$_lay" = interleaved ] && _ext=dev
	xz -dc "$REFS/$_n.$_ext.xz" >ref.img || return 1
	_info=$("$PY" "$REFS/normjournal.py" ref.img norm.img) || { echo "reference journal not a clean empty journal"; return 1; }
	echo "reference: $_info"
	_salt=$(echo "$_info" | sed -n 's/.*salt=\([0-9a-f]*\).*/\1/p')
	head -c "$_sz" payload >in.img
	_kf=""
	[ "$_h" = hmac-sha256 ] && _kf="--hmac-key-file hmac.key"
	# shellcheck disable=SC2086
	"$DI" format --layout "$_lay" --hash "$_h" $_kf --block-size "$_bs" --mode "$_m" --salt "$_salt" \
		--params-out frag.json in.img ours.img >fmt.out || return 1
	_osz=$(stat -c %s ours.img)
	_rsz=$(stat -c %s norm.img)
	[ "$_osz" -le "$_rsz" ] || { echo "ours $_osz bytes > reference $_rsz"; return 1; }
	cmp -n "$_osz" ours.img norm.img || return 1
	if [ "$_rsz" -gt "$_osz" ]; then
		cmp -n "$((_rsz - _osz))" <(tail -c +"$((_osz + 1))" norm.img) /dev/zero || { echo "reference has data past our image"; return 1; }
	fi
	[ "$_lay" = separate ] || [ "$_osz" = "$_rsz" ] || { echo "device size $_osz != reference $_rsz"; return 1; }
	# table: same line as dmsetup printed, with its device numbers and key text
	_ref=$(grep "^$_n " "$REFS/tables.txt" | cut -d' ' -f2-)
	_dev=$(echo "$_ref" | cut -d' ' -f4)
	_meta=$(echo "$_ref" | tr ' ' '\n' | sed -n 's/^meta_device://p')
	_key=$(echo "$_ref" | sed -n 's/.*internal_hash:hmac(sha256):\([0-9a-f]*\).*/\1/p')
	_ours=$(sed -n 's/^Table: *//p' fmt.out | sed "s#@DATA@#$_dev#; s#@META@#$_meta#; s#@IKEY@#$_key#")
	[ "$_ours" = "$_ref" ] || { printf 'table\n ours %s\n  ref %s\n' "$_ours" "$_ref"; return 1; }
	# table subcommand reads the same back from the image
	_t=$("$DI" table --data-dev "$_dev" --meta-dev "$_meta" --mode "$_m" ${_kf:+--hash hmac-sha256} --key-placeholder "$_key" ours.img)
	[ "$_t" = "$_ref" ] || { printf 'table cmd\n ours %s\n  ref %s\n' "$_t" "$_ref"; return 1; }
	# our verify accepts ours and the kernel's own (un-normalised) image
	for _img in ours.img ref.img; do
		if [ "$_lay" = separate ]; then
			# shellcheck disable=SC2086
			"$DI" verify $_kf in.img "$_img" || return 1
		else
			# shellcheck disable=SC2086
			"$DI" verify $_kf "$_img" || return 1
		fi
	done
}
check ref-sep-crc32c-4k refcmp sep-crc32c-4k separate crc32c 4096 J 8388608
check ref-sep-sha256-4k refcmp sep-sha256-4k separate sha256 4096 J 8388608
check ref-sep-hmac-4k refcmp sep-hmac-4k separate hmac-sha256 4096 J 8388608
check ref-sep-crc32c-512 refcmp sep-crc32c-512 separate crc32c 512 J 2097152
check ref-sep-crc32c-4k-D refcmp sep-crc32c-4k-D separate crc32c 4096 D 8388608
check ref-il-crc32c-4k refcmp il-crc32c-4k interleaved crc32c 4096 J $((32336 * 512))
check ref-il-sha256-512 refcmp il-sha256-512 interleaved sha256 512 J $((1952 * 512))
# 64 MiB: the kernel's default journal size is 2 sections here (journal_sectors:784)
check ref-sep-crc32c-4k-64m refcmp sep-crc32c-4k-64m separate crc32c 4096 J 67108864
check ref-il-crc32c-4k-64m refcmp il-crc32c-4k-64m interleaved crc32c 4096 J $((130152 * 512))

# ---------------------------------------------------------------- integritysetup dump
# dumpcheck LAYOUT HASH BS FIX(1|0) [extra format flags]
dumpcheck() {
	_lay=$1 _h=$2 _bs=$3 _fix=$4
	shift 4
	_kf="" _nf=""
	[ "$_h" = hmac-sha256 ] && _kf="--hmac-key-file hmac.key"
	[ "$_fix" = 0 ] && _nf=--no-fix-hmac
	head -c 6291456 payload >d.img
	# shellcheck disable=SC2086
	"$DI" format --layout "$_lay" --hash "$_h" $_kf --block-size "$_bs" $_nf --params-out f.json "$@" d.img o.img >/dev/null || return 1
	"$IS" dump o.img >dump.txt || return 1
	cat dump.txt
	"$PY" - "$_lay" "$_h" "$_bs" "$_fix" <<'EOF' || return 1
import json, sys
lay, h, bs, fix = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
f = json.load(open("f.json"))
d = {}
for line in open("dump.txt"):
    k, _, v = line.strip().partition(" ")
    d[k] = v
tag = {"crc32c": 4, "sha256": 32, "hmac-sha256": 32}[h]
flags = set(d.get("flags", "").split())
want_flags = ({"fix_hmac"} if fix else set()) | ({"fix_padding"} if lay == "interleaved" else set())
want_ver = 5 if fix else (4 if lay == "interleaved" else 2)
errs = []
def eq(name, got, want):
    if str(got) != str(want):
        errs.append("%s: %s, want %s" % (name, got, want))
eq("superblock_version", d.get("superblock_version"), want_ver)
eq("integrity_tag_size", d.get("integrity_tag_size"), tag)
eq("sector_size", d.get("sector_size"), bs)
eq("flags", sorted(flags), sorted(want_flags))
eq("log2_interleave_sectors", d.get("log2_interleave_sectors"), 15 if lay == "interleaved" and "--interleave" not in sys.argv else d.get("log2_interleave_sectors"))
if lay == "separate":
    eq("log2_interleave_sectors", d.get("log2_interleave_sectors"), 0)
    eq("provided_data_sectors", d.get("provided_data_sectors"), 6291456 // 512)
else:
    if int(d["provided_data_sectors"]) < 6291456 // 512:
        errs.append("provided too small")
eq("provided (fragment)", f["provided_data_sectors"], d.get("provided_data_sectors"))
eq("journal_sections", d.get("journal_sections"), f["journal_sections"])
eq("tag_size (fragment)", f["tag_size"], tag)
eq("salt (fragment)", len(f["salt"]), 32 if fix else 0)
if errs:
    sys.exit("; ".join(errs))
EOF
}
if [ -n "$IS" ]; then
	for lay in separate interleaved; do
		for h in crc32c sha256 hmac-sha256; do
			for bs in 512 4096; do
				check "dump-$lay-$h-$bs" dumpcheck "$lay" "$h" "$bs" 1
			done
			check "dump-$lay-$h-4096-nofix" dumpcheck "$lay" "$h" 4096 0
		done
	done
	check dump-separate-3-sections dumpcheck separate crc32c 4096 1 --journal-sections 3
else
	skip dump "integritysetup not installed"
fi

# ---------------------------------------------------------------- python tag oracle
cat >tagoracle.py <<'EOF'
# Independent tag oracle (kernel integrity_sector_checksum + layout), from the kernel
# source: tag = H([salt if flags&0x10] || le64(logical sector) || block), crc32c stored
# little-endian, digests truncated/zero-padded to the tag size. Separate layout: tags
# contiguous from initial_sectors; interleaved: per area [metadata run | data].
# usage: tagoracle.py DATA IMAGE HASH [KEYFILE]   (DATA = logical data)
import hashlib, hmac, struct, sys
data = open(sys.argv[1], "rb").read()
img = open(sys.argv[2], "rb").read()
h = sys.argv[3]
key = open(sys.argv[4], "rb").read() if len(sys.argv) > 4 else b""
T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    T.append(c)
def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF
assert img[:8] == b"integrt\0"
ver, l2i, tag, sections, provided, flags, l2spb = struct.unpack_from("<BBHIQIB", img, 8)
salt = img[48:64] if flags & 0x10 else b""
spb = 1 << l2spb
bs = 512 * spb
entry = (8 + 8 * spb + tag + 7) // 8 * 8
ss = 8 * (504 // entry) * spb + 8
initial = 8 + sections * ss
data = data + bytes(provided * 512 - len(data))
if l2i:
    I = 1 << l2i
    pad = 4096 if flags & 0x08 else 131072
    M = (tag * (I // spb) + pad - 1) // pad * pad // 512
n = provided // spb
step = max(1, n // 300)   # a sample of blocks, plus the last one (python crc32c is slow)
for b in sorted(set(list(range(0, n, step)) + [n - 1])):
    s = b * spb
    blk = data[s * 512:(s + spb) * 512]
    msg = salt + struct.pack("<Q", s) + blk
    if h == "crc32c":
        d = struct.pack("<I", crc32c(msg))
    elif h == "sha256":
        d = hashlib.sha256(msg).digest()
    else:
        d = hmac.new(key, msg, hashlib.sha256).digest()
    want = (d + bytes(tag))[:tag]
    if l2i:
        area, off = s >> l2i, s & (I - 1)
        base = initial + area * (I + M)
        toff = base * 512 + (off // spb) * tag
        phys = (base + M + off) * 512
        if img[phys:phys + bs] != blk:
            sys.exit("block %d: data not at physical byte %d" % (b, phys))
    else:
        toff = initial * 512 + b * tag
    if img[toff:toff + tag] != want:
        sys.exit("block %d: tag %s, oracle %s" % (b, img[toff:toff + tag].hex(), want.hex()))
print("ok: %d blocks sampled of %d" % (len(range(0, n, step)) + 1, n))
EOF
# tagcheck LAYOUT HASH BS [format flags...]
tagcheck() {
	_lay=$1 _h=$2 _bs=$3
	shift 3
	_kf=""
	[ "$_h" = hmac-sha256 ] && _kf="--hmac-key-file hmac.key"
	head -c 9437184 payload >t.img
	# shellcheck disable=SC2086
	"$DI" format --layout "$_lay" --hash "$_h" $_kf --block-size "$_bs" "$@" t.img to.img >/dev/null || return 1
	"$PY" tagoracle.py t.img to.img "$_h" ${_kf:+hmac.key}
}
check oracle-sep-crc32c-4k-nofix tagcheck separate crc32c 4096 --no-fix-hmac
check oracle-sep-hmac-512 tagcheck separate hmac-sha256 512
check oracle-sep-sha256-tag20 tagcheck separate sha256 4096 --tag-size 20
check oracle-sep-crc32c-tag8 tagcheck separate crc32c 4096 --tag-size 8
check oracle-il-crc32c-4k-i2048 tagcheck interleaved crc32c 4096 --interleave-sectors 2048
check oracle-il-sha256-512-nofix tagcheck interleaved sha256 512 --no-fix-hmac --interleave-sectors 4096
check oracle-il-hmac-4k tagcheck interleaved hmac-sha256 4096

# ---------------------------------------------------------------- verify / determinism
head -c 8388608 payload >v.img
"$DI" format --seed s1 v.img vm.img >/dev/null
"$DI" format --layout interleaved --seed s1 v.img vd.img >/dev/null
check verify-clean "$DI" verify v.img vm.img
check verify-clean-interleaved "$DI" verify vd.img
flip() { # FILE OFFSET
	"$PY" -c 'import sys; f=open(sys.argv[1],"r+b"); o=int(sys.argv[2]); f.seek(o); b=f.read(1); f.seek(o); f.write(bytes([b[0]^0x5a]))' "$1" "$2"
}
cp v.img vbad.img && flip vbad.img $((1000 * 4096 + 123))
expect_fail verify-flipped-data 'tag mismatch at block 1000 ' "$DI" verify vbad.img vm.img
cp vm.img vmbad.img && flip vmbad.img $((400 * 512 + 77 * 4 + 2))
expect_fail verify-flipped-tag 'tag mismatch at block 77 ' "$DI" verify v.img vmbad.img
cp vd.img vdbad.img && flip vdbad.img $(((432 + 5) * 512 + 9))  # interleaved: first data sector 432
expect_fail verify-flipped-interleaved 'tag mismatch at block 0 ' "$DI" verify vdbad.img
cp vm.img vmj.img && flip vmj.img $((9 * 512 + 504))
expect_fail verify-bad-journal 'bad commit id' "$DI" verify v.img vmj.img
head -c 210000 vm.img >vmshort.img
expect_fail verify-meta-too-small 'metadata image too small' "$DI" verify v.img vmshort.img
head -c 7340032 v.img >v7.img
expect_fail verify-wrong-data-size 'provides 14336 sectors, superblock says 16384' "$DI" verify v7.img vm.img
check deterministic bash -c "'$DI' format --seed s1 v.img vm2.img >/dev/null && cmp vm.img vm2.img"
check seed-changes-salt bash -c "'$DI' format --seed s2 v.img vm3.img >/dev/null && ! cmp -s vm.img vm3.img"
check data-untouched bash -c "cmp v.img <(head -c 8388608 payload)"

# AEAD-style: hash none, tags from a file (version 2, no salt, flags 0)
head -c 1048576 payload >n.img
"$PY" -c 'import sys; sys.stdout.buffer.write(bytes((i * 7) & 0xff for i in range(2048 * 28)))' >n.tags
check none-tags bash -c "'$DI' format --hash none --tag-size 28 --block-size 512 --tags-file n.tags n.img nm.img >/dev/null &&
	'$IS' dump nm.img | grep -qx 'superblock_version 2' && cmp <(tail -c +$((96 * 512 + 1)) nm.img | head -c $((2048 * 28))) n.tags &&
	'$DI' table --hash none --data-dev D --meta-dev M nm.img | grep -qx '0 2048 integrity D 0 28 J 6 meta_device:M journal_sectors:88 interleave_sectors:1 buffer_sectors:128 journal_watermark:50 commit_time:10000'"

# ---------------------------------------------------------------- bad input
head -c 4097 payload >odd.img
expect_fail bad-data-size 'not a multiple of the block size' "$DI" format odd.img out1.img
check bad-data-size-no-output test ! -e out1.img
expect_fail bad-tag-small 'tag size 2 too small for hash crc32c' "$DI" format --tag-size 2 v.img out2.img
expect_fail bad-tag-small-sha 'tag size 8 too small for hash sha256' "$DI" format --hash sha256 --tag-size 8 v.img out2.img
expect_fail bad-tag-large 'tag size 300 too large' "$DI" format --tag-size 300 v.img out2.img
expect_fail bad-hash 'unknown --hash "md5"' "$DI" format --hash md5 v.img out2.img
expect_fail missing-hmac-key 'needs --hmac-key-file' "$DI" format --hash hmac-sha256 v.img out2.img
expect_fail key-without-hmac 'only apply to --hash hmac-sha256' "$DI" format --hmac-key-file hmac.key v.img out2.img
expect_fail bad-mode-B 'unknown --mode "B"' "$DI" format --mode B v.img out2.img
expect_fail bad-block-size 'block-size 1024' "$DI" format --block-size 1024 v.img out2.img
expect_fail bad-salt 'want 16 bytes as hex' "$DI" format --salt 00ff v.img out2.img
expect_fail bad-interleave 'interleave sectors' "$DI" format --layout interleaved --interleave-sectors 1000 v.img out2.img
expect_fail same-file 'same file' "$DI" format v.img v.img
expect_fail missing-data 'no such file' "$DI" format nope.img out2.img
expect_fail missing-args 'needs DATA OUT' "$DI" format v.img
expect_fail none-needs-tags 'tags-file' "$DI" format --hash none --tag-size 28 v.img out2.img
expect_fail short-tags-file 'read tags' "$DI" format --hash none --tag-size 28 --block-size 512 --tags-file n.tags v.img out2.img
check bad-input-no-output test ! -e out2.img
expect_fail table-not-integrity 'bad magic' "$DI" table v.img
printf 'wrong key' >wrong.key
"$DI" format --hash hmac-sha256 --hmac-key-file hmac.key v.img vh.img >/dev/null
check verify-hmac "$DI" verify --hmac-key-file hmac.key v.img vh.img
expect_fail verify-hmac-wrong-key 'tag mismatch at block 0 ' "$DI" verify --hmac-key-file wrong.key v.img vh.img

# Progress: nothing reaches a stderr that is not a terminal; --quiet keeps a
# terminal (script(1)'s pty) clean; the output is the same either way.
head -c $((24 << 20)) /dev/urandom >pg.img
pg_silent() {
	"$DI" format --seed pg pg.img pg1.meta >/dev/null 2>pg.err || return 1
	"$DI" format --layout interleaved --seed pg pg.img pg1.dev >/dev/null 2>>pg.err || return 1
	[ ! -s pg.err ] || { cat -A pg.err | head -3; return 1; }
}
check progress-silent-not-a-tty pg_silent
if command -v script >/dev/null; then
	pg_tty() {
		script -qec "\"$DI\" format --quiet --seed pg pg.img pg2.meta >/dev/null" /dev/null >pg.tty 2>&1 || return 1
		! grep -q 'MiB' pg.tty || { cat -A pg.tty | head -3; return 1; }
		script -qec "\"$DI\" format --seed pg pg.img pg3.meta >/dev/null" /dev/null >pg.tty 2>&1 || return 1
		tr '\r' '\n' <pg.tty | sed 's/\x1b\[K//g' | grep -v '^\s*$' | grep -v '^dm-integrity format .*%' | grep . && return 1
		cmp pg1.meta pg2.meta && cmp pg1.meta pg3.meta
	}
	check progress-quiet-and-tty pg_tty
else
	skip progress-quiet-and-tty "script(1) missing"
fi
rm -f pg.img pg[123].meta pg1.dev pg.err pg.tty
