#!/usr/bin/env bash
# dm-integrity in the real kernel (Debian 6.1 under QEMU via tests/e2e/dmtest.sh):
# images made offline by tools/cmd/dm-integrity, for each layout x hash, are activated
# with `dmsetup create` and the table our tool printed. Boot 1 (clean): every block
# reads back as the input (full buffered read, sha256), the kernel reports no mismatch
# and no recalculation, and neither image changes (sha256 on the host before/after).
# Boot 2 (corrupt copies: one data byte of block A and one tag byte of block B flipped
# on the host): exactly A and B fail with EILSEQ on an aligned O_DIRECT pread
# (tools/integrity/internal/directread; busybox dd spreads errors over the page for
# 512-byte blocks) and EIO on a buffered read; every 4 KiB page not holding A or B
# reads back right through the page cache. The crc32c images are also opened with
# `integritysetup open` (libcryptsetup builds its table from our superblock).
# Skipped with DMTEST_SKIP containing "e2e" or when QEMU/the kernel cannot be prepared.
set -u
. "$ROOT/tests/lib.sh"

case " ${DMTEST_SKIP:-} " in *" e2e "*)
	skip integrity-kernel "DMTEST_SKIP has e2e"
	exit 0
	;;
esac
DMT="$ROOT/tests/e2e/dmtest.sh"
DI="$BIN/dm-integrity"
cd "$WORK" || exit 1
umask 077
if ! "$DMT" build >build.log 2>&1; then
	tail -n 5 build.log
	skip integrity-kernel "tests/e2e/dmtest.sh build failed (see above)"
	exit 0
fi

"$PY" "$ROOT/tools/integrity/testdata/refs/payload.py" 16777216 >payload
printf 'rules_dm integrity kernel test key' | sha256sum | cut -c1-64 | xxd -r -p >hmac.key
KEYHEX=$(xxd -p -c 64 hmac.key)

# offsets IMG BLOCK -> "<data byte offset in the data image> <tag byte offset>"
# (independent of the Go code: kernel get_data_sector / metadata layout from the sb)
cat >offsets.py <<'EOF'
import struct, sys
img = open(sys.argv[1], "rb").read(64)
b = int(sys.argv[2])
ver, l2i, tag, sections, provided, flags, l2spb = struct.unpack_from("<BBHIQIB", img, 8)
spb = 1 << l2spb
entry = (8 + 8 * spb + tag + 7) // 8 * 8
ss = 8 * (504 // entry) * spb + 8
initial = 8 + sections * ss
s = b * spb
if l2i:
    I = 1 << l2i
    pad = 4096 if flags & 0x08 else 131072
    M = (tag * (I // spb) + pad - 1) // pad * pad // 512
    area, off = s >> l2i, s & (I - 1)
    base = initial + area * (I + M)
    print((base + M + off) * 512, base * 512 + (off // spb) * tag)
else:
    print(s * 512, initial * 512 + b * tag)
EOF
flip() { # FILE OFFSET
	"$PY" -c 'import sys; f=open(sys.argv[1],"r+b"); o=int(sys.argv[2]); f.seek(o); b=f.read(1); f.seek(o); f.write(bytes([b[0]^0x5a]))' "$1" "$2"
}

# Cases: name layout hash block-size data-bytes [format flags]
CASES="sep-crc32c-4k separate crc32c 4096 8388608
sep-sha256-4k separate sha256 4096 8388608
sep-hmac-4k separate hmac-sha256 4096 8388608
sep-crc32c-512 separate crc32c 512 2097152
sep-crc32c-4k-D separate crc32c 4096 4194304 --mode D
sep-crc32c-4k-nofix separate crc32c 4096 4194304 --no-fix-hmac
sep-sha256-t20 separate sha256 4096 4194304 --tag-size 20
sep-crc32c-t8-js4 separate crc32c 4096 4194304 --tag-size 8 --journal-sections 4
il-crc32c-4k interleaved crc32c 4096 12582912
il-sha256-512 interleaved sha256 512 2097152
il-hmac-4k interleaved hmac-sha256 4096 6291456 --interleave-sectors 4096"

mkdir -p clean corrupt files
if ! (cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/files/directread" ./tools/integrity/internal/directread); then
	_record FAIL integrity-kernel-directread-build
	exit 0
fi
: >files/clean.txt
: >files/corrupt.txt
imgs_clean=()
imgs_corrupt=()
disk=0
vd() { printf '/dev/vd%s' "$(printf '%s' abcdefghijklmnopqrst | cut -c$(($1 + 1)))"; }
prep() {
	name=$1 lay=$2 h=$3 bs=$4 sz=$5
	shift 5
	kf=""
	[ "$h" = hmac-sha256 ] && kf="--hmac-key-file hmac.key"
	head -c "$sz" payload >"clean/$name.data"
	if [ "$lay" = separate ]; then
		# shellcheck disable=SC2086
		"$DI" format --layout separate --hash "$h" $kf --block-size "$bs" --seed kernel "$@" \
			--params-out "$name.json" "clean/$name.data" "clean/$name.meta" >/dev/null || return 1
		imgs=("clean/$name.meta" "clean/$name.data")
	else
		# shellcheck disable=SC2086
		"$DI" format --layout interleaved --hash "$h" $kf --block-size "$bs" --seed kernel "$@" \
			--params-out "$name.json" "clean/$name.data" "clean/$name.dev" >/dev/null || return 1
		imgs=("clean/$name.dev")
	fi
	provided=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["provided_data_sectors"])' "$name.json")
	table=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["table"])' "$name.json")
	nb=$((provided * 512 / bs))
	# logical content = input zero-extended to the provided size
	{ cat "clean/$name.data"; head -c $((provided * 512 - sz)) /dev/zero; } >"$name.logical"
	full=$(sha256sum <"$name.logical" | cut -d' ' -f1)
	if [ "$lay" = separate ]; then
		m=$(vd $disk) d=$(vd $((disk + 1)))
	else
		m="" d=$(vd $disk)
	fi
	table=${table//@DATA@/$d}
	table=${table//@META@/$m}
	table=${table//@IKEY@/$KEYHEX}
	# corrupt copy: data byte in block A, tag byte of block B
	A=$((nb / 3 + 1)) B=$((nb / 3 + 21))
	for f in "${imgs[@]}"; do cp "$f" "corrupt/${f#clean/}"; done
	main=${imgs[0]#clean/}
	read -r doff _ < <("$PY" offsets.py "clean/$main" "$A")
	read -r _ toff < <("$PY" offsets.py "clean/$main" "$B")
	if [ "$lay" = separate ]; then
		flip "corrupt/$name.data" $((doff + 7))
	else
		flip "corrupt/$name.dev" $((doff + 7))
	fi
	flip "corrupt/$main" $((toff + 1))
	# expected sha256 of the buffered ranges around the bad blocks: whole 4 KiB pages
	# (the page cache reads a page; with 512-byte blocks a bad block fails its page):
	# [0, pA) [pA+4K, pB) [pB+4K, end), pX = start of the page holding block X
	ppb=$((4096 / bs))
	pA=$((A - A % ppb)) pB=$((B - B % ppb))
	r1=$(head -c $((pA * bs)) "$name.logical" | sha256sum | cut -d' ' -f1)
	r2=$(tail -c +$(((pA + ppb) * bs + 1)) "$name.logical" | head -c $(((pB - pA - ppb) * bs)) | sha256sum | cut -d' ' -f1)
	r3=$(tail -c +$(((pB + ppb) * bs + 1)) "$name.logical" | sha256sum | cut -d' ' -f1)
	echo "$name $bs $nb $full $A $B $pA $pB $ppb $r1 $r2 $r3 $table" >>files/clean.txt
	for f in "${imgs[@]}"; do
		imgs_clean+=("$WORK/$f")
		imgs_corrupt+=("$WORK/corrupt/${f#clean/}")
	done
	disk=$((disk + ${#imgs[@]}))
}
while read -r line; do
	# shellcheck disable=SC2086
	prep $line || { echo "prepare failed: $line"; exit 1; }
done <<EOF
$CASES
EOF
cp files/clean.txt files/corrupt.txt

cat >guest.sh <<'EOF'
# Guest (busybox sh). /files/mode = clean | corrupt; /files/<mode>.txt = the cases.
F=${DMTEST_FILES:-/files}
mode=$(cat "$F/mode")
rc=0
res() { echo "RESULT $1 $2"; [ "$2" = ok ] || rc=1; }
rd() { # dev bs skip count [flags]
	dd if="$1" bs="$2" skip="$3" count="$4" $5 2>/dev/null | sha256sum | cut -d' ' -f1
}
while read -r name bs nb full A B pA pB ppb r1 r2 r3 table; do
	if ! echo "$table" | dmsetup create "$name" 2>/tmp/err; then
		res "$name-create" "fail:$(cat /tmp/err)"
		continue
	fi
	dev=/dev/mapper/$name
	if [ "$mode" = clean ]; then
		got=$(dd if="$dev" bs=1M 2>/tmp/err | sha256sum | cut -d' ' -f1)
		if [ "$got" = "$full" ] && ! grep -q error /tmp/err; then res "$name-read-all" ok; else res "$name-read-all" "fail:$(cat /tmp/err)"; fi
		out=$("$F/directread" "$dev" "$bs" 0 1 $((nb / 2)) $((nb - 1)) | grep -v ' ok$')
		[ -z "$out" ] && res "$name-direct-sample" ok || res "$name-direct-sample" "fail:$out"
	else
		[ "$(rd "$dev" 4096 0 $((pA / ppb)))" = "$r1" ] && res "$name-buffered-before-A" ok || res "$name-buffered-before-A" fail
		[ "$(rd "$dev" 4096 $((pA / ppb + 1)) $(((pB - pA) / ppb - 1)))" = "$r2" ] && res "$name-buffered-between" ok || res "$name-buffered-between" fail
		[ "$(rd "$dev" 4096 $((pB / ppb + 1)) $(((nb - pB) / ppb - 1)))" = "$r3" ] && res "$name-buffered-after-B" ok || res "$name-buffered-after-B" fail
		# O_DIRECT: exactly A and B fail with EILSEQ, their neighbours read
		out=$("$F/directread" "$dev" "$bs" $((A - 1)) "$A" $((A + 1)) $((B - 1)) "$B" $((B + 1)) | tr '\n' ' ')
		want="$((A - 1)) ok $A EILSEQ $((A + 1)) ok $((B - 1)) ok $B EILSEQ $((B + 1)) ok "
		[ "$out" = "$want" ] && res "$name-direct-EILSEQ-exact" ok || res "$name-direct-EILSEQ-exact" "fail:$out"
		for b in "$A" "$B"; do
			echo 3 >/proc/sys/vm/drop_caches
			if dd if="$dev" of=/dev/null bs="$bs" skip="$b" count=1 2>/tmp/err; then
				res "$name-buffered-EIO-$b" "fail:read-succeeded"
			elif grep -q 'Input/output error' /tmp/err; then res "$name-buffered-EIO-$b" ok; else res "$name-buffered-EIO-$b" "fail:$(cat /tmp/err)"; fi
		done
	fi
	st=$(dmsetup status "$name")
	echo "STATUS $name $st"
	# "0 <len> integrity <mismatches> <provided> <recalc>": recalc must be "-"
	set -- $st
	[ "$6" = - ] && res "$name-no-recalc" ok || res "$name-no-recalc" "fail:$st"
	if [ "$mode" = clean ]; then
		[ "$4" = 0 ] && res "$name-no-mismatch" ok || res "$name-no-mismatch" "fail:$st"
	fi
	dmsetup remove "$name" || res "$name-remove" fail
	# libcryptsetup's own table from our superblock (integritysetup open), crc32c cases
	case "$mode/$name" in clean/*-t8*) ;; clean/*crc32c*)
		set -- $table
		meta=$(echo "$table" | tr ' ' '\n' | sed -n 's/^meta_device://p')
		if [ -n "$meta" ]; then
			integritysetup open "$meta" "$name-is" --data-device "$4" --integrity crc32c 2>/tmp/err
		else
			integritysetup open "$4" "$name-is" --integrity crc32c 2>/tmp/err
		fi
		if [ $? = 0 ]; then
			echo "ISTABLE $name $(dmsetup table "$name-is")"
			got=$(dd if="/dev/mapper/$name-is" bs=1M 2>/dev/null | sha256sum | cut -d' ' -f1)
			[ "$got" = "$full" ] && res "$name-integritysetup-open" ok || res "$name-integritysetup-open" "fail:readback"
			integritysetup close "$name-is"
		else
			res "$name-integritysetup-open" "fail:$(cat /tmp/err)"
		fi
		;;
	esac
done <"$F/$mode.txt"
dmesg | grep -i integrity | tail -n 20
exit $rc
EOF

boot() { # MODE IMAGES...
	mode=$1
	shift
	echo "$mode" >files/mode
	sha_before=$(sha256sum "$@")
	DMTEST_TIMEOUT=300 "$DMT" run --files files guest.sh "$@" >"console-$mode.log" 2>&1
	grc=$?
	sha_after=$(sha256sum "$@")
	grep -E '^(RESULT|STATUS|ISTABLE)' "console-$mode.log" | sed 's/^/    /'
	while read -r _ n r; do
		if [ "$r" = ok ]; then
			echo "  PASS kernel-$mode-$n"
			_record PASS "kernel-$mode-$n"
		else
			echo "  FAIL kernel-$mode-$n ($r)"
			_record FAIL "kernel-$mode-$n"
		fi
	done < <(grep '^RESULT ' "console-$mode.log")
	if [ "$grc" != 0 ] && ! grep -q '^RESULT .* fail' "console-$mode.log"; then
		tail -n 30 "console-$mode.log"
		_record FAIL "kernel-$mode-guest(exit $grc)"
	fi
	if [ "$sha_before" = "$sha_after" ]; then
		echo "  PASS kernel-$mode-no-write"
		_record PASS "kernel-$mode-no-write"
	else
		diff <(echo "$sha_before") <(echo "$sha_after")
		_record FAIL "kernel-$mode-no-write"
	fi
}
boot clean "${imgs_clean[@]}"
boot corrupt "${imgs_corrupt[@]}"
