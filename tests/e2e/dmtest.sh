#!/usr/bin/env bash
# dmtest.sh: boot a Debian kernel under QEMU (TCG) with a busybox initramfs to test
# device-mapper stacks in a real kernel. The host needs no device-mapper and no KVM.
#
# Usage:
#   dmtest.sh build
#       Installs missing host packages (only when root; otherwise prints the apt-get
#       command and fails): qemu-system-x86 busybox-static cryptsetup-bin dmsetup kmod
#       cpio keyutils. Downloads the Debian kernel package (apt-get download, works
#       unprivileged), and builds vmlinuz + initrd.gz (modules for virtio, ext4,
#       dm-crypt/-integrity/-verity and their ciphers incl. AEAD, busybox, dmsetup,
#       cryptsetup, veritysetup, integritysetup, keyctl, dash). Cached outside the
#       checkout, keyed by kernel package + this script + host tool versions; an
#       up-to-date cache costs ~0.5 s. Prints the cache directory on stdout.
#
#   dmtest.sh run [--timeout S] [--files DIR] [--append ARGS] GUEST_SCRIPT [IMG...]
#       Boots one guest (builds first if needed). IMG... become /dev/vda, /dev/vdb, ...
#       (raw, read-write: guest writes reach the files). GUEST_SCRIPT runs as
#       `sh /test.sh` (busybox ash) in /tmp after modules are loaded, with
#       DM_DISABLE_UDEV=1. --files DIR: the contents of DIR are copied into the guest
#       under /files (e.g. a static dm-activate, apply_manifest.sh, manifest.env, keys);
#       the guest sees DMTEST_FILES=/files. The console goes to stdout (and to
#       $DMTEST_LOG if set). Exit status: the guest script's, 124 on timeout, 125 if
#       the guest died without reporting (kernel panic, crash), 2 on bad usage.
#
# Guest environment: /bin/busybox (+ applets), /usr/sbin/{dmsetup,cryptsetup,
#   veritysetup,integritysetup}, /usr/bin/{keyctl,dash}, modules in /lib/modules/$(uname -r)
#   (listed in /etc/modules.load, modprobe works). `echo DMTEST-...` lines are markers.
#
# Knobs: DMTEST_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/rules_dm-e2e),
#   DMTEST_KERNEL_PKG (default: what linux-image-amd64 depends on), DMTEST_TIMEOUT
#   (default 120), DMTEST_MEM (default 512), DMTEST_SMP (default 1), DMTEST_ACCEL=kvm
#   (uses -cpu host; only where KVM really works), DMTEST_LOG=FILE (append console),
#   DMTEST_IMAGE_DIR=DIR (the directory `dmtest.sh build` printed: skip the cache check),
#   DMTEST_KERNEL=bzimage (boot vmlinuz instead of the extracted ELF vmlinux via PVH).
#
# Recipe and pitfalls: see docs in the repository (kernel-e2e notes) and tests/e2e/README.md.
set -euo pipefail
trap 'echo "dmtest.sh: internal error at line $LINENO" >&2' ERR

PROG=dmtest.sh
SELF=$(readlink -f "${BASH_SOURCE[0]}")
CACHE=${DMTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_dm-e2e}
HOST_PKGS="qemu-system-x86 busybox-static cryptsetup-bin dmsetup kmod cpio keyutils"

die() {
	echo "$PROG: $*" >&2
	exit 1
}
usage() {
	echo "$PROG: $*" >&2
	echo "usage: $PROG build | $PROG run [--timeout S] [--files DIR] [--append ARGS] GUEST_SCRIPT [IMG...]" >&2
	exit 2
}
log() { echo "$PROG: $*" >&2; }

# Modules the initramfs loads (modprobe --show-depends adds their dependencies and softdeps).
MODULES_REQUIRED="virtio_pci virtio_blk ext4 dm-mod dm-crypt dm-integrity dm-verity
xts ecb cbc essiv crc32c_generic libcrc32c af_alg algif_hash algif_skcipher
gcm ghash-generic ctr authenc authencesn seqiv echainiv algif_aead gf128mul sha512_generic"
# Accelerated variants: loaded when the kernel ships them (it does on amd64).
MODULES_OPTIONAL="aesni-intel crc32c-intel sha256-ssse3 sha512-ssse3 ghash-clmulni-intel
reed_solomon dm-bufio"
GUEST_BINS="/usr/sbin/dmsetup /usr/sbin/cryptsetup /usr/sbin/veritysetup /usr/sbin/integritysetup /usr/bin/keyctl"
GUEST_BINS_OPTIONAL="/usr/bin/dash"

need_host_pkgs() {
	local p need=""
	for p in $HOST_PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
	done
	[ -z "$need" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		die "missing host packages:$need; run: sudo apt-get install -y$need"
	fi
	[ -n "${DMTEST_NO_INSTALL:-}" ] && die "missing host packages:$need (DMTEST_NO_INSTALL set)"
	log "installing:$need"
	apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || die "apt-get update failed"
	# shellcheck disable=SC2086 # word splitting of the package list is intended
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q $need >&2 ||
		die "apt-get install$need failed"
}

kernel_pkg() {
	if [ -n "${DMTEST_KERNEL_PKG:-}" ]; then
		echo "$DMTEST_KERNEL_PKG"
		return
	fi
	local p
	p=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ && !f {print $2; f=1}')
	if [ -z "$p" ]; then
		p=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null | awk '{print $1}' | sort -V | tail -n 1)
	fi
	[ -n "$p" ] || die "cannot resolve the kernel package (apt-cache depends linux-image-amd64); set DMTEST_KERNEL_PKG"
	echo "$p"
}

# stamp: kernel package + this script + the host tools copied into the guest.
compute_stamp() {
	local pkg=$1
	{
		echo "$pkg"
		sha256sum <"$SELF"
		dpkg-query -W busybox-static cryptsetup-bin dmsetup keyutils libc6 dash 2>/dev/null || true
	} | sha256sum | cut -c1-16
}

# cache_dir: prints the build directory for the current stamp (may not exist yet).
cache_dir() {
	local pkg ver
	pkg=$(kernel_pkg)
	ver=${pkg#linux-image-}
	echo "$CACHE/$ver-$(compute_stamp "$pkg")"
}

copy_with_libs() { # copy_with_libs ROOT BIN
	local root=$1 bin=$2 lib
	install -D -m 0755 "$bin" "$root$bin"
	ldd "$bin" 2>/dev/null | awk '/=> \//{print $3} /^[[:space:]]*\/lib.*ld-linux/{print $1}' |
		while read -r lib; do
			[ -e "$root$lib" ] || { mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib"; }
		done
}

write_init() {
	cat >"$1" <<'EOF'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
export DM_DISABLE_UDEV=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run/cryptsetup /run/lock /var /root /tmp /newroot
ln -s /run /var/run 2>/dev/null
exec </dev/console >/dev/console 2>&1
K=/lib/modules/$(uname -r)
while read -r ko; do
	insmod "$K/$ko" 2>/dev/null || echo "dmtest: note: insmod ${ko##*/} failed"
done </etc/modules.load
n=0
prev=x
while [ $n -lt 50 ]; do
	cur=$(ls /sys/block 2>/dev/null | grep -c '^vd')
	[ "$cur" = "$prev" ] && [ $n -ge 2 ] && break
	prev=$cur
	n=$((n + 1))
	sleep 0.1
done
[ -d /files ] && export DMTEST_FILES=/files
echo "DMTEST-BOOTED kernel=$(uname -r) disks=$(ls /sys/block | grep ^vd | tr '\n' ' ')"
if [ -f /test.sh ]; then (cd /tmp && sh /test.sh); rc=$?; else rc=127; fi
sync
echo "DMTEST-EXIT rc=$rc"
poweroff -f
EOF
	chmod 0755 "$1"
}

# extract_vmlinux BZIMAGE OUT: the xz payload of a bzImage, if it is an ELF.
extract_vmlinux() {
	command -v xz >/dev/null || return 1
	local off
	off=$(LC_ALL=C grep -abo "$(printf '\3757zXZ')" "$1" 2>/dev/null | LC_ALL=C sed -n '1s/:.*//p')
	case $off in '' | *[!0-9]*) return 1 ;; esac
	tail -c +"$((off + 1))" "$1" | xz -dcq >"$2" 2>/dev/null
	[ "$(head -c 4 "$2" | od -An -c | tr -d ' ')" = '177ELF' ]
}

cmd_build() {
	[ $# -eq 0 ] || usage "build takes no arguments"
	need_host_pkgs
	local pkg ver dir
	pkg=$(kernel_pkg)
	ver=${pkg#linux-image-}
	dir=$(cache_dir)
	if [ -f "$dir/stamp" ] && [ -f "$dir/vmlinuz" ] && [ -f "$dir/initrd.gz" ]; then
		[ -z "${DMTEST_VERBOSE:-}" ] || log "up to date: $dir"
		echo "$dir"
		return 0
	fi
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9
	if [ -f "$dir/stamp" ]; then # built by a concurrent run while we waited
		echo "$dir"
		return 0
	fi
	local T
	T=$(mktemp -d "$CACHE/.build.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$T'" EXIT
	local deb
	deb=$(find "$CACHE" -maxdepth 1 -name "${pkg}_*.deb" | sort -V | tail -n 1)
	if [ -z "$deb" ]; then
		log "downloading $pkg"
		(cd "$T" && apt-get download -q "$pkg" >&2) || die "apt-get download $pkg failed"
		deb=$(find "$T" -maxdepth 1 -name "${pkg}_*.deb" | sed -n 1p)
		[ -n "$deb" ] || die "apt-get download $pkg produced no .deb"
		mv "$deb" "$CACHE/" && deb="$CACHE/$(basename "$deb")"
	fi
	log "extracting $(basename "$deb")"
	dpkg-deb -x "$deb" "$T/k"
	local kv
	kv=$(find "$T/k/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | sed -n 1p)
	[ -n "$kv" ] || die "no modules in $deb"
	[ "$kv" = "$ver" ] || log "note: package $pkg ships modules for $kv"
	depmod -b "$T/k" "$kv"

	local R=$T/root
	mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,newroot,root,lib/modules/"$kv"}
	# modules, in dependency order, deduplicated
	local m line ko order=$T/order
	: >"$order"
	for m in $MODULES_REQUIRED $MODULES_OPTIONAL; do
		if ! out=$(modprobe -d "$T/k" -S "$kv" --show-depends "$m" 2>&1); then
			case " $(tr '\n' ' ' <<<"$MODULES_OPTIONAL") " in
			*" $m "*) log "note: optional module $m not found" ; continue ;;
			*) die "module $m: $out" ;;
			esac
		fi
		while read -r line; do
			case "$line" in
			insmod\ *) ko=$(echo "$line" | awk '{print $2}') ;;
			*) continue ;;
			esac
			ko=${ko#"$T/k/lib/modules/$kv/"}
			grep -qxF "$ko" "$order" || echo "$ko" >>"$order"
		done <<<"$out"
	done
	while read -r ko; do
		install -D -m 0644 "$T/k/lib/modules/$kv/$ko" "$R/lib/modules/$kv/$ko"
	done <"$order"
	cp "$order" "$R/etc/modules.load"
	cp "$T/k/lib/modules/$kv/modules.order" "$T/k/lib/modules/$kv/modules.builtin" "$R/lib/modules/$kv/" 2>/dev/null || true
	cp "$T/k/lib/modules/$kv/modules.builtin.modinfo" "$R/lib/modules/$kv/" 2>/dev/null || true
	depmod -b "$R" "$kv"
	# busybox
	! ldd /bin/busybox >/dev/null 2>&1 || die "/bin/busybox is not static (install busybox-static)"
	cp /bin/busybox "$R/bin/busybox"
	local a
	for a in $(/bin/busybox --list); do
		[ "$a" = busybox ] && continue
		[ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"
	done
	ln -sf ../bin/busybox "$R/sbin/modprobe"
	# dynamic tools + libs
	local b
	for b in $GUEST_BINS; do
		[ -x "$b" ] || die "missing $b"
		copy_with_libs "$R" "$b"
	done
	for b in $GUEST_BINS_OPTIONAL; do
		[ -x "$b" ] && copy_with_libs "$R" "$b"
	done
	local gcc
	gcc=$(ldconfig -p | awk '/libgcc_s.so.1 .*x86-64/ && !f {print $NF; f=1}')
	[ -n "$gcc" ] && install -D -m 0644 "$gcc" "$R$gcc"
	write_init "$R/init"
	(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9 -n) >"$T/initrd.gz"
	local vml
	vml=$(find "$T/k/boot" -maxdepth 1 -name 'vmlinuz-*' | sed -n 1p)
	mkdir -p "$T/out"
	cp "$vml" "$T/out/vmlinuz"
	# The uncompressed ELF vmlinux boots through its PVH entry: no decompression under
	# TCG (about 10 s less per guest on a loaded 2-core machine). Optional.
	extract_vmlinux "$T/out/vmlinuz" "$T/out/vmlinux" || rm -f "$T/out/vmlinux"
	mv "$T/initrd.gz" "$T/out/initrd.gz"
	wc -l <"$order" | tr -d ' ' >"$T/out/modules.count"
	echo "$pkg $kv" >"$T/out/stamp"
	rm -rf "$dir"
	mv "$T/out" "$dir"
	# keep only this build and the .deb files
	find "$CACHE" -mindepth 1 -maxdepth 1 -type d -name "$ver-*" ! -path "$dir" -exec rm -rf {} +
	log "built $dir ($(cat "$dir/modules.count") modules)"
	echo "$dir"
}

cmd_run() {
	local timeout=${DMTEST_TIMEOUT:-120} files="" append=""
	while [ $# -gt 0 ]; do
		case "$1" in
		--timeout) [ $# -ge 2 ] || usage "--timeout needs a value"; timeout=$2; shift 2 ;;
		--timeout=*) timeout=${1#*=}; shift ;;
		--files) [ $# -ge 2 ] || usage "--files needs a directory"; files=$2; shift 2 ;;
		--files=*) files=${1#*=}; shift ;;
		--append) [ $# -ge 2 ] || usage "--append needs a value"; append=$2; shift 2 ;;
		--) shift; break ;;
		-*) usage "unknown option $1" ;;
		*) break ;;
		esac
	done
	[ $# -ge 1 ] || usage "run needs GUEST_SCRIPT"
	case "$timeout" in '' | *[!0-9]*) usage "--timeout must be a number of seconds" ;; esac
	local script=$1
	shift
	[ -f "$script" ] || usage "no such guest script: $script"
	[ -z "$files" ] || [ -d "$files" ] || usage "--files: not a directory: $files"
	local img drives=()
	[ $# -le 20 ] || usage "at most 20 images"
	for img in "$@"; do
		case "$img" in *,* | *" "* | *"	"*) usage "image path with ',' or blanks refused: $img" ;; esac
		[ -f "$img" ] || usage "no such image: $img"
		drives+=(-drive "file=$img,format=raw,if=virtio,cache=writeback")
	done
	local dir
	if [ -n "${DMTEST_IMAGE_DIR:-}" ] && [ -f "$DMTEST_IMAGE_DIR/initrd.gz" ]; then
		dir=$DMTEST_IMAGE_DIR # from an earlier `dmtest.sh build` (saves its checks per guest)
	else
		dir=$(cmd_build) || exit 1
	fi
	local kernel=$dir/vmlinuz bios=()
	if [ -f "$dir/vmlinux" ] && [ "${DMTEST_KERNEL:-}" != bzimage ]; then
		kernel=$dir/vmlinux
		[ -f /usr/share/qemu/qboot.rom ] && bios=(-bios /usr/share/qemu/qboot.rom)
	fi
	local T
	T=$(mktemp -d "${TMPDIR:-/tmp}/dmtest.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$T'" EXIT
	mkdir -p "$T/root"
	cp "$script" "$T/root/test.sh"
	if [ -n "$files" ]; then
		mkdir -p "$T/root/files"
		cp -a "$files/." "$T/root/files/"
	fi
	(cd "$T/root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1 -n) >"$T/test.cpio.gz"
	cat "$dir/initrd.gz" "$T/test.cpio.gz" >"$T/initrd.gz"
	local accel=(-accel tcg -cpu max)
	[ "${DMTEST_ACCEL:-tcg}" = kvm ] && accel=(-accel kvm -cpu host)
	local logf=/dev/null
	[ -n "${DMTEST_LOG:-}" ] && logf=$DMTEST_LOG
	{
		qrc=0
		timeout -k 5 "$timeout" qemu-system-x86_64 "${accel[@]}" -m "${DMTEST_MEM:-512}" -smp "${DMTEST_SMP:-1}" \
			-nodefaults -display none -serial stdio -no-reboot \
			"${bios[@]}" -kernel "$kernel" -initrd "$T/initrd.gz" \
			-append "console=ttyS0 panic=-1 quiet loglevel=3 $append" \
			"${drives[@]}" </dev/null 2>&1 || qrc=$?
		echo "$qrc" >"$T/qemu.rc"
	} | tr -d '\r' | tee -a "$logf" "$T/console.log.tmp"
	local qrc
	qrc=$(cat "$T/qemu.rc" 2>/dev/null || echo 125)
	if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		echo "$PROG: guest timed out after ${timeout}s" >&2
		exit 124
	fi
	local rc
	rc=$(sed -n 's/^DMTEST-EXIT rc=\([0-9][0-9]*\)$/\1/p' "$T/console.log.tmp" | tail -n 1)
	if [ -z "$rc" ]; then
		echo "$PROG: guest died without reporting (qemu exit $qrc)" >&2
		exit 125
	fi
	exit "$rc"
}

[ $# -ge 1 ] || usage "missing verb"
verb=$1
shift
case "$verb" in
build) DMTEST_VERBOSE=1 cmd_build "$@" ;;
run) cmd_run "$@" ;;
-h | --help | help) sed -n '2,/^set -euo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//' ;;
*) usage "unknown verb $verb" ;;
esac
