#!/bin/sh
# Guest side of tests/suites/60-e2e.sh: runs inside the dmtest.sh guest (busybox ash) as
# /test.sh. Reads /files/config.sh (written by the host suite), runs every scenario for
# one stack with both activators, and prints one line per scenario:
#   DMTEST-RESULT PASS|FAIL <scenario> [detail]
# The last scenario may be a deliberate kernel panic or reboot (sealed phase,
# FAIL_ACTION=panic|reboot): it prints DMTEST-EXPECT-DEATH <action> <scenario> first; the
# guest then dies (dmtest.sh exit 125).
#
# config.sh sets: STACK NLAYERS INPUT_SHA HELLO_SHA HAS_CRYPT KEY_HEX HAS_IKEY IKEY_HEX ACTS
# SET_<name> (data [meta] device), TAMPER_SETS, PANIC_SET, PANIC_ACT, PANIC_WRONG_KEY,
# PANIC_ACTION. Keys: /files/{,wrong-}key.bin (crypt), /files/{,wrong-}ikey.bin (hmac).

# The mount commands below are run by the activators with sh -c (their $ are for later);
# config.sh sets the upper-case variables.
# shellcheck disable=SC2016,SC2089,SC2090,SC2153
F=${DMTEST_FILES:-/files}
# shellcheck source=/dev/null
. "$F/config.sh"
MF=$F/manifest.env
NEWROOT=/newroot
FAILS=0

res() { # res PASS|FAIL NAME DETAIL (the guest uptime in [] for profiling)
	read -r _up _ </proc/uptime
	echo "DMTEST-RESULT $1 $2${3:+ $3} [t=$_up]"
	[ "$1" = PASS ] || FAILS=$((FAILS + 1))
}

# devs SET: sets DATA_DEV and META_DEV from SET_<name>.
devs() {
	eval "set -- \$SET_$1"
	DATA_DEV=$1
	META_DEV=${2:-}
	export DATA_DEV META_DEV
}

# act ACT: run activator ACT (sh or go) on the manifest with the current environment
# ($MF: manifest.env; the Go activator reads manifest.json when JSON=1).
act() {
	case $1 in
	sh) sh "$F/apply_manifest.sh" "$MF" ;;
	go)
		if [ "${JSON:-0}" = 1 ]; then
			"$F/dm-activate" "$F/manifest.json"
		else
			"$F/dm-activate" "$MF"
		fi
		;;
	esac
}

no_mappings() { [ "$(dmsetup ls 2>/dev/null)" = "No devices found" ]; }

teardown() {
	umount "$NEWROOT" 2>/dev/null
	dmsetup remove_all >/dev/null 2>&1
	for id in $(keyctl rlist @u 2>/dev/null); do keyctl unlink "$id" @u >/dev/null 2>&1; done
	no_mappings || { echo "teardown: mappings left:"; dmsetup ls; }
}

top_sha() { sha256sum /dev/mapper/"$TOP" | cut -d' ' -f1; }
hello_sha() { sha256sum "$1/hello.txt" 2>/dev/null | cut -d' ' -f1; }

clean_env() {
	unset MODE DMTOOLS_PHASE DMTOOLS_FAIL_ACTION DMTOOLS_MOUNT_CMD DMTOOLS_SEALED_READCHECK \
		CRYPT_KEY_HEX CRYPT_KEY_BIN INTEGRITY_KEY_HEX INTEGRITY_KEY_BIN DMTOOLS_NEWROOT DMTOOLS_MOUNT_OPTS DMTOOLS_MOUNT_FSTYPE
}
# key_bin [wrong]: key files (the wrong ones with an argument) for the crypt and hmac
# integrity layers the stack has; key_hex: the same keys as hex.
key_bin() {
	if [ "$HAS_CRYPT" = 1 ]; then export CRYPT_KEY_BIN="$F/${1:+wrong-}key.bin"; fi
	if [ "$HAS_IKEY" = 1 ]; then export INTEGRITY_KEY_BIN="$F/${1:+wrong-}ikey.bin"; fi
}
key_hex() {
	if [ "$HAS_CRYPT" = 1 ]; then export CRYPT_KEY_HEX="$KEY_HEX"; fi
	if [ "$HAS_IKEY" = 1 ]; then export INTEGRITY_KEY_HEX="$IKEY_HEX"; fi
}

TOP=dmroot
echo "DMTEST-STACK $STACK layers=$NLAYERS acts='$ACTS'"

for A in $ACTS; do
	# 1. dry-run: prints one dmsetup create per layer and touches nothing.
	clean_env
	devs good
	key_bin
	out=$(act "$A" 2>&1)
	rc=$?
	n=$(echo "$out" | grep -c '^dmsetup create')
	if [ $rc = 0 ] && [ "$n" = "$NLAYERS" ] && no_mappings; then
		res PASS "$A/dry-run" "$n creates"
	else
		res FAIL "$A/dry-run" "rc=$rc creates=$n"
		echo "$out"
	fi

	# 2. bootstrap apply with a hex key, mounted by DMTOOLS_MOUNT_CMD (which records its
	#    environment: no key may reach it).
	clean_env
	devs good
	key_hex
	rm -f /tmp/mc.env
	export MODE=apply DMTOOLS_MOUNT_CMD='env >/tmp/mc.env; mount -t ext4 -o ro "$DMTOOLS_TOP_DEV" "$DMTOOLS_NEWROOT"'
	if act "$A"; then
		if [ "$HAS_CRYPT$HAS_IKEY" != 00 ]; then
			if grep -q '_KEY_HEX=' /tmp/mc.env; then
				res FAIL "$A/no-key-in-child-env" "$(grep -o '^[A-Z_]*KEY_HEX' /tmp/mc.env | tr '\n' ' ')"
			else
				res PASS "$A/no-key-in-child-env"
			fi
		fi
		h=$(hello_sha $NEWROOT)
		if [ "$h" = "$HELLO_SHA" ]; then res PASS "$A/bootstrap-mount-read"; else res FAIL "$A/bootstrap-mount-read" "hello.txt sha $h"; fi
		umount $NEWROOT
		s=$(top_sha)
		if [ "$s" = "$INPUT_SHA" ]; then res PASS "$A/bootstrap-top-sha256"; else res FAIL "$A/bootstrap-top-sha256" "$s"; fi
		if [ "$HAS_CRYPT" = 1 ]; then
			t=$(dmsetup table --showkeys | grep ' crypt ')
			case $t in
			*" :"[0-9]*":logon:rules_dm:"*) res PASS "$A/keyring-key-in-table" ;;
			*) res FAIL "$A/keyring-key-in-table" "$t" ;;
			esac
			case $t in *"$KEY_HEX"*) res FAIL "$A/no-hex-key-in-table" ;; esac
			if keyctl show @u 2>/dev/null | grep -q 'logon: rules_dm'; then
				echo "note: $A left the logon key in @u"
				[ "$A" = sh ] && res FAIL "$A/key-unlinked-after-activation"
			fi
		fi
		# 3. idempotent: the same activation again succeeds and keeps the mappings.
		unset DMTOOLS_MOUNT_CMD
		if act "$A" && [ "$(dmsetup ls | grep -c .)" = "$NLAYERS" ]; then
			res PASS "$A/idempotent-rerun"
		else
			res FAIL "$A/idempotent-rerun"
			dmsetup ls
		fi
	else
		res FAIL "$A/bootstrap-apply" "rc=$?"
	fi
	teardown

	# 4. sealed, FAIL_ACTION=exit, key file, read check: mounts read-only at /newroot.
	#    (The Go activator reads manifest.json here.)
	clean_env
	devs good
	key_bin
	export MODE=apply DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit DMTOOLS_SEALED_READCHECK=1
	JSON=1
	if act "$A"; then
		h=$(hello_sha $NEWROOT)
		ro=$(grep " $NEWROOT " /proc/mounts | cut -d' ' -f4)
		case $ro in ro*) ;; *) h="mounted $ro" ;; esac
		if [ "$h" = "$HELLO_SHA" ]; then res PASS "$A/sealed-good" "$ro"; else res FAIL "$A/sealed-good" "$h"; fi
	else
		res FAIL "$A/sealed-good" "rc=$?"
	fi
	JSON=0
	teardown

	# 4b. a foreign mapping holds the top name: activation fails, removes what it made
	#     (top-down), and leaves the foreign mapping alone.
	clean_env
	devs good
	key_bin
	echo "0 8 error" | dmsetup create dmroot
	export MODE=apply
	act "$A" 2>fm.err
	rc=$?
	left=$(dmsetup ls | cut -f1 | tr '\n' ' ')
	if [ $rc != 0 ] && grep -q 'already exists with a different table\|exists' fm.err && [ "$left" = "dmroot " ]; then
		res PASS "$A/foreign-mapping-refused" "$(tail -n 1 fm.err)"
	else
		res FAIL "$A/foreign-mapping-refused" "rc=$rc left: $left"
		cat fm.err
	fi
	teardown

	# 4c. a sealed apply of a hostile manifest fails closed (FAIL_ACTION=exit) and runs nothing.
	clean_env
	devs good
	key_bin
	sed "s/^DMTOOLS_NAME=.*/DMTOOLS_NAME='\$(touch \/tmp\/pwned)'/" "$MF" >/tmp/hostile.env
	export MODE=apply DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit
	case $A in
	sh) sh "$F/apply_manifest.sh" /tmp/hostile.env 2>hm.err ;;
	go) "$F/dm-activate" /tmp/hostile.env 2>hm.err ;;
	esac
	rc=$?
	if [ $rc = 1 ] && [ ! -e /tmp/pwned ] && no_mappings && grep -q 'sealed boot failed' hm.err; then
		res PASS "$A/sealed-hostile-manifest-fails-closed" "$(head -n 1 hm.err)"
	else
		res FAIL "$A/sealed-hostile-manifest-fails-closed" "rc=$rc"
		cat hm.err
	fi
	teardown

	# 5. wrong key: the mount (or read check) fails -> fail action exit, nothing left mapped.
	if [ "$HAS_CRYPT$HAS_IKEY" != 00 ]; then
		clean_env
		devs good
		key_bin wrong
		export MODE=apply DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit
		act "$A" 2>wk.err
		rc=$?
		if [ $rc != 0 ] && grep -q 'sealed boot failed' wk.err && no_mappings && ! grep -qs " $NEWROOT " /proc/mounts; then
			res PASS "$A/sealed-wrong-key-exit" "rc=$rc: $(tail -n 2 wk.err | tr '\n' ' ')"
		else
			res FAIL "$A/sealed-wrong-key-exit" "rc=$rc, mappings left: $(dmsetup ls | tr '\n' ' ')"
			cat wk.err
		fi
		teardown
	fi

	# 6. tampered copies: bootstrap reports the error (and does not panic, although
	#    FAIL_ACTION defaults to panic); sealed with FAIL_ACTION=exit exits non-zero.
	for T in $TAMPER_SETS; do
		clean_env
		devs "$T"
		key_bin
		export MODE=apply
		export DMTOOLS_MOUNT_CMD='mount -t ext4 -o ro "$DMTOOLS_TOP_DEV" "$DMTOOLS_NEWROOT" && cat "$DMTOOLS_NEWROOT/hello.txt" >/dev/null && dd if="$DMTOOLS_TOP_DEV" of=/dev/null bs=1M 2>/dev/null'
		act "$A" 2>bt.err
		rc=$?
		# the error must come from reading (the mount command), not from a rejection
		if [ $rc != 0 ] && grep -q 'DMTOOLS_MOUNT_CMD failed' bt.err && no_mappings; then
			res PASS "$A/bootstrap-$T-reports-error" "rc=$rc: $(tail -n 1 bt.err)"
		else
			res FAIL "$A/bootstrap-$T-reports-error" "rc=$rc, mappings left: $(dmsetup ls | tr '\n' ' ')"
			cat bt.err
		fi
		teardown

		clean_env
		devs "$T"
		key_hex
		export MODE=apply DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit DMTOOLS_SEALED_READCHECK=1
		act "$A" 2>se.err
		rc=$?
		if [ $rc != 0 ] && grep -q 'sealed boot failed' se.err && no_mappings; then
			res PASS "$A/sealed-$T-exit" "rc=$rc: $(tail -n 1 se.err)"
		else
			res FAIL "$A/sealed-$T-exit" "rc=$rc, mappings left: $(dmsetup ls | tr '\n' ' ')"
			cat se.err
		fi
		teardown
	done

	# 7. FAIL_ACTION=shell: the activator execs sh, which reads its commands from stdin.
	for T in $TAMPER_SETS; do
		clean_env
		devs "$T"
		key_bin
		export MODE=apply DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=shell DMTOOLS_SEALED_READCHECK=1
		out=$(echo 'echo DMTEST-IN-RESCUE-SHELL; exit 7' | act "$A" 2>&1)
		rc=$?
		case $out in
		*DMTEST-IN-RESCUE-SHELL*) ok=$rc ;;
		*) ok="no shell: $(echo "$out" | tail -n 1)" ;;
		esac
		if [ "$ok" = 7 ] && no_mappings; then
			res PASS "$A/sealed-$T-shell" "rc=$rc"
		else
			res FAIL "$A/sealed-$T-shell" "rc=$rc $ok"
		fi
		teardown
		break # one tampered set is enough
	done
done

echo "DMTEST-DMESG-BEGIN"
dmesg | grep -i 'device-mapper\|verity\|integrity\|crypt\|EXT4' | tail -n 20
echo "DMTEST-DMESG-END"

# 8. last: the sealed phase with FAIL_ACTION=panic (or reboot) must take the machine
#    down; the host sees QEMU exit (-no-reboot) and the kernel's message on the console.
if [ -n "${PANIC_SET:-}" ]; then
	clean_env
	devs "$PANIC_SET"
	key_bin ${PANIC_WRONG_KEY:+wrong}
	PA=${PANIC_ACTION:-panic}
	export MODE=apply DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION="$PA" DMTOOLS_SEALED_READCHECK=1
	echo "DMTEST-EXPECT-DEATH $PA $PANIC_ACT/sealed-$PANIC_SET-$PA"
	sync
	act "$PANIC_ACT"
	res FAIL "$PANIC_ACT/sealed-$PANIC_SET-$PA" "activator returned $?"
fi
[ $FAILS = 0 ]
