#!/usr/bin/env bash
# dm_kernel_test runner (generated from dm/private/kernel_test.sh.tpl): boots the
# kernel under QEMU with the base initramfs + the test's cpio, the stack's images
# as snapshot=on virtio drives, and passes when the guest prints the PASS marker.
set -uo pipefail
KERNEL=@@KERNEL@@
INITRAMFS=@@INITRAMFS@@
CPIO=@@CPIO@@
DRIVES=(@@DRIVES@@)
QEMU=${DM_QEMU:-@@QEMU@@}
ACCEL=${DM_ACCEL:-@@ACCEL@@}
MEM=@@MEM@@
BOOT_TIMEOUT=@@BOOT_TIMEOUT@@
APPEND=@@APPEND@@
QEMU_ARGS=(@@QEMU_ARGS@@)
# More QEMU arguments from the environment (split on blanks), e.g.
# --test_env=DM_QEMU_ARGS="-bios /usr/share/qemu/qboot.rom" to boot an ELF vmlinux fast.
if [ -n "${DM_QEMU_ARGS:-}" ]; then
	read -r -a extra <<<"$DM_QEMU_ARGS"
	QEMU_ARGS+=("${extra[@]}")
fi

fail() {
	echo "dm_kernel_test: $*" >&2
	exit 1
}
[ -n "$KERNEL" ] || KERNEL=${DM_KERNEL:-}
[ -n "$INITRAMFS" ] || INITRAMFS=${DM_INITRAMFS:-}
[ -n "$KERNEL" ] || fail "no kernel: set the kernel attribute or --test_env=DM_KERNEL=/abs/path/vmlinuz"
[ -n "$INITRAMFS" ] || fail "no base initramfs: set the initramfs attribute or --test_env=DM_INITRAMFS=/abs/path/initrd.gz"
[ -f "$KERNEL" ] || fail "kernel not found: $KERNEL"
[ -f "$INITRAMFS" ] || fail "base initramfs not found: $INITRAMFS"
command -v "$QEMU" >/dev/null || fail "QEMU not found: $QEMU (a host tool; install qemu-system-x86 or set the qemu attribute / DM_QEMU)"

T=${TEST_TMPDIR:-}
if [ -z "$T" ]; then
	T=$(mktemp -d) || exit 1
	trap 'rm -rf "$T"' EXIT
fi
export TMPDIR=$T # QEMU keeps the snapshot=on overlays there

# Base initramfs, zero padding to 4 bytes (the kernel looks for the next archive's
# header on a 4-byte boundary), then the test's uncompressed cpio.
size=$(stat -L -c %s "$INITRAMFS") || exit 1
{
	cat "$INITRAMFS"
	head -c $(((4 - size % 4) % 4)) /dev/zero
	cat "$CPIO"
} >"$T/initrd" || fail "cannot write $T/initrd"

drive_args=()
for d in "${DRIVES[@]}"; do
	p=$(readlink -f "$d") || fail "image not found: $d"
	case $p in *,*) fail "image path with ',' refused: $p" ;; esac
	drive_args+=(-drive "file=$p,format=raw,if=virtio,snapshot=on")
done
case $ACCEL in
kvm) accel=(-accel kvm -cpu host) ;;
*) accel=(-accel "$ACCEL" -cpu max) ;;
esac

echo "dm_kernel_test: $QEMU ${accel[*]} -kernel $KERNEL -initrd $INITRAMFS+$CPIO, drives: ${DRIVES[*]}"
start=$(date +%s)
timeout -k 5 "$BOOT_TIMEOUT" "$QEMU" "${accel[@]}" -m "$MEM" -smp 1 -nodefaults -display none \
	-serial stdio -no-reboot -kernel "$KERNEL" -initrd "$T/initrd" -append "$APPEND" \
	"${drive_args[@]}" "${QEMU_ARGS[@]}" </dev/null 2>&1 | tr -d '\r' | tee "$T/console.log"
qrc=${PIPESTATUS[0]}
echo "dm_kernel_test: QEMU exit $qrc after $(($(date +%s) - start)) s"
if grep -q '^DM-KERNEL-TEST: PASS' "$T/console.log"; then
	exit 0
fi
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	fail "the guest timed out after ${BOOT_TIMEOUT}s"
fi
grep -q '^DM-KERNEL-TEST:' "$T/console.log" || fail "the guest never ran /test.sh (does the base initramfs's /init run it?)"
fail "activation failed in the guest (see the console above)"
