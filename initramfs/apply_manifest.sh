#!/bin/sh
# apply_manifest.sh MANIFEST_ENV: activate a rules_dm device-mapper stack in an initramfs.
#
# POSIX sh (busybox ash, dash). Needs dmsetup, and keyctl for crypt layers (keyutils).
# The manifest.env is read with a strict KEY='value' parser: it is never eval'ed, sourced
# or '.'-included; an unknown key, a bad character or a malformed line rejects the whole
# file before anything runs. See initramfs/README.md and spec/manifest.md.
#
# Environment (the target's environment overrides the manifest's mount defaults):
#   MODE=dry-run|apply            dry-run (default) prints the plan and touches nothing
#   DATA_DEV, META_DEV            block devices (META_DEV when DMTOOLS_NEEDS_META=1)
#   CRYPT_KEY_HEX | CRYPT_KEY_BIN crypt key (hex, or a file of raw bytes), loaded with
#                                 `keyctl padd logon <desc> @u` and referenced as
#                                 :<size>:logon:<desc> (hex in the stdin table without keyctl)
#   INTEGRITY_KEY_HEX | INTEGRITY_KEY_BIN   hmac dm-integrity key
#   DMTOOLS_PHASE=bootstrap|sealed          default bootstrap
#   DMTOOLS_FAIL_ACTION=panic|reboot|shell|exit   sealed phase only; default panic
#   DMTOOLS_MOUNT_CMD             run with `sh -c` after activation instead of the default
#                                 mount (bootstrap mounts only when it is set); it sees
#                                 DMTOOLS_TOP_DEV and DMTOOLS_NEWROOT
#   DMTOOLS_NEWROOT (default /newroot), DMTOOLS_MOUNT_FSTYPE, DMTOOLS_MOUNT_OPTS
#                                 (sealed default: ext4 ro,errors=panic, others ro; sealed
#                                 ext4 options from the manifest get errors=panic added
#                                 unless they set errors=)
#   DMTOOLS_SEALED_READCHECK=1    sealed: read the whole top device before mounting
#   DMTOOLS_READONLY=1            create every layer read-only (verity and the layers
#                                 above it always are)
# Exit: 0 ok, 1 failure (bootstrap, or sealed with FAIL_ACTION=exit), 2 usage (argument
# count, MODE, DMTOOLS_PHASE, DMTOOLS_FAIL_ACTION). A bad manifest or environment is
# rejected before anything runs: exit 1, except with MODE=apply in the sealed phase,
# which fails closed and takes the fail action.

LC_ALL=C
export LC_ALL
PROG=apply_manifest.sh

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
usage() {
	say "$* (usage: [MODE=dry-run|apply] $PROG MANIFEST_ENV)"
	exit 2
}
# reject: a bad manifest or environment, found before anything ran: exit 1, except that
# a sealed apply fails closed and takes the fail action.
reject() {
	say "$*"
	fail_closed
}

# fail_closed: after a failure already reported, a sealed apply takes the fail
# action; everything else exits 1.
fail_closed() {
	if [ "$MODE" = apply ] && [ "$PHASE" = sealed ]; then
		take_fail_action
	fi
	exit 1
}

# take_fail_action: what a sealed boot does on any failure (DMTOOLS_FAIL_ACTION).
take_fail_action() {
	say "sealed boot failed; fail action: $FAIL_ACTION"
	case $FAIL_ACTION in
	panic)
		sync
		echo 1 >/proc/sys/kernel/sysrq 2>/dev/null
		echo c >/proc/sysrq-trigger
		sleep 5
		say "panic failed (is /proc mounted?); trying reboot -f"
		reboot -f
		sleep 5
		exit 1
		;;
	reboot)
		sync
		reboot -f
		sleep 5
		exit 1
		;;
	shell)
		# reject can run before the key variables are unset: the shell must not see them
		unset CRYPT_KEY_HEX CRYPT_KEY_BIN INTEGRITY_KEY_HEX INTEGRITY_KEY_BIN
		exec sh
		;;
	*) exit 1 ;;
	esac
}

# ---------------------------------------------------------------- arguments and mode

[ $# -eq 1 ] || usage "expected exactly one argument, the manifest.env path"
MF_PATH=$1
MODE=${MODE:-dry-run}
case $MODE in dry-run | apply) ;; *) usage "MODE must be dry-run or apply, not '$MODE'" ;; esac
PHASE=${DMTOOLS_PHASE:-bootstrap}
case $PHASE in bootstrap | sealed) ;; *) usage "DMTOOLS_PHASE must be bootstrap or sealed" ;; esac
FAIL_ACTION=${DMTOOLS_FAIL_ACTION:-panic}
case $FAIL_ACTION in panic | reboot | shell | exit) ;; *) usage "DMTOOLS_FAIL_ACTION must be panic, reboot, shell or exit" ;; esac
{ [ -f "$MF_PATH" ] && [ -r "$MF_PATH" ]; } || reject "cannot read manifest $MF_PATH"

# Mount overrides from the environment, captured before the manifest is read.
ENV_FSTYPE=${DMTOOLS_MOUNT_FSTYPE:-}
ENV_NEWROOT=${DMTOOLS_NEWROOT:-}
ENV_OPTS=${DMTOOLS_MOUNT_OPTS:-}

# ---------------------------------------------------------------- strict parser

NL='
'
MF=$NL   # validated "KEY=value" lines, each after a newline
MF_KEYS=" " # known keys seen, for duplicate detection

known_key() {
	case $1 in
	DMTOOLS_SCHEMA_VERSION | DMTOOLS_STACK | DMTOOLS_PROFILE | DMTOOLS_NAME | \
		DMTOOLS_INPUT_SIZE | DMTOOLS_INPUT_SHA256 | \
		DMTOOLS_DATA_PATH | DMTOOLS_DATA_SIZE | DMTOOLS_DATA_SHA256 | \
		DMTOOLS_META_PATH | DMTOOLS_META_SIZE | DMTOOLS_META_SHA256 | \
		DMTOOLS_NEEDS_META | DMTOOLS_LAYERS | DMTOOLS_TOP | \
		DMTOOLS_MOUNT_FSTYPE | DMTOOLS_NEWROOT | DMTOOLS_MOUNT_OPTS) return 0 ;;
	DMTOOLS_L[0-7]_TARGET | DMTOOLS_L[0-7]_NAME | DMTOOLS_L[0-7]_SECTORS | DMTOOLS_L[0-7]_TABLE | \
		DMTOOLS_L[0-7]_VERITY_OPTS | DMTOOLS_L[0-7]_VERITY_ROOT_HASH | \
		DMTOOLS_L[0-7]_VERITY_SIG_PATH | DMTOOLS_L[0-7]_VERITY_SIG_DESC | \
		DMTOOLS_L[0-7]_CRYPT_KEY_SIZE | DMTOOLS_L[0-7]_CRYPT_KEY_DESC | \
		DMTOOLS_L[0-7]_INTEGRITY_KEY_SIZE) return 0 ;;
	esac
	return 1
}

# The hostile line is never echoed: only its number and what is wrong with it.
mf_n=0
mf_bytes=$(wc -c <"$MF_PATH") || reject "cannot read manifest $MF_PATH"
[ "$mf_bytes" -le 65536 ] || reject "manifest $MF_PATH: larger than 65536 bytes"
while IFS= read -r mf_line || [ -n "$mf_line" ]; do
	mf_n=$((mf_n + 1))
	case $mf_line in
	'' | '#'*) continue ;;
	esac
	case $mf_line in
	*=*) ;;
	*) reject "manifest line $mf_n: not a KEY='value' line" ;;
	esac
	mf_k=${mf_line%%=*}
	mf_v=${mf_line#*=}
	case $mf_k in
	DMTOOLS_*) ;;
	*) reject "manifest line $mf_n: key does not start with DMTOOLS_ (no spaces, no export)" ;;
	esac
	case $mf_k in
	*[!A-Z0-9_]*) reject "manifest line $mf_n: key is not DMTOOLS_[A-Z0-9_]+" ;;
	esac
	case $mf_v in
	\'*\') mf_v=${mf_v#\'} && mf_v=${mf_v%\'} ;;
	*) reject "manifest line $mf_n: value of $mf_k is not in single quotes (or the quote is unterminated)" ;;
	esac
	case $mf_v in
	*\'*) reject "manifest line $mf_n: value of $mf_k holds a quote" ;;
	*[!A-Za-z0-9\ _.,:/@=+%\(\)-]*) reject "manifest line $mf_n: value of $mf_k holds a forbidden character" ;;
	esac
	known_key "$mf_k" || reject "manifest line $mf_n: unknown key $mf_k"
	case $MF_KEYS in *" $mf_k "*) reject "manifest line $mf_n: duplicate key $mf_k" ;; esac
	MF_KEYS="$MF_KEYS$mf_k "
	MF="$MF$mf_k=$mf_v$NL"
done <"$MF_PATH"
[ "$MF" != "$NL" ] || reject "manifest $MF_PATH: no KEY='value' lines"

# mf KEY: sets V to the value of KEY ("" when absent), without a fork (every $(...) is
# a fork: slow on small boards and under emulation). mf_has KEY: present?
mf() {
	V=""
	case $MF in *"$NL$1="*)
		V=${MF#*"$NL$1="}
		V=${V%%"$NL"*}
		;;
	esac
}
mf_has() { case $MF_KEYS in *" $1 "*) return 0 ;; esac; return 1; }
mf_req() { # mf_req KEY: V=value, or reject when missing
	mf_has "$1" || reject "manifest: missing $1"
	mf "$1"
}
is_num() { case $1 in '' | *[!0-9]*) return 1 ;; esac; return 0; }
is_name() {
	case $1 in '' | [!A-Za-z0-9]* | *[!A-Za-z0-9_.+-]*) return 1 ;; esac
	[ ${#1} -le 64 ]
}

# ---------------------------------------------------------------- semantic checks

mf_req DMTOOLS_SCHEMA_VERSION
SV=$V
[ "$SV" = 1 ] || reject "manifest: unsupported DMTOOLS_SCHEMA_VERSION '$SV'"
mf_req DMTOOLS_STACK
STACK=$V
case $STACK in
crypt-only | integrity-only | integrity-then-crypt | crypt-then-integrity | verity-only | verity-then-crypt | crypt-then-verity) ;;
*) reject "manifest: unknown DMTOOLS_STACK" ;;
esac
mf_req DMTOOLS_LAYERS
NLAYERS=$V
case $NLAYERS in [1-8]) ;; *) reject "manifest: DMTOOLS_LAYERS must be 1..8" ;; esac
mf_req DMTOOLS_TOP
TOP=$V
mf_req DMTOOLS_NEEDS_META
NEEDS_META=$V
case $NEEDS_META in 0 | 1) ;; *) reject "manifest: DMTOOLS_NEEDS_META must be 0 or 1" ;; esac

# Keys of layers beyond DMTOOLS_LAYERS are an error.
for mf_k in $MF_KEYS; do
	case $mf_k in DMTOOLS_L[0-7]_*)
		mf_i=${mf_k#DMTOOLS_L}
		mf_i=${mf_i%%_*}
		[ "$mf_i" -lt "$NLAYERS" ] || reject "manifest: $mf_k belongs to no layer (DMTOOLS_LAYERS=$NLAYERS)"
		;;
	esac
done

# word N STRING: sets W to the Nth (0-based) blank-separated word of STRING.
word() {
	W=""
	_n=0
	set -f
	for _x in $2; do
		[ "$_n" = "$1" ] && W=$_x && break
		_n=$((_n + 1))
	done
	set +f
}

NAMES=" "
i=0
while [ $i -lt "$NLAYERS" ]; do
	mf_req "DMTOOLS_L${i}_TARGET"
	t=$V
	mf_req "DMTOOLS_L${i}_NAME"
	n=$V
	case $NAMES in *" $n "*) reject "manifest: DMTOOLS_L${i}_NAME repeats the name of a lower layer" ;; esac
	NAMES="$NAMES$n "
	mf_req "DMTOOLS_L${i}_SECTORS"
	s=$V
	mf_req "DMTOOLS_L${i}_TABLE"
	tb=$V
	is_name "$n" || reject "manifest: DMTOOLS_L${i}_NAME is not a valid mapping name"
	is_num "$s" || reject "manifest: DMTOOLS_L${i}_SECTORS is not a number"
	case $tb in
	"0 $s $t "*) ;;
	*) reject "manifest: DMTOOLS_L${i}_TABLE does not start with '0 $s $t'" ;;
	esac
	case $t in
	crypt)
		mf_req "DMTOOLS_L${i}_CRYPT_KEY_SIZE"
		ks=$V
		{ is_num "$ks" && [ "$ks" -gt 0 ]; } || reject "manifest: DMTOOLS_L${i}_CRYPT_KEY_SIZE is not a positive number"
		mf_req "DMTOOLS_L${i}_CRYPT_KEY_DESC"
		kd=$V
		case $kd in *:*) ;; *) reject "manifest: DMTOOLS_L${i}_CRYPT_KEY_DESC needs a 'prefix:' (logon keys)" ;; esac
		case $kd in *[!A-Za-z0-9_.:+-]*) reject "manifest: DMTOOLS_L${i}_CRYPT_KEY_DESC holds a forbidden character" ;; esac
		# the key is never in the manifest: the table holds the @KEY@ placeholder
		word 4 "$tb"
		[ "$W" = @KEY@ ] || reject "manifest: DMTOOLS_L${i}_TABLE must hold @KEY@ in place of the key"
		for k in VERITY_OPTS VERITY_ROOT_HASH VERITY_SIG_PATH VERITY_SIG_DESC INTEGRITY_KEY_SIZE; do
			mf_has "DMTOOLS_L${i}_$k" && reject "manifest: DMTOOLS_L${i}_$k does not belong to a crypt layer"
		done
		;;
	verity)
		mf_has "DMTOOLS_L${i}_VERITY_OPTS" || reject "manifest: missing DMTOOLS_L${i}_VERITY_OPTS"
		if mf_has "DMTOOLS_L${i}_VERITY_ROOT_HASH"; then
			mf "DMTOOLS_L${i}_VERITY_ROOT_HASH"
			word 11 "$tb"
			[ "$W" = "$V" ] || reject "manifest: DMTOOLS_L${i}_VERITY_ROOT_HASH differs from the root hash in the table"
		fi
		if mf_has "DMTOOLS_L${i}_VERITY_SIG_PATH"; then
			mf "DMTOOLS_L${i}_VERITY_SIG_PATH"
			case $V in '' | .* | */* | *[!A-Za-z0-9_.+-]*)
				reject "manifest: DMTOOLS_L${i}_VERITY_SIG_PATH must be a plain file name next to the manifest" ;;
			esac
			mf_req "DMTOOLS_L${i}_VERITY_SIG_DESC"
			case $V in '' | *[!A-Za-z0-9_.:+-]*) reject "manifest: DMTOOLS_L${i}_VERITY_SIG_DESC holds a forbidden character" ;; esac
		elif mf_has "DMTOOLS_L${i}_VERITY_SIG_DESC"; then
			reject "manifest: DMTOOLS_L${i}_VERITY_SIG_DESC without DMTOOLS_L${i}_VERITY_SIG_PATH"
		fi
		for k in CRYPT_KEY_SIZE CRYPT_KEY_DESC INTEGRITY_KEY_SIZE; do
			mf_has "DMTOOLS_L${i}_$k" && reject "manifest: DMTOOLS_L${i}_$k does not belong to a verity layer"
		done
		;;
	integrity)
		if mf_has "DMTOOLS_L${i}_INTEGRITY_KEY_SIZE"; then
			mf "DMTOOLS_L${i}_INTEGRITY_KEY_SIZE"
			ks=$V
			{ is_num "$ks" && [ "$ks" -gt 0 ]; } || reject "manifest: DMTOOLS_L${i}_INTEGRITY_KEY_SIZE is not a positive number"
		fi
		for k in VERITY_OPTS VERITY_ROOT_HASH VERITY_SIG_PATH VERITY_SIG_DESC CRYPT_KEY_SIZE CRYPT_KEY_DESC; do
			mf_has "DMTOOLS_L${i}_$k" && reject "manifest: DMTOOLS_L${i}_$k does not belong to an integrity layer"
		done
		;;
	*) reject "manifest: DMTOOLS_L${i}_TARGET must be crypt, integrity or verity" ;;
	esac
	i=$((i + 1))
done
mf "DMTOOLS_L$((NLAYERS - 1))_NAME"
TOP_NAME=$V
[ "$TOP" = "$TOP_NAME" ] || reject "manifest: DMTOOLS_TOP is not the name of the top layer"

# ---------------------------------------------------------------- environment checks

dev_ok() { # dev_ok VAR VALUE: a path usable inside a table (one word)
	case $2 in
	/*) ;;
	*) reject "$1 must be an absolute device path" ;;
	esac
	case $2 in *[!A-Za-z0-9_./:+-]*) reject "$1 holds a character not allowed in a table" ;; esac
	if [ "$MODE" = apply ] && [ ! -b "$2" ]; then
		reject "$1=$2 is not a block device"
	fi
}
if [ -n "${DATA_DEV:-}" ]; then
	dev_ok DATA_DEV "$DATA_DEV"
	DATA=$DATA_DEV
elif [ "$MODE" = apply ]; then
	reject "DATA_DEV is not set"
else
	DATA='<DATA_DEV>'
fi
META=""
if [ "$NEEDS_META" = 1 ]; then
	if [ -n "${META_DEV:-}" ]; then
		dev_ok META_DEV "$META_DEV"
		META=$META_DEV
	elif [ "$MODE" = apply ]; then
		reject "META_DEV is not set (this stack keeps its metadata on a second device)"
	else
		META='<META_DEV>'
	fi
fi

# Crypt key: hex string or file, size checked against every crypt layer. (unset first:
# a name imported from the environment would stay exported.)
unset KEY_HEX KEY_FILE KEY_LEN IKEY_HEX
KEY_HEX=""
KEY_FILE=""
KEY_LEN=""
if [ -n "${CRYPT_KEY_HEX:-}" ] && [ -n "${CRYPT_KEY_BIN:-}" ]; then
	reject "set CRYPT_KEY_HEX or CRYPT_KEY_BIN, not both"
elif [ -n "${CRYPT_KEY_HEX:-}" ]; then
	case $CRYPT_KEY_HEX in *[!0-9a-fA-F]*) reject "CRYPT_KEY_HEX is not hex" ;; esac
	KEY_HEX=$CRYPT_KEY_HEX
	[ $((${#KEY_HEX} % 2)) = 0 ] || reject "CRYPT_KEY_HEX has an odd number of digits"
	KEY_LEN=$((${#KEY_HEX} / 2))
elif [ -n "${CRYPT_KEY_BIN:-}" ]; then
	{ [ -f "$CRYPT_KEY_BIN" ] && [ -r "$CRYPT_KEY_BIN" ]; } || reject "CRYPT_KEY_BIN: cannot read the key file"
	KEY_FILE=$CRYPT_KEY_BIN
	KEY_LEN=$(wc -c <"$KEY_FILE" | tr -d ' ')
fi
IKEY_HEX=""
if [ -n "${INTEGRITY_KEY_HEX:-}" ] && [ -n "${INTEGRITY_KEY_BIN:-}" ]; then
	reject "set INTEGRITY_KEY_HEX or INTEGRITY_KEY_BIN, not both"
elif [ -n "${INTEGRITY_KEY_HEX:-}" ]; then
	case $INTEGRITY_KEY_HEX in *[!0-9a-fA-F]*) reject "INTEGRITY_KEY_HEX is not hex" ;; esac
	IKEY_HEX=$INTEGRITY_KEY_HEX
elif [ -n "${INTEGRITY_KEY_BIN:-}" ]; then
	{ [ -f "$INTEGRITY_KEY_BIN" ] && [ -r "$INTEGRITY_KEY_BIN" ]; } || reject "INTEGRITY_KEY_BIN: cannot read the key file"
	IKEY_HEX=$(od -An -v -tx1 <"$INTEGRITY_KEY_BIN" | tr -d ' \n')
fi

# Keys now live in unexported shell variables only: no child (dmsetup, mount, the mount
# command) inherits them through its environment.
unset CRYPT_KEY_HEX CRYPT_KEY_BIN INTEGRITY_KEY_HEX INTEGRITY_KEY_BIN

USE_KEYRING=1
if [ "$MODE" = apply ] && ! command -v keyctl >/dev/null 2>&1; then
	USE_KEYRING=0
fi

# Verity root hash signatures (PKCS#7 files next to the manifest) go into @u as user keys.
case $MF_PATH in */*) MF_DIR=${MF_PATH%/*} ;; *) MF_DIR=. ;; esac
i=0
while [ $i -lt "$NLAYERS" ]; do
	if mf_has "DMTOOLS_L${i}_VERITY_SIG_PATH"; then
		mf "DMTOOLS_L${i}_VERITY_SIG_PATH"
		if [ "$MODE" = apply ]; then
			[ "$USE_KEYRING" = 1 ] || reject "layer $i: a verity root hash signature needs keyctl"
			[ -r "$MF_DIR/$V" ] || reject "layer $i: cannot read the root hash signature $MF_DIR/$V"
		fi
	fi
	i=$((i + 1))
done

i=0
while [ $i -lt "$NLAYERS" ]; do
	mf "DMTOOLS_L${i}_TARGET"
	case $V in
	crypt)
		mf "DMTOOLS_L${i}_CRYPT_KEY_SIZE"
		ks=$V
		if [ -z "$KEY_LEN" ]; then
			[ "$MODE" = apply ] && reject "layer $i (crypt) needs CRYPT_KEY_HEX or CRYPT_KEY_BIN"
		elif [ "$KEY_LEN" != "$ks" ]; then
			reject "crypt key is $KEY_LEN bytes, layer $i expects $ks (DMTOOLS_L${i}_CRYPT_KEY_SIZE)"
		fi
		;;
	integrity)
		if mf_has "DMTOOLS_L${i}_INTEGRITY_KEY_SIZE"; then
			mf "DMTOOLS_L${i}_INTEGRITY_KEY_SIZE"
			ks=$V
			if [ -z "$IKEY_HEX" ]; then
				[ "$MODE" = apply ] && reject "layer $i (hmac integrity) needs INTEGRITY_KEY_HEX or INTEGRITY_KEY_BIN"
			elif [ $((${#IKEY_HEX} / 2)) != "$ks" ] || [ $((${#IKEY_HEX} % 2)) != 0 ]; then
				reject "integrity key is $((${#IKEY_HEX} / 2)) bytes, layer $i expects $ks"
			fi
		fi
		;;
	esac
	i=$((i + 1))
done

# Mount settings: environment > manifest > defaults.
mf DMTOOLS_MOUNT_FSTYPE
FSTYPE=${ENV_FSTYPE:-$V}
mf DMTOOLS_NEWROOT
NEWROOT=${ENV_NEWROOT:-$V}
NEWROOT=${NEWROOT:-/newroot}
mf DMTOOLS_MOUNT_OPTS
OPTS=${ENV_OPTS:-$V}
if [ -z "$OPTS" ] && [ "$PHASE" = sealed ]; then
	case $FSTYPE in ext4) OPTS=ro,errors=panic ;; *) OPTS=ro ;; esac
elif [ -z "$ENV_OPTS" ] && [ "$PHASE" = sealed ] && [ "$FSTYPE" = ext4 ]; then
	# the manifest's ext4 options ("ro" for verity) still fail closed when sealed
	case ",$OPTS," in *,errors=*) ;; *) OPTS=$OPTS,errors=panic ;; esac
fi
case $NEWROOT in
/*) case $NEWROOT in *..* | *[!A-Za-z0-9_./:+-]*) NEWROOT="" ;; esac ;;
*) NEWROOT="" ;;
esac
[ -n "$NEWROOT" ] || reject "DMTOOLS_NEWROOT must be an absolute path of A-Za-z0-9_./:+- only"
case $FSTYPE in *[!A-Za-z0-9_.+-]*) reject "DMTOOLS_MOUNT_FSTYPE must be a filesystem type name" ;; esac
[ ${#FSTYPE} -le 32 ] || reject "DMTOOLS_MOUNT_FSTYPE must be a filesystem type name"
case $OPTS in *[!A-Za-z0-9_.,:=+/@-]*) reject "DMTOOLS_MOUNT_OPTS must be comma-separated options without blanks" ;; esac
MOUNT_CMD=${DMTOOLS_MOUNT_CMD:-}
DO_MOUNT=0
if [ -n "$MOUNT_CMD" ] || [ "$PHASE" = sealed ]; then DO_MOUNT=1; fi

# Verity corruption mode for this phase and fail action.
CORRUPTION=""
if [ "$PHASE" = sealed ]; then
	case $FAIL_ACTION in
	panic) CORRUPTION=panic_on_corruption ;;
	reboot) CORRUPTION=restart_on_corruption ;;
	esac
fi

# ---------------------------------------------------------------- tables

# subst FROM TO: replaces every FROM in $T by TO (no fork).
subst() {
	_s=$T
	_o=""
	while :; do
		case $_s in
		*"$1"*)
			_o=$_o${_s%%"$1"*}$2
			_s=${_s#*"$1"}
			;;
		*) break ;;
		esac
	done
	T=$_o$_s
}

# table_for I SHOWKEY: sets T to the substituted table of layer I; SHOWKEY=0 masks keys.
table_for() {
	mf "DMTOOLS_L${1}_TARGET"
	_tgt=$V
	mf "DMTOOLS_L${1}_TABLE"
	T=$V
	subst @DATA@ "$DATA"
	subst @META@ "$META"
	_lower=""
	if [ "$1" -gt 0 ]; then
		mf "DMTOOLS_L$(($1 - 1))_NAME"
		_lower=/dev/mapper/$V
		subst @LOWER@ "$_lower"
	fi
	if [ "$_tgt" = crypt ]; then
		if [ "$USE_KEYRING" = 1 ]; then
			mf "DMTOOLS_L${1}_CRYPT_KEY_SIZE"
			_ks=$V
			mf "DMTOOLS_L${1}_CRYPT_KEY_DESC"
			subst @KEY@ ":$_ks:logon:$V"
		elif [ "$2" = 1 ]; then
			subst @KEY@ "$(key_hex)"
		else
			subst @KEY@ '<key>'
		fi
	fi
	if [ "$2" = 1 ] && [ -n "$IKEY_HEX" ]; then
		subst @IKEY@ "$IKEY_HEX"
	else
		subst @IKEY@ '<key>'
	fi
	if [ "$_tgt" = verity ]; then
		_tt=$T
		mf "DMTOOLS_L${1}_VERITY_OPTS"
		T=$V
		subst @DATA@ "$DATA"
		subst @META@ "$META"
		# use_fec_from_device may name the layer below (crypt-then-verity).
		[ -n "$_lower" ] && subst @LOWER@ "$_lower"
		_w=""
		_c=0
		for _x in $T $CORRUPTION; do
			_w="$_w $_x"
			_c=$((_c + 1))
		done
		[ $_c -gt 0 ] && _tt="$_tt $_c$_w"
		T=$_tt
	fi
	case $T in *@DATA@* | *@META@* | *@LOWER@* | *@KEY@* | *@IKEY@*)
		say "layer $1: unresolved placeholder in the table"
		return 1
		;;
	esac
	return 0
}

key_hex() {
	if [ -n "$KEY_HEX" ]; then
		printf '%s' "$KEY_HEX"
	else
		od -An -v -tx1 <"$KEY_FILE" | tr -d ' \n'
	fi
}

# key_bytes: the crypt key as raw bytes on stdout (printf is a shell builtin: no argv).
key_bytes() {
	if [ -n "$KEY_FILE" ]; then
		cat "$KEY_FILE"
		return
	fi
	_h=$KEY_HEX
	while [ -n "$_h" ]; do
		_p=${_h%"${_h#??}"}
		_h=${_h#??}
		_v=$((0x$_p))
		# shellcheck disable=SC2059 # the format is an octal escape built from a number
		printf "\\$((_v / 64))$((_v / 8 % 8))$((_v % 8))"
	done
}

# readonly_for I: 1 when layer I is created read-only.
RO_FROM=$NLAYERS
i=0
while [ $i -lt "$NLAYERS" ]; do
	mf "DMTOOLS_L${i}_TARGET"
	if [ "$V" = verity ]; then RO_FROM=$i && break; fi
	i=$((i + 1))
done
readonly_for() {
	[ "${DMTOOLS_READONLY:-0}" = 1 ] || [ "$1" -ge "$RO_FROM" ]
}

# Validate every table now (unresolved placeholders), before anything runs.
i=0
while [ $i -lt "$NLAYERS" ]; do
	table_for $i 0 || fail_closed
	i=$((i + 1))
done

TOP_DEV=/dev/mapper/$TOP

# mount_line: the built-in mount as the plan prints it.
mount_line() {
	_m="mount"
	[ -n "$FSTYPE" ] && _m="$_m -t $FSTYPE"
	[ -n "$OPTS" ] && _m="$_m -o $OPTS"
	printf '%s' "$_m $TOP_DEV $NEWROOT"
}

# ---------------------------------------------------------------- dry-run

if [ "$MODE" = dry-run ]; then
	echo "# apply_manifest.sh plan (dry-run, nothing is run): stack=$STACK phase=$PHASE fail_action=$FAIL_ACTION"
	loaded=" "
	i=0
	while [ $i -lt "$NLAYERS" ]; do
		mf "DMTOOLS_L${i}_TARGET"
		if [ "$V" = crypt ] && [ "$USE_KEYRING" = 1 ]; then
			mf "DMTOOLS_L${i}_CRYPT_KEY_DESC"
			kd=$V
			case $loaded in *" $kd "*) ;; *)
				echo "keyctl padd logon $kd @u <<< <key>"
				loaded="$loaded$kd "
				;;
			esac
		fi
		if mf_has "DMTOOLS_L${i}_VERITY_SIG_PATH"; then
			mf "DMTOOLS_L${i}_VERITY_SIG_PATH"
			_sp=$V
			mf "DMTOOLS_L${i}_VERITY_SIG_DESC"
			echo "keyctl padd user $V @u < $MF_DIR/$_sp"
			loaded="$loaded$V "
		fi
		ro=""
		readonly_for $i && ro=" --readonly"
		table_for $i 0
		mf "DMTOOLS_L${i}_NAME"
		echo "dmsetup create$ro $V <<< '$T'"
		i=$((i + 1))
	done
	[ "$loaded" = " " ] || echo "keyctl unlink <id> @u"
	if [ "$PHASE" = sealed ] && [ "${DMTOOLS_SEALED_READCHECK:-0}" = 1 ]; then
		echo "dd if=$TOP_DEV of=/dev/null bs=1M"
	fi
	if [ -n "$MOUNT_CMD" ]; then
		echo "sh -c <DMTOOLS_MOUNT_CMD>"
	elif [ "$DO_MOUNT" = 1 ]; then
		echo "mkdir -p $NEWROOT"
		mount_line
		echo
	fi
	[ "$PHASE" = sealed ] && echo "# on failure: $FAIL_ACTION"
	exit 0
fi

# ---------------------------------------------------------------- apply

CREATED="" # names created by this run, top first

# cleanup: remove the mappings this run created, top-down.
cleanup() {
	for _n in $CREATED; do
		dmsetup remove "$_n" >/dev/null 2>&1 || dmsetup remove --retry "$_n" >/dev/null 2>&1 ||
			say "could not remove $_n"
	done
	CREATED=""
}

# fail MESSAGE: report, clean up, then bootstrap exits 1; sealed takes the fail action.
fail() {
	say "$*"
	if [ -n "$MOUNTED" ]; then
		umount "$NEWROOT" 2>/dev/null
	fi
	cleanup
	unlink_keys
	[ "$PHASE" = sealed ] || exit 1
	take_fail_action
}
MOUNTED=""

KEY_IDS="" # keyring ids loaded by this run: unlinked once the tables hold the key
load_key() { # load_key DESC
	_id=$(key_bytes | keyctl padd logon "$1" @u) || fail "keyctl padd logon $1 @u failed"
	KEY_IDS="$KEY_IDS $_id"
}
unlink_keys() {
	for _id in $KEY_IDS; do keyctl unlink "$_id" @u >/dev/null 2>&1; done
	KEY_IDS=""
}

# same_table NAME TABLE: does the live mapping NAME have the table the kernel makes of TABLE?
# The candidate is loaded into the inactive slot and compared as the kernel echoes it.
same_table() { # same_table NAME TABLE [--readonly]
	# shellcheck disable=SC2086 # $3 is empty or one word
	printf '%s\n' "$2" | dmsetup load $3 "$1" >/dev/null 2>&1 || { dmsetup clear "$1" >/dev/null 2>&1; return 1; }
	_a=$(dmsetup table --showkeys "$1" 2>/dev/null)
	_b=$(dmsetup table --showkeys --inactive "$1" 2>/dev/null)
	dmsetup clear "$1" >/dev/null 2>&1
	[ -n "$_a" ] && [ "$_a" = "$_b" ]
}

# mapping_exists NAME: from sysfs when mounted (no exec: dmsetup is slow to start on
# small boards), else by asking dmsetup.
mapping_exists() {
	if [ -d /sys/block ] && [ -d /sys/devices/virtual/block ]; then
		for _d in /sys/block/dm-*/dm/name; do
			[ -r "$_d" ] || continue
			read -r _n <"$_d" || continue
			[ "$_n" = "$1" ] && return 0
		done
		return 1
	fi
	dmsetup info "$1" >/dev/null 2>&1
}

loaded=" "
i=0
while [ $i -lt "$NLAYERS" ]; do
	mf "DMTOOLS_L${i}_NAME"
	name=$V
	mf "DMTOOLS_L${i}_TARGET"
	target=$V
	if [ "$target" = crypt ] && [ "$USE_KEYRING" = 1 ]; then
		mf "DMTOOLS_L${i}_CRYPT_KEY_DESC"
		kd=$V
		case $loaded in *" $kd "*) ;; *)
			load_key "$kd"
			loaded="$loaded$kd "
			;;
		esac
	fi
	if mf_has "DMTOOLS_L${i}_VERITY_SIG_PATH"; then
		mf "DMTOOLS_L${i}_VERITY_SIG_PATH"
		_sp=$V
		mf "DMTOOLS_L${i}_VERITY_SIG_DESC"
		_id=$(keyctl padd user "$V" @u <"$MF_DIR/$_sp") || fail "keyctl padd user $V @u failed (root hash signature)"
		KEY_IDS="$KEY_IDS $_id"
	fi
	table_for $i 1 || fail "layer $i: bad table"
	table=$T
	ro=""
	readonly_for $i && ro="--readonly"
	if mapping_exists "$name"; then
		if [ -z "$(dmsetup table "$name" 2>/dev/null)" ]; then
			say "removing $name: it exists without a table (left by a failed run)"
			dmsetup remove "$name" >/dev/null 2>&1 || fail "cannot remove the half-made mapping $name"
		elif same_table "$name" "$table" "$ro"; then
			say "$name already active with the same table"
			i=$((i + 1))
			continue
		else
			fail "$name already exists with a different table; remove it first (dmsetup remove $name)"
		fi
	fi
	# The table goes on stdin: key material never reaches argv.
	# shellcheck disable=SC2086 # $ro is empty or one word
	if ! printf '%s\n' "$table" | dmsetup create $ro "$name"; then
		fail "dmsetup create $name failed (layer $i, $target)"
	fi
	CREATED="$name $CREATED"
	if [ ! -b "/dev/mapper/$name" ]; then
		dmsetup mknodes "$name" >/dev/null 2>&1
		[ -b "/dev/mapper/$name" ] || fail "/dev/mapper/$name did not appear (udev? try DM_DISABLE_UDEV=1)"
	fi
	i=$((i + 1))
done

unlink_keys

if [ "$PHASE" = sealed ] && [ "${DMTOOLS_SEALED_READCHECK:-0}" = 1 ]; then
	dd if="$TOP_DEV" of=/dev/null bs=1M 2>/dev/null || fail "read check of $TOP_DEV failed (I/O error)"
fi

if [ "$DO_MOUNT" = 1 ]; then
	mkdir -p "$NEWROOT" || fail "cannot create $NEWROOT"
	MOUNTED=1 # (attempted: a failure below unmounts whatever got mounted)
	if [ -n "$MOUNT_CMD" ]; then
		DMTOOLS_TOP_DEV=$TOP_DEV DMTOOLS_NEWROOT=$NEWROOT sh -c "$MOUNT_CMD" ||
			fail "DMTOOLS_MOUNT_CMD failed"
	else
		set --
		[ -n "$FSTYPE" ] && set -- "$@" -t "$FSTYPE"
		[ -n "$OPTS" ] && set -- "$@" -o "$OPTS"
		mount "$@" "$TOP_DEV" "$NEWROOT" || fail "mount of $TOP_DEV on $NEWROOT failed"
	fi
fi
say "activated $TOP_DEV ($STACK, $PHASE)"
exit 0
