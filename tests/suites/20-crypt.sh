#!/usr/bin/env bash
# dm-crypt: tools/cmd/dm-crypt against OpenSSL (through Debian's
# python3-cryptography, and the openssl CLI for CBC), sector by sector, for
# every cipher spec x sector size x key size, with iv_offset and
# iv_large_sectors; AEAD (gcm, authenc) ciphertext and tag entries; round
# trips; the real kernel (QEMU, tests/e2e/dmtest.sh) reads our images and
# we decrypt what it writes; bad input fails with one line, a non-zero exit
# and no OUT left. DMTEST_SKIP=e2e skips the kernel part.
set -u
. "$ROOT/tests/lib.sh"

DC="$BIN/dm-crypt"
cd "$WORK" || exit 1
umask 077 # key files private (the tools warn otherwise)

cat >oracle.py <<'EOF'
# Independent dm-crypt oracle: OpenSSL's AES via python3-cryptography.
# usage: oracle.py SPEC KEYFILE SECTOR_SIZE IV_OFFSET LARGE(0|1) PLAIN CIPHER
# Checks every sector of CIPHER against PLAIN. IV sector (dm-crypt.c):
# s = k*(ss/512) + iv_offset, then s >>= log2(ss/512) with iv_large_sectors.
import hashlib, struct, sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

spec, keyf, ss, ivoff, large, ptf, ctf = sys.argv[1:]
key = open(keyf, "rb").read()
ss, ivoff, large = int(ss), int(ivoff), large == "1"
pt, ct = open(ptf, "rb").read(), open(ctf, "rb").read()
if len(pt) != len(ct) or len(pt) % ss:
    sys.exit("size mismatch: %d vs %d" % (len(pt), len(ct)))
spb = ss // 512
M64 = (1 << 64) - 1

def ecb(k):
    return Cipher(algorithms.AES(k), modes.ECB()).encryptor()

def xts_from_ecb(k, tweak, data):
    # XTS built from AES-ECB (OpenSSL has no AES-192-XTS): T = E_K2(iv),
    # C_j = E_K1(P_j ^ T_j) ^ T_j, T_{j+1} = T_j * x in GF(2^128).
    half = len(k) // 2
    e1, t = ecb(k[:half]), ecb(k[half:]).update(tweak)
    t = int.from_bytes(t, "little")
    out = bytearray()
    for j in range(0, len(data), 16):
        tb = t.to_bytes(16, "little")
        x = bytes(a ^ b for a, b in zip(data[j:j + 16], tb))
        out += bytes(a ^ b for a, b in zip(e1.update(x), tb))
        t <<= 1
        if t >> 128:
            t = (t & ((1 << 128) - 1)) ^ 0x87
    return bytes(out)

essiv = ecb(hashlib.sha256(key).digest()) if spec == "aes-cbc-essiv:sha256" else None
bad = []
for k in range(len(pt) // ss):
    s = (k * spb + ivoff) & M64
    if large:
        s >>= spb.bit_length() - 1
    p = pt[k * ss:(k + 1) * ss]
    if spec == "aes-xts-plain64":
        tweak = struct.pack("<Q", s) + bytes(8)
        if len(key) in (32, 64):
            e = Cipher(algorithms.AES(key), modes.XTS(tweak)).encryptor()
            want = e.update(p) + e.finalize()
        else:
            want = xts_from_ecb(key, tweak, p)
    else:
        if spec == "aes-cbc-plain":
            iv = struct.pack("<I", s & 0xFFFFFFFF) + bytes(12)
        elif spec == "aes-cbc-plain64":
            iv = struct.pack("<Q", s) + bytes(8)
        elif spec == "aes-cbc-essiv:sha256":
            iv = essiv.update(struct.pack("<Q", s) + bytes(8))
        else:
            sys.exit("unknown spec " + spec)
        e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        want = e.update(p) + e.finalize()
    if want != ct[k * ss:(k + 1) * ss]:
        bad.append(k)
print("%s key %d ss %d iv_offset %d large %d: %d sectors, %d bad %s" % (spec, len(key), ss, ivoff, large, len(pt) // ss, len(bad), bad[:5]))
sys.exit(1 if bad else 0)
EOF

rand() { head -c "$2" /dev/urandom >"$1"; }

# one_case SPEC KEYLEN SS: 19 sectors (two 8-sector groups and a tail) under
# four IV settings, including offsets that wrap plain's 32-bit counter.
one_case() {
	_spec=$1 _kl=$2 _ss=$3
	_spb=$((_ss / 512))
	rand key.bin "$_kl"
	rand plain.img $((19 * _ss))
	for _iv in "0 0" "$((_spb * 7)) 0" "$((_spb * 7)) 1" "$(((1 << 32) - 4 * _spb)) 0"; do
		read -r _off _lg <<<"$_iv"
		_large=()
		[ "$_lg" = 1 ] && _large=(--iv-large-sectors)
		"$DC" encrypt --cipher "$_spec" --key-file key.bin --sector-size "$_ss" --iv-offset "$_off" "${_large[@]}" plain.img enc.img || return 1
		"$PY" oracle.py "$_spec" key.bin "$_ss" "$_off" "$_lg" plain.img enc.img || return 1
		"$DC" decrypt --cipher "$_spec" --key-file key.bin --sector-size "$_ss" --iv-offset "$_off" "${_large[@]}" enc.img back.img || return 1
		cmp plain.img back.img || return 1
	done
}

for spec in aes-cbc-plain aes-cbc-plain64 aes-cbc-essiv:sha256 aes-xts-plain64; do
	case $spec in
	*xts*) keys="32 48 64" ;;
	*) keys="16 24 32" ;;
	esac
	for ss in 512 1024 2048 4096; do
		for kl in $keys; do
			check "oracle $spec ss=$ss key=$kl" one_case "$spec" "$kl" "$ss"
		done
	done
done

# Several 1 MiB work chunks (parallel workers) plus a partial one.
big_case() {
	rand key.bin 64
	rand big.img $((5 * 1048576 + 3 * 4096))
	"$DC" encrypt --cipher aes-xts-plain64 --key-file key.bin --sector-size 4096 --iv-offset 16 big.img big.enc &&
		"$PY" oracle.py aes-xts-plain64 key.bin 4096 16 0 big.img big.enc &&
		"$DC" decrypt --cipher aes-xts-plain64 --key-file key.bin --sector-size 4096 --iv-offset 16 big.enc big.back &&
		cmp big.img big.back
}
check "oracle multi-chunk 5 MiB xts 4K" big_case

# The openssl CLI on one CBC sector: sector 3 of a 4 KiB-sector image,
# iv_offset 8, iv_large_sectors (IV sector (3*8+8)/8 = 4), and plain with
# 512-byte sectors (sector 5, iv_offset 2: IV sector 7).
openssl_cbc() { # SPEC KEYLEN SS IVOFF LARGE SECTOR IVSECTOR
	rand key.bin "$2"
	rand plain.img $((8 * $3))
	_large=()
	[ "$5" = 1 ] && _large=(--iv-large-sectors)
	"$DC" encrypt --cipher "$1" --key-file key.bin --sector-size "$3" --iv-offset "$4" "${_large[@]}" plain.img enc.img || return 1
	dd if=plain.img of=p.sec bs="$3" skip="$6" count=1 status=none
	dd if=enc.img of=c.sec bs="$3" skip="$6" count=1 status=none
	_iv=$(printf '%016x' "$7" | sed 's/../& /g' | awk '{for (i = NF; i > 0; i--) printf "%s", $i}')0000000000000000
	openssl enc -aes-$(($2 * 8))-cbc -nopad -K "$(xxd -p -c 256 key.bin)" -iv "$_iv" -in p.sec -out o.sec || return 1
	cmp o.sec c.sec
}
check "openssl enc aes-256-cbc plain64 4K sector, iv_large_sectors" openssl_cbc aes-cbc-plain64 32 4096 8 1 3 4
check "openssl enc aes-128-cbc plain 512" openssl_cbc aes-cbc-plain 16 512 2 0 5 7
check "openssl enc aes-192-cbc plain64 2K" openssl_cbc aes-cbc-plain64 24 2048 4 0 2 12

# Same inputs, same bytes; --params-out fragment, never the key.
determinism() {
	rand key.bin 64
	rand plain.img 65536
	"$DC" encrypt --cipher aes-xts-plain64 --key-file key.bin --sector-size 4096 --params-out p1.json plain.img e1.img &&
		"$DC" encrypt plain.img e2.img --cipher aes-xts-plain64 --key-file key.bin --sector-size 4096 --params-out p2.json &&
		cmp e1.img e2.img && cmp p1.json p2.json
}
check "deterministic output and params" determinism
params() {
	rand key.bin 32
	rand plain.img 65536
	"$DC" encrypt --cipher aes-cbc-essiv:sha256 --key-file key.bin --sector-size 2048 --iv-offset 12 --iv-large-sectors --params-out p.json plain.img e.img || return 1
	"$PY" - "$(xxd -p -c 256 key.bin)" <<'EOF'
import json, sys
p = json.load(open("p.json"))
want = {"target": "crypt", "cipher": "aes-cbc-essiv:sha256", "key_size": 32, "sector_size": 2048,
        "iv_offset": 12, "iv_large_sectors": True, "sectors": 128, "data_sectors": 128}
assert p == want, p
assert sys.argv[1] not in open("p.json").read()
EOF
}
check "params-out fragment" params

# Authenticated dm-crypt (integrity:N:aead, aead-offline.md): ciphertext
# and per-sector [auth tag | IV] entries against AES-GCM / XTS + HMAC-SHA256
# from python3-cryptography; AAD = le64(512-byte sector) || IV; IVs follow
# the documented deterministic derivation.
cat >aead_oracle.py <<'EOF'
# usage: aead_oracle.py SPEC KEYFILE SECTOR_SIZE PLAIN CIPHER TAGS
import hashlib, hmac, struct, sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

spec, keyf, ss, ptf, ctf, tf = sys.argv[1:]
key, ss = open(keyf, "rb").read(), int(ss)
pt, ct, tags = open(ptf, "rb").read(), open(ctf, "rb").read(), open(tf, "rb").read()
gcm = spec == "capi:gcm(aes)-random"
auth, ivs = (16, 12) if gcm else (32, 16)
ts, n = auth + ivs, len(pt) // ss
assert len(ct) == len(pt) and len(tags) == n * ts, (len(ct), len(tags))
kiv = hmac.new(key, b"dm-crypt-aead deterministic iv v1", hashlib.sha256).digest()

def xts_ecb(k, tweak, data):  # XTS from AES-ECB (OpenSSL has no AES-192-XTS)
    h = len(k) // 2
    e1 = Cipher(algorithms.AES(k[:h]), modes.ECB()).encryptor()
    t = int.from_bytes(Cipher(algorithms.AES(k[h:]), modes.ECB()).encryptor().update(tweak), "little")
    out = bytearray()
    for j in range(0, len(data), 16):
        tb = t.to_bytes(16, "little")
        out += bytes(a ^ b for a, b in zip(e1.update(bytes(a ^ b for a, b in zip(data[j:j + 16], tb))), tb))
        t = ((t << 1) & ((1 << 128) - 1)) ^ (0x87 if t >> 127 else 0)
    return bytes(out)

bad, seen = [], set()
for i in range(n):
    S = struct.pack("<Q", i * (ss // 512))
    p, c, e = pt[i * ss:(i + 1) * ss], ct[i * ss:(i + 1) * ss], tags[i * ts:(i + 1) * ts]
    tag, iv = e[:auth], e[auth:]
    ok = iv == hmac.new(kiv, S + p, hashlib.sha256).digest()[:ivs] and iv not in seen
    seen.add(iv)
    if gcm:
        ok = ok and AESGCM(key).encrypt(iv, p, S + iv) == c + tag
    else:
        ek, mk = key[:-32], key[-32:]
        if len(ek) in (32, 64):
            enc = Cipher(algorithms.AES(ek), modes.XTS(iv)).encryptor()
            wc = enc.update(p) + enc.finalize()
        else:
            wc = xts_ecb(ek, iv, p)
        ok = ok and wc == c and hmac.new(mk, S + iv + c, hashlib.sha256).digest() == tag
    if not ok:
        bad.append(i)
print("%s key %d ss %d: %d sectors, %d bad %s" % (spec, len(key), ss, n, len(bad), bad[:5]))
sys.exit(1 if bad else 0)
EOF
aead_case() { # SPEC KEYLEN SS
	rand key.bin "$2"
	rand plain.img $((19 * $3))
	dd if=/dev/zero of=plain.img bs="$3" seek=3 count=2 conv=notrunc status=none # two equal sectors
	"$DC" encrypt --cipher "$1" --key-file key.bin --sector-size "$3" --tags tags.bin plain.img enc.img &&
		"$PY" aead_oracle.py "$1" key.bin "$3" plain.img enc.img tags.bin &&
		"$DC" decrypt --cipher "$1" --key-file key.bin --sector-size "$3" --tags tags.bin enc.img back.img &&
		cmp plain.img back.img
}
for ss in 512 4096; do
	for kl in 16 24 32; do
		check "aead oracle gcm(aes) ss=$ss key=$kl" aead_case 'capi:gcm(aes)-random' "$kl" "$ss"
	done
	for kl in 64 80 96; do
		check "aead oracle authenc(hmac(sha256),xts(aes)) ss=$ss key=$kl" aead_case 'capi:authenc(hmac(sha256),xts(aes))-random' "$kl" "$ss"
	done
done
check "aead oracle gcm(aes) ss=2048 key=32" aead_case 'capi:gcm(aes)-random' 32 2048
aead_tamper() { # a flipped tag byte of sector 2 (512-byte sectors): decrypt names sector 2, no OUT
	rand key.bin 32
	rand plain.img 8192
	rm -f bad.img
	"$DC" encrypt --cipher 'capi:gcm(aes)-random' --key-file key.bin --tags tags.bin plain.img enc.img || return 1
	printf '\001' | dd of=tags.bin bs=1 seek=$((2 * 28 + 3)) conv=notrunc status=none
	"$DC" decrypt --cipher 'capi:gcm(aes)-random' --key-file key.bin --tags tags.bin enc.img bad.img 2>err.txt && return 1
	grep -q 'sector 2: authentication failed' err.txt && [ ! -e bad.img ]
}
check "aead tampered tag fails at its sector, no OUT" aead_tamper

# The real kernel (tests/e2e/dmtest.sh: Debian 6.1 under QEMU TCG), one guest
# for all cases: each 68 KiB region of disk A holds one of our 64 KiB images
# (its own cipher, key, sector size, iv_offset, iv_large_sectors), mapped with
# the table `dm-crypt table` prints, at a device <offset> (which must not
# change the IVs); the guest checks each mapping's sha256. The guest also
# writes each plaintext through the same table onto disk B, and we decrypt it.
cat >kcases.txt <<'EOF'
aes-cbc-plain 16 512 0 0
aes-cbc-plain 32 512 7 0
aes-cbc-plain64 24 1024 6 1
aes-cbc-plain64 32 4096 8 0
aes-cbc-essiv:sha256 32 512 3 0
aes-cbc-essiv:sha256 16 2048 12 1
aes-cbc-essiv:sha256 24 4096 0 0
aes-xts-plain64 64 512 0 0
aes-xts-plain64 32 512 9 0
aes-xts-plain64 48 1024 2 0
aes-xts-plain64 64 2048 4 1
aes-xts-plain64 64 4096 0 0
aes-xts-plain64 64 4096 16 0
aes-xts-plain64 64 4096 16 1
aes-xts-plain64 32 4096 0 1
EOF
cat >kguest.sh <<'EOF'
fail=0
i=0
while read -r name sha table; do
	i=$((i + 1))
	case $name in r*) dev=/dev/vda ;; *) dev=/dev/vdb ;; esac
	table=$(echo "$table" | sed "s#@DEV@#$dev#")
	if ! echo "$table" | dmsetup create "k$i"; then
		echo "DMTEST-BAD $name: dmsetup create failed"
		fail=1
		continue
	fi
	case $name in
	r*)
		got=$(sha256sum <"/dev/mapper/k$i" | cut -d' ' -f1)
		if [ "$got" = "$sha" ]; then echo "DMTEST-OK $name"; else echo "DMTEST-BAD $name: sha256 $got"; fail=1; fi
		;;
	w*)
		if dd if="$DMTEST_FILES/$name.img" of="/dev/mapper/k$i" bs=4096 2>/dev/null && sync; then
			echo "DMTEST-WROTE $name"
		else
			echo "DMTEST-BAD $name: write failed"
			fail=1
		fi
		;;
	esac
	dmsetup remove "k$i" || fail=1
done <"$DMTEST_FILES/cases"
while IFS='|' read -r head itable ctable; do
	set -- $head
	n=$1 sha=$2 msec=$3 moff=$4
	i=${n%t}
	echo "0 128 linear /dev/vdc $(((i - 1) * 128))" | dmsetup create "ad$n" &&
		echo "0 $msec linear /dev/vdd $moff" | dmsetup create "am$n" &&
		echo "$itable" | dmsetup create "ai$n" &&
		echo "$ctable" | dmsetup create "ac$n" || { echo "DMTEST-BAD a$n: create failed"; fail=1; continue; }
	got=$(sha256sum <"/dev/mapper/ac$n" | cut -d' ' -f1)
	case $n in
	*t)
		# buffered reads fail for the whole 4 KiB page around a bad sector
		# (aead-offline.md); sector 5 must fail, the next page must not
		bad=$(for s in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do dd if="/dev/mapper/ac$n" of=/dev/null bs=512 skip=$s count=1 2>/dev/null || echo $s; done | tr '\n' ' ')
		case " $bad" in *" 5 "*) ok5=1 ;; *) ok5=0 ;; esac
		if [ "$got" != "$sha" ] && [ $ok5 = 1 ] && ! echo " $bad" | grep -q ' \(8\|9\|1[0-5]\) '; then echo "DMTEST-OK a$n"; else echo "DMTEST-BAD a$n: tampered read sha256 $got, failing sectors: $bad"; fail=1; fi
		;;
	*)
		if [ "$got" = "$sha" ]; then echo "DMTEST-OK a$n"; else echo "DMTEST-BAD a$n: sha256 $got"; fail=1; fi
		# then the kernel writes new plaintext (random IVs, via the journal)
		if dd if="$DMTEST_FILES/aw$n.img" of="/dev/mapper/ac$n" bs=4096 2>/dev/null && sync; then
			echo "DMTEST-WROTE a$n"
		else
			echo "DMTEST-BAD a$n: write failed"
			fail=1
		fi
		;;
	esac
	dmsetup remove "ac$n" && dmsetup remove "ai$n" && dmsetup remove "am$n" && dmsetup remove "ad$n" || fail=1
done <"$DMTEST_FILES/aead"
sync
exit $fail
EOF
kernel_prepare() {
	rm -rf kfiles && mkdir kfiles
	: >kfiles/cases
	: >diskA.img
	: >diskB.img
	_n=0
	while read -r _spec _kl _ss _ivo _lg; do
		_n=$((_n + 1))
		rand "k$_n.key" "$_kl"
		rand "k$_n.plain" 65536
		_large=()
		[ "$_lg" = 1 ] && _large=(--iv-large-sectors)
		_off=$(((_n - 1) * 136)) # 68 KiB regions, in 512-byte sectors
		"$DC" encrypt --cipher "$_spec" --key-file "k$_n.key" --sector-size "$_ss" --iv-offset "$_ivo" "${_large[@]}" "k$_n.plain" "k$_n.enc" || return 1
		dd if="k$_n.enc" of=diskA.img bs=512 seek="$_off" conv=notrunc status=none
		dd if=/dev/zero of=diskB.img bs=512 seek="$_off" count=136 conv=notrunc status=none
		_t=$("$DC" table --cipher "$_spec" --sector-size "$_ss" --iv-offset "$_ivo" "${_large[@]}" --key-ref "$(xxd -p -c 256 "k$_n.key")" --device @DEV@ --offset "$_off" 65536) || return 1
		printf 'r%d %s %s\n' "$_n" "$(sha256sum <"k$_n.plain" | cut -d' ' -f1)" "$_t" >>kfiles/cases
		printf 'w%d - %s\n' "$_n" "$_t" >>kfiles/cases
		cp "k$_n.plain" "kfiles/w$_n.img"
	done <kcases.txt
}
# AEAD in the same guest: for each case a 64 KiB data image (our
# ciphertext) and a dm-integrity metadata image built here from the rules of
# docs/aead-offline.md (superblock v2, empty journal, our tag entries), on
# disks C and D, carved with dm-linear; integrity ("none" hash, J) under
# crypt integrity:<N>:aead; the guest compares sha256 of the crypt mapping.
cat >kaead.txt <<'EOF'
capi:gcm(aes)-random 32 512
capi:gcm(aes)-random 16 4096
capi:authenc(hmac(sha256),xts(aes))-random 96 512
capi:authenc(hmac(sha256),xts(aes))-random 64 4096
capi:gcm(aes)-random 32 512 tamper
EOF
cat >mkmeta.py <<'EOF'
# mkmeta.py TAG_SIZE SECTOR_SIZE DATA_BYTES TAGS OUT: dm-integrity metadata
# device for a separate-metadata AEAD layout (docs/aead-offline.md, section 3).
import struct, sys
tag, ss, size, tagsf, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
spb = ss // 512
js = 1
entry = (8 + 8 * spb + tag + 7) // 8 * 8
eps = 504 // entry
section = 8 * eps * spb + 8
initial = 8 + js * section
sb = b"integrt\0" + struct.pack("<BBHIQIBB2xQ8x16s", 2, 0, tag, js, size // 512, 0,
                                 spb.bit_length() - 1, 15 if spb == 1 else 12, 0, bytes(16))
meta = bytearray(initial * 512)
meta[:len(sb)] = sb
for s in range(js):
    base = (8 + s * section) * 512
    for n in range(8 * eps):
        off = base + (n % 8) * 512 + (n // 8) * entry
        meta[off + 4:off + 8] = b"\xff\xff\xff\xff"
    for i in range(section):
        end = base + (i + 1) * 512
        meta[end - 8:end] = struct.pack("<Q", 0x1111111111111111 ^ (s << 32 ^ i))
tags = open(tagsf, "rb").read()
assert len(tags) == size // ss * tag
meta += tags + bytes(-len(tags) % 65536)  # tag area rounded up to 64 KiB (buffer_sectors 128)
open(out, "wb").write(meta)
print(initial)  # the tags start at sector `initial`
EOF
kernel_prepare_aead() {
	rm -f kfiles/aead diskC.img diskD.img
	: >kfiles/aead
	_n=0
	while read -r _spec _kl _ss _tamper; do
		_n=$((_n + 1))
		rand "a$_n.key" "$_kl"
		rand "a$_n.plain" 65536
		"$DC" encrypt --cipher "$_spec" --key-file "a$_n.key" --sector-size "$_ss" --tags "a$_n.tags" "a$_n.plain" "a$_n.enc" || return 1
		# tamper: one flipped ciphertext byte in sector 5; the kernel must refuse it
		[ -n "$_tamper" ] && printf '\001' | dd of="a$_n.enc" bs=1 seek=$((5 * _ss + 17)) conv=notrunc status=none
		_tag=$(($(stat -c %s "a$_n.tags") / (65536 / _ss)))
		_init=$("$PY" mkmeta.py "$_tag" "$_ss" 65536 "a$_n.tags" "a$_n.meta") || return 1
		echo "$_init" >"a$_n.init"
		rand "kfiles/aw$_n.img" 65536
		_msec=$(($(stat -c %s "a$_n.meta") / 512))
		[ "$_msec" -le 1024 ] || return 1
		dd if="a$_n.enc" of=diskC.img bs=512 seek=$(((_n - 1) * 128)) conv=notrunc status=none
		dd if="a$_n.meta" of=diskD.img bs=512 seek=$(((_n - 1) * 1024)) conv=notrunc status=none
		_name=$_n
		[ -n "$_tamper" ] && _name="${_n}t"
		_opt="1 meta_device:/dev/mapper/am$_name"
		[ "$_ss" = 4096 ] && _opt="2 block_size:4096 meta_device:/dev/mapper/am$_name"
		_t=$("$DC" table --cipher "$_spec" --sector-size "$_ss" --key-ref "$(xxd -p -c 256 "a$_n.key")" --device "/dev/mapper/ai$_name" 65536) || return 1
		printf '%s %s %d %d|0 128 integrity /dev/mapper/ad%s 0 %d J %s|%s\n' \
			"$_name" "$(sha256sum <"a$_n.plain" | cut -d' ' -f1)" "$_msec" $(((_n - 1) * 1024)) "$_name" "$_tag" "$_opt" "$_t" >>kfiles/aead
	done <kaead.txt
	truncate -s $((8 * 1024 * 512)) diskD.img
}
kernel_checks() {
	case " ${DMTEST_SKIP:-} " in *" e2e "*)
		skip "kernel dm-crypt" "DMTEST_SKIP has e2e"
		return
		;;
	esac
	if ! "$ROOT/tests/e2e/dmtest.sh" build >kbuild.log 2>&1; then
		skip "kernel dm-crypt" "tests/e2e/dmtest.sh build failed: $(tail -n 1 kbuild.log)"
		return
	fi
	check "kernel: images, tables and plaintexts prepared" kernel_prepare
	check "kernel: AEAD data and metadata images prepared" kernel_prepare_aead
	"$ROOT/tests/e2e/dmtest.sh" run --timeout 400 --files kfiles kguest.sh diskA.img diskB.img diskC.img diskD.img >kguest.log 2>&1
	_rc=$?
	check "kernel: guest ran every case (exit 0)" sh -c "[ $_rc = 0 ] || { grep -a 'DMTEST\|crypt\|device-mapper' kguest.log | tail -n 40; false; }"
	_n=0
	while read -r _spec _kl _ss _ivo _lg; do
		_n=$((_n + 1))
		_what="$_spec key=$_kl ss=$_ss iv_offset=$_ivo iv_large_sectors=$_lg"
		check "kernel reads our image: $_what" grep -q "^DMTEST-OK r$_n\$" kguest.log
		_large=()
		[ "$_lg" = 1 ] && _large=(--iv-large-sectors)
		dd if=diskB.img of="k$_n.kw" bs=512 skip=$(((_n - 1) * 136)) count=128 status=none
		check "we decrypt what the kernel wrote: $_what" kernel_decrypt "$_n" "$_spec" "$_ss" "$_ivo" "${_large[@]}"
	done <kcases.txt
	_n=0
	while read -r _spec _kl _ss _tamper; do
		_n=$((_n + 1))
		if [ -n "$_tamper" ]; then
			check "kernel refuses the tampered sector of our AEAD image (only its 4 KiB page): $_spec ss=$_ss" grep -q "^DMTEST-OK a${_n}t\$" kguest.log
		else
			check "kernel reads our AEAD image: $_spec key=$_kl ss=$_ss" grep -q "^DMTEST-OK a$_n\$" kguest.log
			check "we verify and decrypt what the kernel wrote (AEAD, random IVs): $_spec ss=$_ss" kernel_decrypt_aead "$_n" "$_spec" "$_ss"
		fi
	done <kaead.txt
}
kernel_decrypt_aead() { # N SPEC SS: data and tags as the kernel left them on disks C and D
	grep -q "^DMTEST-WROTE a$1\$" kguest.log || return 1
	dd if=diskC.img of="a$1.kw" bs=512 skip=$((($1 - 1) * 128)) count=128 status=none
	_ts=$(($(stat -c %s "a$1.tags") / (65536 / $3)))
	dd if=diskD.img of="a$1.kwtags" bs=1 skip=$(((($1 - 1) * 1024 + $(cat "a$1.init")) * 512)) count=$((65536 * _ts / $3)) status=none
	! cmp -s "a$1.kwtags" "a$1.tags" &&
		"$DC" decrypt --cipher "$2" --key-file "a$1.key" --sector-size "$3" --tags "a$1.kwtags" "a$1.kw" "a$1.kwback" &&
		cmp "kfiles/aw$1.img" "a$1.kwback"
}
kernel_decrypt() { # N SPEC SS IVOFF [--iv-large-sectors]
	grep -q "^DMTEST-WROTE w$1\$" kguest.log &&
		"$DC" decrypt --cipher "$2" --key-file "k$1.key" --sector-size "$3" --iv-offset "$4" "${@:5}" "k$1.kw" "k$1.kback" &&
		cmp "k$1.plain" "k$1.kback"
}
kernel_checks

# Bad input: one stderr line, exit != 0, no OUT (and no temp file) left.
rand plain.img 8192
rand key64.bin 64
mkdir -p out
noout() { [ -z "$(ls -A out)" ]; }
KEYHEX=00112233445566778899aabbccddeeff0011223344
expect_fail "wrong key length (hex)" '32, 48 or 64 bytes' "$DC" encrypt --cipher aes-xts-plain64 --key-hex "$KEYHEX" plain.img out/o.img
check "wrong key length: no key bytes in the error" sh -c "! \"$DC\" encrypt --cipher aes-xts-plain64 --key-hex $KEYHEX plain.img out/o.img 2>&1 | grep -qi $KEYHEX"
rand key20.bin 20
expect_fail "wrong key length (file)" '16, 24 or 32 bytes' "$DC" encrypt --cipher aes-cbc-plain --key-file key20.bin plain.img out/o.img
expect_fail "non-hex key" 'not a hex string' "$DC" encrypt --cipher aes-xts-plain64 --key-hex zz11 plain.img out/o.img
expect_fail "unknown cipher" 'unsupported cipher spec "aes-ctr-plain64"' "$DC" encrypt --cipher aes-ctr-plain64 --key-file key64.bin plain.img out/o.img
expect_fail "hostile cipher spec" 'unsupported cipher spec' "$DC" encrypt --cipher "$(printf 'aes-xts-plain64\nX')" --key-file key64.bin plain.img out/o.img
rand odd.img 5000
rand six.img 6144
expect_fail "size not a multiple of the sector size" 'not a multiple of the sector size 4096' "$DC" encrypt --cipher aes-xts-plain64 --key-file key64.bin --sector-size 4096 six.img out/o.img
expect_fail "size not a multiple of 512" 'not a multiple of the sector size 512' "$DC" encrypt --cipher aes-xts-plain64 --key-file key64.bin odd.img out/o.img
expect_fail "missing input" 'no such file' "$DC" encrypt --cipher aes-xts-plain64 --key-file key64.bin missing.img out/o.img
expect_fail "missing key file" 'key file' "$DC" encrypt --cipher aes-xts-plain64 --key-file nokey.bin plain.img out/o.img
mkdir -p keydir
expect_fail "key file is a directory" 'not a regular file' "$DC" encrypt --cipher aes-xts-plain64 --key-file keydir plain.img out/o.img
# Permission failures: as an unprivileged user (root runs them through
# setpriv as nobody, in a world-traversable scratch dir of their own).
AS=()
PERM=$WORK/perm
if [ "$(id -u)" = 0 ]; then
	if command -v setpriv >/dev/null && PERM=$(mktemp -d /tmp/rules_dm-crypt-perm.XXXXXX); then
		AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
		chmod 755 "$PERM"
		cp "$DC" "$PERM/dm-crypt" && chmod 755 "$PERM/dm-crypt"
	else
		PERM=""
	fi
else
	mkdir -p "$PERM" && cp "$DC" "$PERM/dm-crypt"
fi
if [ -n "$PERM" ]; then
	cp plain.img "$PERM/plain.img" && chmod 644 "$PERM/plain.img"
	cp key64.bin "$PERM/unreadable.bin" && chmod 000 "$PERM/unreadable.bin"
	cp key64.bin "$PERM/key.bin" && chmod 600 "$PERM/key.bin"
	[ "$(id -u)" = 0 ] && chown 65534:65534 "$PERM/key.bin"
	mkdir -p "$PERM/ro" && chmod 555 "$PERM/ro"
	expect_fail "unreadable key file" 'permission denied' "${AS[@]}" "$PERM/dm-crypt" encrypt --cipher aes-xts-plain64 --key-file "$PERM/unreadable.bin" "$PERM/plain.img" "$PERM/o.img"
	expect_fail "output dir not writable" 'permission denied' "${AS[@]}" "$PERM/dm-crypt" encrypt --cipher aes-xts-plain64 --key-file "$PERM/key.bin" "$PERM/plain.img" "$PERM/ro/o.img"
	check "no output in the read-only dir" sh -c "[ -z \"\$(ls -A '$PERM/ro')\" ] && [ ! -e '$PERM/o.img' ]"
	[ "$PERM" != "$WORK/perm" ] && rm -rf "$PERM"
else
	skip "unreadable key file" "running as root without setpriv"
	skip "output dir not writable" "running as root without setpriv"
fi
expect_fail "output dir missing" 'no such file' "$DC" encrypt --cipher aes-xts-plain64 --key-file key64.bin plain.img nodir/o.img
expect_fail "output under a file" 'not a directory' "$DC" encrypt --cipher aes-xts-plain64 --key-file key64.bin plain.img plain.img/o.img
expect_fail "bad sector size" 'sector-size 8192' "$DC" encrypt --cipher aes-xts-plain64 --key-file key64.bin --sector-size 8192 plain.img out/o.img
expect_fail "iv offset not a sector multiple" 'iv-offset 3' "$DC" encrypt --cipher aes-xts-plain64 --key-file key64.bin --sector-size 4096 --iv-offset 3 plain.img out/o.img
expect_fail "both key flags" 'mutually exclusive' "$DC" encrypt --cipher aes-xts-plain64 --key-file key64.bin --key-hex 00 plain.img out/o.img
expect_fail "no key" 'key is required' "$DC" encrypt --cipher aes-xts-plain64 plain.img out/o.img
expect_fail "missing OUT" 'want IN and OUT' "$DC" encrypt --cipher aes-xts-plain64 --key-file key64.bin plain.img
expect_fail "aead without --tags" 'needs --tags' "$DC" encrypt --cipher 'capi:gcm(aes)-random' --key-file key64.bin plain.img out/o.img
expect_fail "--tags with a plain cipher" 'only for AEAD' "$DC" encrypt --cipher aes-xts-plain64 --key-file key64.bin --tags out/t plain.img out/o.img
expect_fail "aead wrong key length" '16, 24 or 32 bytes' "$DC" encrypt --cipher 'capi:gcm(aes)-random' --key-file key64.bin --tags out/t plain.img out/o.img
rand key32.bin 32
"$DC" encrypt --cipher 'capi:gcm(aes)-random' --key-file key32.bin --tags tags8k.bin plain.img enc8k.img
head -c 100 tags8k.bin >short-tags.bin
expect_fail "aead decrypt with a short tag file" 'tags short-tags.bin: 100 bytes, want 448' "$DC" decrypt --cipher 'capi:gcm(aes)-random' --key-file key32.bin --tags short-tags.bin enc8k.img out/o.img
expect_fail "unknown capi cipher" 'supported AEAD specs' "$DC" encrypt --cipher 'capi:ccm(aes)-random' --key-file key64.bin --tags out/t plain.img out/o.img
expect_fail "unknown command" 'unknown command' "$DC" scramble --cipher aes-xts-plain64 plain.img out/o.img
check "no OUT or temp file left after failures" noout
usage_exit() { "$DC" encrypt --bogus plain.img out/o.img 2>/dev/null; [ $? -eq 2 ]; }
check "unknown flag exits 2" usage_exit
keylen_exit() { "$DC" encrypt --cipher aes-xts-plain64 --key-file key20.bin plain.img out/o.img 2>/dev/null; [ $? -eq 2 ]; }
check "wrong key length exits 2 (a bad argument value, as dm-compose)" keylen_exit

# Progress: nothing reaches a stderr that is not a terminal (a file here), and
# --quiet keeps a terminal's stderr clean too (script(1) gives a pty).
rand big.img $((32 << 20))
silent() {
	"$DC" encrypt --cipher aes-xts-plain64 --key-file key64.bin --sector-size 4096 big.img out/big.enc 2>prog.err || return 1
	"$DC" decrypt --cipher aes-xts-plain64 --key-file key64.bin --sector-size 4096 out/big.enc out/big.dec 2>>prog.err || return 1
	cmp big.img out/big.dec && [ ! -s prog.err ] || { cat -A prog.err | head -3; return 1; }
}
check "progress: silent when stderr is not a terminal" silent
if command -v script >/dev/null; then
	quiet_tty() {
		script -qec "\"$DC\" encrypt --quiet --cipher aes-xts-plain64 --key-file key64.bin --sector-size 4096 big.img out/big.enc" /dev/null >tty.out 2>&1 || return 1
		! grep -q 'MiB' tty.out || { cat -A tty.out | head -3; return 1; }
	}
	check "progress: --quiet draws nothing on a terminal" quiet_tty
	tty_bar() { # a terminal without --quiet may draw; whatever it draws is the progress line
		script -qec "\"$DC\" encrypt --cipher aes-xts-plain64 --key-file key64.bin --sector-size 4096 big.img out/big.enc" /dev/null >tty.out 2>&1 || return 1
		tr '\r' '\n' <tty.out | grep -v '^\s*$' | sed 's/\x1b\[K//g' | grep -v '^dm-crypt encrypt .*%' | grep . && return 1
		return 0
	}
	check "progress: a terminal gets only the progress line" tty_bar
else
	skip "progress on a terminal" "script(1) missing"
fi
rm -f big.img out/big.enc out/big.dec
