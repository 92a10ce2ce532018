#!/usr/bin/env bash
# initramfs/apply_manifest.sh on the host (fast, no kernel): shellcheck -s sh; dry-run
# plans under dash AND busybox ash compared with goldens for hand-written manifests
# (tests/e2e/testdata/activator/*.env) and checked on manifests that dm-compose
# generates; hostile manifest.env files rejected with one line, running nothing; apply
# mode with fake dmsetup/keyctl: tables on stdin, no key in any argv.
# Regenerate goldens: DMTEST_UPDATE_GOLDEN=1 DMTEST_ONLY=activator-sh ./tests/run_tests.sh

# "$sh" is "dash" or "busybox ash": word splitting is on purpose throughout.
# shellcheck disable=SC2086,SC2046
set -u
. "$ROOT/tests/lib.sh"

AM=$ROOT/initramfs/apply_manifest.sh
TD=$ROOT/tests/e2e/testdata/activator
cd "$WORK" || exit 1

SHELLS=()
command -v dash >/dev/null && SHELLS+=(dash)
if command -v busybox >/dev/null && busybox ash -c true 2>/dev/null; then SHELLS+=("busybox ash"); fi

if command -v shellcheck >/dev/null; then
	check shellcheck-s-sh shellcheck -s sh "$AM"
else
	skip shellcheck-s-sh "shellcheck not installed"
fi
[ ${#SHELLS[@]} -gt 0 ] || { skip activator-sh "neither dash nor busybox installed"; exit 0; }

KEY64=$(printf '%0128x' 0 | tr 0 a)

# Dry-run configurations: NAME then the environment assignments.
CONFIGS=(
	"bootstrap|DATA_DEV=/dev/vda META_DEV=/dev/vdb"
	"sealed-panic|DATA_DEV=/dev/vda META_DEV=/dev/vdb DMTOOLS_PHASE=sealed"
	"sealed-reboot-readcheck|DATA_DEV=/dev/vda META_DEV=/dev/vdb DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=reboot DMTOOLS_SEALED_READCHECK=1"
	"sealed-exit-overrides|DATA_DEV=/dev/sda2 META_DEV=/dev/sda3 DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit DMTOOLS_MOUNT_FSTYPE=squashfs DMTOOLS_NEWROOT=/sysroot DMTOOLS_MOUNT_OPTS=ro,noatime"
	"bootstrap-mountcmd-readonly|DATA_DEV=/dev/vda META_DEV=/dev/vdb DMTOOLS_READONLY=1 DMTOOLS_MOUNT_CMD=true"
	"nodevs|"
)

# plan SHELL ENVFILE CONFIG-ASSIGNMENTS: the dry-run output (stdout+stderr, exit code)
plan() {
	_sh=$1 _f=$2 _cfg=$3
	# shellcheck disable=SC2086 # the assignments are words on purpose
	# from the manifest's directory: the plan shows paths relative to it, so goldens are
	# independent of where the checkout is
	(cd "$(dirname "$_f")" && env -i PATH="$PATH" $_cfg $_sh "$AM" "$(basename "$_f")" 2>&1)
	echo "exit=$?"
}

golden_all() {
	_fail=0
	for f in "$TD"/*.env; do
		n=$(basename "$f" .env)
		for c in "${CONFIGS[@]}"; do
			cn=${c%%|*}
			cfg=${c#*|}
			g="$TD/golden/$n.$cn.plan"
			for sh in "${SHELLS[@]}"; do
				plan "$sh" "$f" "$cfg" >"out.plan"
				if [ -n "${DMTEST_UPDATE_GOLDEN:-}" ]; then
					mkdir -p "$TD/golden" && cp out.plan "$g"
				elif ! cmp -s out.plan "$g"; then
					echo "$n/$cn under $sh differs from $g:"
					diff -u "$g" out.plan | head -n 20
					_fail=1
				fi
			done
		done
	done
	return $_fail
}
NSAMPLES=$(find "$TD" -maxdepth 1 -name '*.env' | wc -l)
check "dry-run plans match goldens ($NSAMPLES samples x ${#CONFIGS[@]} configs x ${SHELLS[*]})" golden_all

# The Go activator prints the same plan (same env contract): compare it line for line,
# except the program name in the header.
same_as_go() {
	_fail=0
	for f in "$TD"/*.env; do
		for c in "${CONFIGS[@]}"; do
			cfg=${c#*|}
			plan "${SHELLS[0]}" "$f" "$cfg" | sed 's/^# apply_manifest.sh plan/# PLAN/' >sh.plan
			# shellcheck disable=SC2086
			{ (cd "$TD" && env -i PATH="$PATH" $cfg "$BIN/dm-activate" "$(basename "$f")" 2>&1); echo "exit=$?"; } | sed 's/^# dm-activate plan/# PLAN/' >go.plan
			if grep -q '^keyctl padd user ' sh.plan && ! grep -q '^keyctl padd user ' go.plan; then
				echo "note: dm-activate does not load verity root hash signatures yet ($(basename "$f"))" >&3
				continue
			fi
			if ! cmp -s sh.plan go.plan; then
				echo "$(basename "$f") ${c%%|*}:"
				diff -u sh.plan go.plan | head -n 12
				_fail=1
			fi
		done
	done
	return $_fail
}
exec 3>&1
if [ -x "$BIN/dm-activate" ]; then
	check "dm-activate dry-run plans equal apply_manifest.sh's ($NSAMPLES samples x ${#CONFIGS[@]} configs)" same_as_go
else
	skip "dm-activate plan comparison" "initramfs/cmd/dm-activate not built"
fi

# A dry-run must not touch anything even when tools are present: a fake dmsetup/keyctl
# logs every call; dry-run must leave the log empty.
mkdir -p fake
cat >fake/dmsetup <<'EOF'
#!/bin/sh
{ printf 'dmsetup'; printf ' [%s]' "$@"; printf '\n'; case "$1" in create|load) sed 's/^/  stdin: /';; esac; } >>"$FAKELOG"
case "$1" in info) exit 1 ;; esac
# inside the private mount namespace of apply_with_fakes: make /dev/mapper/NAME appear
if [ "$1" = create ] && [ -n "${FAKE_BDEV:-}" ]; then
	for n; do :; done
	ln -sf "$FAKE_BDEV" "/dev/mapper/$n"
fi
exit 0
EOF
cat >fake/keyctl <<'EOF'
#!/bin/sh
{ printf 'keyctl'; printf ' [%s]' "$@"; printf '\n'; case "$1" in padd) printf '  stdin: %s bytes\n' "$(wc -c | tr -d ' ')";; esac; } >>"$FAKELOG"
[ "$1" = padd ] && echo 123456
exit 0
EOF
cat >fake/mount <<'EOF'
#!/bin/sh
{ printf 'mount'; printf ' [%s]' "$@"; printf '\n'; } >>"$FAKELOG"
EOF
chmod +x fake/*
export FAKELOG=$WORK/fake.log

dry_touches_nothing() {
	: >"$FAKELOG"
	for sh in "${SHELLS[@]}"; do
		PATH="$WORK/fake:$PATH" CRYPT_KEY_HEX=$KEY64 DATA_DEV=/dev/vda META_DEV=/dev/vdb $sh "$AM" "$TD/verity-then-crypt.env" >/dev/null || return 1
		PATH="$WORK/fake:$PATH" DMTOOLS_PHASE=sealed DATA_DEV=/dev/vda META_DEV=/dev/vdb $sh "$AM" "$TD/integrity-then-crypt.env" >/dev/null || return 1
	done
	[ ! -s "$FAKELOG" ] || { cat "$FAKELOG"; return 1; }
}
check "dry-run runs no dmsetup/keyctl/mount" dry_touches_nothing

# Apply with fakes (nothing real is touched) in a private mount namespace with a tmpfs
# on /dev holding one block device node (root only; the host's /dev is not touched).
apply_with_fakes() {
	: >"$FAKELOG"
	PATH="$WORK/fake:$PATH" MODE=apply CRYPT_KEY_HEX=$KEY64 DATA_DEV=/dev/fakeblk DMTOOLS_MOUNT_CMD=true \
		DMTOOLS_NEWROOT="$WORK/newroot" FAKE_BDEV=/dev/fakeblk unshare -m sh -c \
		'/bin/mount -t tmpfs none /dev && mkdir /dev/mapper && mknod /dev/fakeblk b 7 0 && exec "$@"' \
		sh $1 "$AM" "$TD/verity-then-crypt.env" 2>&1 || return 1
	cat "$FAKELOG"
	# the key never appears in any argv (nor anywhere in the log), tables go on stdin
	! grep -qi "$KEY64" "$FAKELOG" || { echo "key leaked"; return 1; }
	grep -q '^keyctl \[padd\] \[logon\] \[rules_dm:dmroot\] \[@u\]$' "$FAKELOG" &&
		grep -q '^  stdin: 64 bytes$' "$FAKELOG" &&
		grep -q '^dmsetup \[create\] \[--readonly\] \[dmroot-verity\]$' "$FAKELOG" &&
		grep -q "^  stdin: 0 16384 crypt aes-xts-plain64 :64:logon:rules_dm:dmroot 0 /dev/mapper/dmroot-verity 0 1 sector_size:4096$" "$FAKELOG" &&
		grep -q '^keyctl \[unlink\] \[123456\] \[@u\]$' "$FAKELOG"
}
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
	for sh in "${SHELLS[@]}"; do
		check "apply ($sh, fake tools): keyring key via stdin, tables via stdin, no key in argv" apply_with_fakes "$sh"
	done
else
	skip "apply with fake tools" "needs root and unshare -m"
fi

# A block device for the hostile and environment cases (they must fail before using it).
BDEV=$(find /dev -maxdepth 1 -type b 2>/dev/null | LC_ALL=C sort | sed -n 1p)
BDEV=${BDEV:-/dev/null}

# Hostile manifests: each is the good sample with one line replaced.
hostile() { # NAME SED-EXPR REGEX
	sed "$2" "$TD/verity-then-crypt.env" >"hostile.$1.env"
	for sh in "${SHELLS[@]}"; do
		rm -f "$WORK/pwned"
		: >"$FAKELOG"
		expect_fail "hostile $1 ($sh)" "$3" env PATH="$WORK/fake:$PATH" MODE=apply DATA_DEV="$BDEV" CRYPT_KEY_HEX="$KEY64" $sh "$AM" "hostile.$1.env"
		if [ -e "$WORK/pwned" ] || [ -s "$FAKELOG" ]; then
			echo "  FAIL hostile $1 ($sh) ran something"
			_record FAIL "hostile $1 ran something ($sh)"
		fi
	done
}
P=$WORK/pwned
hostile cmdsubst "s|^DMTOOLS_NAME=.*|DMTOOLS_NAME='\$(touch $P)'|" 'line 6: value of DMTOOLS_NAME holds a forbidden character'
hostile cmdsubst-unquoted "s|^DMTOOLS_NAME=.*|DMTOOLS_NAME=\$(touch $P)|" 'line 6: value of DMTOOLS_NAME is not in single quotes'
hostile backtick "s|^DMTOOLS_L0_TABLE=.*|DMTOOLS_L0_TABLE='\`touch $P\`'|" 'line 18: value of DMTOOLS_L0_TABLE holds a forbidden character'
hostile semicolon "s|^DMTOOLS_NAME=.*|DMTOOLS_NAME='x'; touch $P|" 'line 6: value of DMTOOLS_NAME is not in single quotes'
hostile semicolon-in-value "s|^DMTOOLS_NAME=.*|DMTOOLS_NAME='x; touch $P'|" 'line 6: value of DMTOOLS_NAME holds a forbidden character'
hostile newline-in-value "s|^DMTOOLS_NAME=.*|DMTOOLS_NAME='x\ntouch $P'|" 'line 6: value of DMTOOLS_NAME is not in single quotes'
hostile unknown-key "s|^DMTOOLS_NAME=.*|DMTOOLS_SHELL='x'|" 'line 6: unknown key DMTOOLS_SHELL'
hostile missing-quote "s|^DMTOOLS_NAME=.*|DMTOOLS_NAME='dmroot|" 'line 6: value of DMTOOLS_NAME is not in single quotes'
hostile double-quotes "s|^DMTOOLS_NAME=.*|DMTOOLS_NAME=\"\$(touch $P)\"|" 'line 6: value of DMTOOLS_NAME is not in single quotes'
hostile export "s|^DMTOOLS_NAME=.*|export DMTOOLS_NAME='x'|" 'line 6: key does not start with DMTOOLS_'
hostile non-dmtools "s|^DMTOOLS_NAME=.*|PATH='/tmp'|" 'line 6: key does not start with DMTOOLS_'
hostile dollar-var "s|^DMTOOLS_NAME=.*|DMTOOLS_NAME='\${PATH}'|" 'line 6: value of DMTOOLS_NAME holds a forbidden character'
hostile backslash "s|^DMTOOLS_NAME=.*|DMTOOLS_NAME='a\\\\b'|" 'line 6: value of DMTOOLS_NAME holds a forbidden character'
hostile duplicate "s|^DMTOOLS_PROFILE=.*|DMTOOLS_NAME='dmroot'|" 'line 6: duplicate key DMTOOLS_NAME'
hostile cr "s|^DMTOOLS_NAME=.*|DMTOOLS_NAME='dmroot'\r|" 'line 6: value of DMTOOLS_NAME is not in single quotes'
hostile layer-out-of-range "s|^DMTOOLS_NAME=.*|DMTOOLS_NAME='dmroot'\nDMTOOLS_L5_NAME='x'|" 'DMTOOLS_L5_NAME belongs to no layer'
hostile bad-mapping-name "s|^DMTOOLS_L0_NAME=.*|DMTOOLS_L0_NAME='../evil'|" 'DMTOOLS_L0_NAME is not a valid mapping name'
hostile table-target-mismatch "s|^DMTOOLS_L0_TARGET=.*|DMTOOLS_L0_TARGET='crypt'|" "DMTOOLS_L0_TABLE does not start with '0 16384 crypt'"
hostile top-mismatch "s|^DMTOOLS_TOP=.*|DMTOOLS_TOP='other'|" 'DMTOOLS_TOP is not the name of the top layer'
hostile schema "s|^DMTOOLS_SCHEMA_VERSION=.*|DMTOOLS_SCHEMA_VERSION='2'|" 'unsupported DMTOOLS_SCHEMA_VERSION'
# Semantic checks the Go activator's manifest validation also makes (parity below).
hostile literal-key "s|@KEY@|$KEY64|" 'DMTOOLS_L1_TABLE must hold @KEY@ in place of the key'
hostile root-hash-mismatch "s|^DMTOOLS_L0_VERITY_ROOT_HASH=.*|DMTOOLS_L0_VERITY_ROOT_HASH='$(printf '%064d' 0)'|" 'VERITY_ROOT_HASH differs from the root hash in the table'
hostile unknown-stack "s|^DMTOOLS_STACK=.*|DMTOOLS_STACK='verity-then-magic'|" 'unknown DMTOOLS_STACK'
hostile duplicate-names "s|^DMTOOLS_L0_NAME=.*|DMTOOLS_L0_NAME='dmroot'|" 'DMTOOLS_L1_NAME repeats the name of a lower layer'

# Environment errors: one line, nothing run.
envfail() { # NAME REGEX ENV...
	_n=$1 _re=$2
	shift 2
	for sh in "${SHELLS[@]}"; do
		: >"$FAKELOG"
		expect_fail "$_n ($sh)" "$_re" env PATH="$WORK/fake:$PATH" "$@" $sh "$AM" "$TD/verity-then-crypt.env"
		[ ! -s "$FAKELOG" ] || { echo "  FAIL $_n ran something"; _record FAIL "$_n ran something ($sh)"; }
	done
}
envfail "key size mismatch" 'crypt key is 32 bytes, layer 1 expects 64' MODE=apply DATA_DEV="$BDEV" CRYPT_KEY_HEX="${KEY64:0:64}"
envfail "key size mismatch (dry-run)" 'crypt key is 32 bytes, layer 1 expects 64' DATA_DEV=/dev/vda CRYPT_KEY_HEX="${KEY64:0:64}"
envfail "key not hex" 'CRYPT_KEY_HEX is not hex' DATA_DEV=/dev/vda CRYPT_KEY_HEX=zz
envfail "missing key in apply" 'layer 1 \(crypt\) needs CRYPT_KEY_HEX or CRYPT_KEY_BIN' MODE=apply DATA_DEV="$BDEV"
envfail "missing DATA_DEV in apply" 'DATA_DEV is not set' MODE=apply CRYPT_KEY_HEX="$KEY64"
envfail "DATA_DEV not a block device" 'is not a block device' MODE=apply DATA_DEV=/etc/passwd CRYPT_KEY_HEX="$KEY64"
envfail "DATA_DEV with a blank" 'DATA_DEV holds a character not allowed' DATA_DEV='/dev/vda 0 x'
envfail "bad MODE" 'MODE must be dry-run or apply' MODE=yes
envfail "bad fail action" 'DMTOOLS_FAIL_ACTION must be' DMTOOLS_FAIL_ACTION=ignore
envfail "bad phase" 'DMTOOLS_PHASE must be' DMTOOLS_PHASE=late
envfail "mount options with a blank" 'DMTOOLS_MOUNT_OPTS must be comma-separated' DATA_DEV=/dev/vda 'DMTOOLS_MOUNT_OPTS=ro noatime'
envfail "relative DMTOOLS_NEWROOT" 'DMTOOLS_NEWROOT must be an absolute path' DATA_DEV=/dev/vda DMTOOLS_NEWROOT=newroot
envfail "DMTOOLS_NEWROOT with .." 'DMTOOLS_NEWROOT must be an absolute path' DATA_DEV=/dev/vda DMTOOLS_NEWROOT=/mnt/../etc
envfail "DMTOOLS_MOUNT_FSTYPE with ;" 'DMTOOLS_MOUNT_FSTYPE must be a filesystem type name' DATA_DEV=/dev/vda 'DMTOOLS_MOUNT_FSTYPE=ext4;x'
envfail "CRYPT_KEY_HEX with a leading blank" 'CRYPT_KEY_HEX is not hex' DATA_DEV=/dev/vda "CRYPT_KEY_HEX= $KEY64"

# Parity: dm-activate rejects every hostile manifest and bad environment above too
# (its messages differ: it validates the whole manifest).
go_rejects_all() {
	[ -x "$BIN/dm-activate" ] || return 0
	_fail=0
	for f in hostile.*.env; do
		if env -i PATH="$PATH" DATA_DEV=/dev/vda CRYPT_KEY_HEX="$KEY64" "$BIN/dm-activate" "$f" >/dev/null 2>&1; then
			echo "dm-activate accepted $f"
			_fail=1
		fi
	done
	for e in 'DMTOOLS_MOUNT_OPTS=ro noatime' DMTOOLS_NEWROOT=newroot DMTOOLS_NEWROOT=/mnt/../etc 'DMTOOLS_MOUNT_FSTYPE=ext4;x' "CRYPT_KEY_HEX= $KEY64"; do
		if env -i PATH="$PATH" DATA_DEV=/dev/vda CRYPT_KEY_HEX="$KEY64" "$e" "$BIN/dm-activate" "$TD/verity-then-crypt.env" >/dev/null 2>&1; then
			echo "dm-activate accepted $e"
			_fail=1
		fi
	done
	return $_fail
}
check "dm-activate rejects the same hostile manifests and environments" go_rejects_all
# A sealed apply fails closed: a rejected manifest takes the fail action (exit here).
sealed_reject() {
	: >"$FAKELOG"
	sed "s|^DMTOOLS_NAME=.*|DMTOOLS_NAME='\$(touch $WORK/pwned)'|" "$TD/verity-then-crypt.env" >sealed-hostile.env
	rm -f "$WORK/pwned"
	env PATH="$WORK/fake:$PATH" MODE=apply DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit DATA_DEV="$BDEV" \
		CRYPT_KEY_HEX="$KEY64" $1 "$AM" sealed-hostile.env 2>err.txt
	rc=$?
	cat err.txt
	[ $rc = 1 ] && [ ! -e "$WORK/pwned" ] && [ ! -s "$FAKELOG" ] &&
		grep -q 'value of DMTOOLS_NAME holds a forbidden character' err.txt &&
		grep -q 'sealed boot failed; fail action: exit' err.txt
}
for sh in "${SHELLS[@]}"; do
	check "sealed apply fails closed on a hostile manifest ($sh)" sealed_reject "$sh"
done
# An unresolved placeholder (@LOWER@ in layer 0) in a sealed apply: the fail
# action too, and a rescue shell never inherits the key variables.
sealed_placeholder() {
	: >"$FAKELOG"
	sed "s|^\(DMTOOLS_L0_TABLE='[^']*\)@DATA@|\1@LOWER@|" "$TD/verity-then-crypt.env" >sealed-ph.env
	grep -q "^DMTOOLS_L0_TABLE='.*@LOWER@" sealed-ph.env || return 1
	env PATH="$WORK/fake:$PATH" MODE=apply DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit DATA_DEV="$BDEV" \
		CRYPT_KEY_HEX="$KEY64" $1 "$AM" sealed-ph.env 2>err.txt
	rc=$?
	cat err.txt
	[ $rc = 1 ] && [ ! -s "$FAKELOG" ] &&
		grep -q 'unresolved placeholder' err.txt &&
		grep -q 'sealed boot failed; fail action: exit' err.txt || return 1
	# shell fail action: the rescue shell (here: sh reading "env" on stdin) sees no key
	echo env | env PATH="$WORK/fake:$PATH" MODE=apply DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=shell DATA_DEV="$BDEV" \
		CRYPT_KEY_HEX="$KEY64" $1 "$AM" sealed-ph.env >shell-env.txt 2>/dev/null
	grep -q PATH= shell-env.txt && ! grep -q KEY_HEX shell-env.txt
}
for sh in "${SHELLS[@]}"; do
	check "sealed apply fails closed on an unresolved placeholder ($sh)" sealed_placeholder "$sh"
done

for sh in "${SHELLS[@]}"; do
	expect_fail "no argument ($sh)" 'expected exactly one argument' $sh "$AM"
	expect_fail "missing manifest ($sh)" 'cannot read manifest' $sh "$AM" "$WORK/nope.env"
done
hexkeyfile() {
	printf '%s' "$KEY64" | xxd -r -p >key.bin
	CRYPT_KEY_BIN=$WORK/key.bin DATA_DEV=/dev/vda ${SHELLS[0]} "$AM" "$TD/crypt-only.env" >/dev/null
}
check "CRYPT_KEY_BIN of the right size accepted" hexkeyfile

show_fail() {
	cat "$1"
	return 1
}

# Manifests generated by dm-compose (when it exists): the plan parses under every shell,
# the shells agree, and each layer gets one dmsetup create.
if [ -x "$BIN/dm-compose" ]; then
	mkdir -p gen/src
	echo "rules_dm activator test" >gen/src/hello.txt
	if mkfs.ext4 -q -F -b 4096 -d gen/src gen/fs.img 8M >/dev/null 2>&1 &&
		head -c 64 /dev/zero | tr '\0' 'k' >gen/key.bin; then
		for stack in crypt-only integrity-only integrity-then-crypt crypt-then-integrity verity-only verity-then-crypt crypt-then-verity; do
			if ! "$BIN/dm-compose" build --in gen/fs.img --outdir "gen/$stack" --stack "$stack" \
				$(case $stack in *crypt*) echo --key-file gen/key.bin ;; esac) >"gen/$stack.log" 2>&1; then
				if grep -qi 'not yet supported\|not supported' "gen/$stack.log"; then
					skip "dm-compose $stack dry-run" "$(head -n 1 "gen/$stack.log")"
				else
					check "dm-compose build $stack" show_fail "gen/$stack.log"
				fi
				continue
			fi
			gen_plan() {
				_ref=""
				for sh in "${SHELLS[@]}"; do
					out=$(CRYPT_KEY_BIN=$WORK/gen/key.bin DATA_DEV=/dev/vda META_DEV=/dev/vdb DMTOOLS_PHASE=sealed $sh "$AM" "gen/$1/manifest.env") || return 1
					[ -z "$_ref" ] || [ "$out" = "$_ref" ] || { echo "shells disagree"; return 1; }
					_ref=$out
				done
				echo "$_ref"
				want=$(sed -n "s/^DMTOOLS_LAYERS='\(.*\)'$/\1/p" "gen/$1/manifest.env")
				[ "$(echo "$_ref" | grep -c '^dmsetup create')" = "$want" ] &&
					echo "$_ref" | grep -q "^mount -t ext4 -o ro[a-z,=]* /dev/mapper/dmroot /newroot$"
			}
			check "dm-compose $stack manifest.env: dry-run plan (${SHELLS[*]})" gen_plan "$stack"
		done
	else
		skip "dm-compose generated manifests" "mkfs.ext4 -d unavailable"
	fi
else
	skip "dm-compose generated manifests" "tools/cmd/dm-compose not built yet"
fi
