#!/usr/bin/env bash
# arm64: the ARMv8 Crypto Extensions kernels of tools/crypt/internal/fastaes
# under user-mode QEMU (qemu-aarch64 -cpu max has AESE/AESD). Checks results,
# never speed (emulation says nothing about it):
#   - the module cross-builds for arm64 (and the fastaes package with the
#     purego tag), go vet is clean for tools/crypt on arm64;
#   - the fastaes and tools/crypt test binaries, built for arm64, pass under
#     QEMU on the assembly path (FASTAES_EXPECT=asm makes the fastaes run fail
#     if it skipped the kernels) and with the feature turned off
#     (GODEBUG=cpu.aes=off) and with -tags purego (FASTAES_EXPECT=generic);
#   - dm-crypt built for arm64 encrypts small images byte for byte like the
#     host (amd64) dm-crypt and like OpenSSL (python3-cryptography) for
#     aes-xts-plain64 and aes-cbc-plain (plus essiv), with iv_offset across
#     plain's 32-bit wrap, on the assembly and the generic path, and decrypts
#     the host's output back to the plaintext.
# Skips when qemu-aarch64 is missing (run_tests.sh installs qemu-user).
set -u
. "$ROOT/tests/lib.sh"

if ! command -v qemu-aarch64 >/dev/null 2>&1; then
	skip "arm64 (all)" "qemu-aarch64 not installed (Debian package qemu-user)"
	exit 0
fi
cd "$WORK" || exit 1
umask 077 # key files private (the tools warn otherwise)

xbuild() { # GOARCH=arm64, static, no cgo
	env GOARCH=arm64 GOOS=linux CGO_ENABLED=0 "$@"
}

in_root() { (cd "$ROOT" && "$@"); }
check "arm64 cross build of the module" in_root xbuild go build ./...
check "arm64 go vet tools/crypt" in_root xbuild go vet ./tools/crypt/...

# Test binaries run from their package directory (testdata paths).
run_test() { # DIR BINARY [VAR=VALUE...] [-test.FLAG...]
	_dir=$1 _bin=$2
	shift 2
	_env=""
	_flags=""
	for _a; do
		case $_a in
		-test.*) _flags="$_flags $_a" ;;
		*) _env="$_env $_a" ;;
		esac
	done
	# shellcheck disable=SC2086 # lists of words without spaces
	(cd "$ROOT/$_dir" && env $_env qemu-aarch64 -cpu max "$_bin" -test.count=1 -test.v $_flags) >"$WORK/test.log" 2>&1
	_rc=$?
	grep -E '^(--- FAIL|FAIL|panic)' "$WORK/test.log"
	tail -n 1 "$WORK/test.log"
	return "$_rc"
}

fastaes_asm() {
	run_test tools/crypt/internal/fastaes "$WORK/fastaes.test" FASTAES_EXPECT=asm || return 1
	# the kernels really ran: armv8 subtests passed, nothing skipped
	grep -q -- '--- PASS: TestSectorRuns/armv8' "$WORK/test.log" &&
		! grep -q -- '--- SKIP' "$WORK/test.log"
}
fastaes_generic() { # BINARY ENV...: the fallback must be selected
	_b=$1
	shift
	run_test tools/crypt/internal/fastaes "$_b" FASTAES_EXPECT=generic "$@" &&
		grep -q -- '--- PASS: TestExpectedPath' "$WORK/test.log"
}
# Skipped under QEMU (both run natively in go test ./...):
# TestMmapInputTruncated, because qemu-user delivers the SIGBUS of a
# truncated mapping with si_addr 0, which the Go runtime turns into a plain
# nil-dereference panic instead of a fault with an address (the test would
# measure QEMU, not the code); TestFileMatchesSectors, the I/O-mode matrix
# (no arm64-specific code, 50-90 s emulated; the dm-crypt cases below run the
# file path under QEMU).
crypt_tests() { # WANT(fast|generic) ENV...; "fast" subtests appear exactly when WANT=fast
	_want=$1
	shift
	run_test tools/crypt "$WORK/crypt.test" "$@" -test.skip='^(TestMmapInputTruncated|TestFileMatchesSectors)$' || return 1
	if [ "$_want" = fast ]; then
		grep -q -- '--- PASS: TestAllSpecsAgainstReference/fast' "$WORK/test.log"
	else
		! grep -q -- '/fast' "$WORK/test.log"
	fi
}

if in_root xbuild go test -c -o "$WORK/fastaes.test" ./tools/crypt/internal/fastaes >build.log 2>&1 &&
	in_root xbuild go test -c -tags purego -o "$WORK/fastaes-purego.test" ./tools/crypt/internal/fastaes >>build.log 2>&1 &&
	in_root xbuild go test -c -o "$WORK/crypt.test" ./tools/crypt >>build.log 2>&1; then
	check "fastaes tests on arm64 (qemu -cpu max, assembly)" fastaes_asm
	check "fastaes tests on arm64, GODEBUG=cpu.aes=off (generic)" fastaes_generic "$WORK/fastaes.test" GODEBUG=cpu.aes=off
	check "fastaes tests on arm64, -tags purego (generic)" fastaes_generic "$WORK/fastaes-purego.test"
	check "tools/crypt tests on arm64 (generic and assembly paths)" crypt_tests fast
	check "tools/crypt tests on arm64, GODEBUG=cpu.aes=off" crypt_tests generic GODEBUG=cpu.aes=off
else
	sed 's/^/    | /' build.log | tail -n 20
	check "arm64 test binaries build" false
fi

cat >oracle.py <<'EOF'
# OpenSSL (python3-cryptography) over every sector of CIPHER.
# usage: oracle.py SPEC KEYFILE SECTOR_SIZE IV_OFFSET PLAIN CIPHER
# IV sector = k*(ss/512) + iv_offset (dm-crypt.c, no iv_large_sectors).
import hashlib, struct, sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

spec, keyf, ss, ivoff, ptf, ctf = sys.argv[1:]
key, ss, ivoff = open(keyf, "rb").read(), int(ss), int(ivoff)
pt, ct = open(ptf, "rb").read(), open(ctf, "rb").read()
assert len(pt) == len(ct) and len(pt) % ss == 0, (len(pt), len(ct))
bad = []
for k in range(len(pt) // ss):
    s = (k * (ss // 512) + ivoff) & ((1 << 64) - 1)
    p = pt[k * ss:(k + 1) * ss]
    if spec == "aes-xts-plain64":
        mode = modes.XTS(struct.pack("<Q", s) + bytes(8))
    elif spec == "aes-cbc-plain":
        mode = modes.CBC(struct.pack("<I", s & 0xFFFFFFFF) + bytes(12))
    elif spec == "aes-cbc-essiv:sha256":
        e = Cipher(algorithms.AES(hashlib.sha256(key).digest()), modes.ECB()).encryptor()
        mode = modes.CBC(e.update(struct.pack("<Q", s) + bytes(8)))
    else:
        sys.exit("unknown spec " + spec)
    e = Cipher(algorithms.AES(key), mode).encryptor()
    if e.update(p) + e.finalize() != ct[k * ss:(k + 1) * ss]:
        bad.append(k)
print("%s key %d ss %d iv_offset %d: %d sectors, %d bad %s" % (spec, len(key), ss, ivoff, len(pt) // ss, len(bad), bad[:5]))
sys.exit(1 if bad else 0)
EOF

DC="$BIN/dm-crypt"
DCA="$WORK/dm-crypt.arm64"

# one_case SPEC KEYLEN SS IVOFF NSECTORS
one_case() {
	head -c "$2" /dev/urandom >key.bin
	head -c $(($3 * $5)) /dev/urandom >plain.img
	rm -f enc.*
	_args="--cipher $1 --key-file key.bin --sector-size $3 --iv-offset $4"
	# shellcheck disable=SC2086 # _args is a list of words
	"$DC" encrypt $_args plain.img enc.amd64 &&
		qemu-aarch64 -cpu max "$DCA" encrypt $_args plain.img enc.arm64 &&
		cmp enc.amd64 enc.arm64 &&
		"$PY" oracle.py "$1" key.bin "$3" "$4" plain.img enc.arm64 &&
		env GODEBUG=cpu.aes=off qemu-aarch64 -cpu max "$DCA" encrypt $_args plain.img enc.arm64-generic &&
		cmp enc.amd64 enc.arm64-generic &&
		qemu-aarch64 -cpu max "$DCA" decrypt $_args enc.amd64 back.arm64 &&
		cmp plain.img back.arm64
}

if ! in_root xbuild go build -o "$DCA" ./tools/cmd/dm-crypt >build.log 2>&1; then
	sed 's/^/    | /' build.log | tail -n 20
	check "dm-crypt builds for arm64" false
	exit 0
fi
check "dm-crypt arm64 = amd64 = OpenSSL: aes-xts-plain64 key 64 4K iv_offset 8" one_case aes-xts-plain64 64 4096 8 19
check "dm-crypt arm64 = amd64 = OpenSSL: aes-xts-plain64 key 32 512 iv_offset 2^32-4" one_case aes-xts-plain64 32 512 $(((1 << 32) - 4)) 19
check "dm-crypt arm64 = amd64 = OpenSSL: aes-cbc-plain key 16 512 iv_offset 2^32-4 (wraps)" one_case aes-cbc-plain 16 512 $(((1 << 32) - 4)) 19
check "dm-crypt arm64 = amd64 = OpenSSL: aes-cbc-plain key 24 2K iv_offset 0" one_case aes-cbc-plain 24 2048 0 19
check "dm-crypt arm64 = amd64 = OpenSSL: aes-cbc-plain key 32 4K iv_offset 16" one_case aes-cbc-plain 32 4096 16 19
check "dm-crypt arm64 = amd64 = OpenSSL: aes-cbc-essiv:sha256 key 32 512 iv_offset 3" one_case aes-cbc-essiv:sha256 32 512 3 19
# more than one 1 MiB work chunk (parallel workers) plus a partial one
check "dm-crypt arm64 = amd64 = OpenSSL: aes-xts-plain64 2 MiB + 3 sectors" one_case aes-xts-plain64 64 4096 0 515
