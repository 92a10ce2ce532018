#!/bin/sh
# 45-progress: the progress line on a real terminal (a pty from script(1),
# util-linux). dm-verity format and dm-compose build draw
#   "<label>  NN% |<bar>| (<done>/<total> MiB, <rate>) [<elapsed>:<ETA>]"
# lines on stderr (each redraw after a \r, no newline) and erase the last one;
# with --quiet, with TERM=dumb, or with stderr a file (under a pty or not),
# nothing at all reaches stderr; the outputs are the same bytes every way.
# The pty gets stderr only: each command sends its stdout to a file.
set -u
# shellcheck source=/dev/null
. "$ROOT/tests/lib.sh"

DV="$BIN/dm-verity"
DC="$BIN/dm-compose"
cd "$WORK" || exit 1
umask 077 # the key file private (the tools warn otherwise)

if ! command -v script >/dev/null; then
	skip progress "script(1) missing (util-linux bsdutils)"
	exit 0
fi
for t in "$DV" "$DC"; do
	if [ ! -x "$t" ]; then
		skip progress "$t was not built"
		exit 0
	fi
done

# 256 MiB, sparse: 64 MiB of random data in the middle, holes around it
truncate -s 256M in.img
head -c 64M /dev/urandom | dd of=in.img bs=1M seek=96 conv=notrunc status=none
head -c 64 /dev/urandom >k.key

# on_tty OUT CMD [TERM]: run CMD (sh) with a pty as its terminal; what the
# pty shows goes to OUT. Returns CMD's status.
on_tty() {
	SHELL=/bin/sh TERM=${3:-xterm} script -qfec "$2" /dev/null </dev/null >"$1"
}

# progress_only FILE LABEL: FILE is progress lines of LABEL and nothing else:
# no newline, every \r-separated piece is blank or "LABEL... NN% |...| (...)",
# at least one shows MiB, and the last piece written blanks the line.
progress_only() {
	[ -s "$1" ] || { echo "$1: nothing on the terminal"; return 1; }
	[ "$(wc -l <"$1")" -eq 0 ] || { echo "$1: has newlines:"; cat -A "$1" | head -5; return 1; }
	if tr '\r' '\n' <"$1" | grep -v '^ *$' | grep -Ev "^$2[a-z0-9. ]* +[0-9]{1,3}% \|.*\| \(.*\) \[[0-9hms]+(:[0-9hms]+)?\] *\$" | grep .; then
		echo "$1: the lines above are not progress lines of $2"
		return 1
	fi
	tr '\r' '\n' <"$1" | grep -q "^$2.*%.*MiB" || { echo "$1: no $2 line with MiB"; return 1; }
	last=$(tr '\r' '\n' <"$1" | grep -v '^$' | tail -n 1)
	case "$last" in
	*[!\ ]* | '') echo "$1: the last piece is not a blank-out: '$last'"; return 1 ;;
	esac
}

# ------------------------------------------------------------- dm-verity
verity_tty() {
	on_tty v1.tty "\"$DV\" format --seed pg in.img v1.hash >v1.out" || return 1
	progress_only v1.tty "dm-verity format" || return 1
	grep -q 'Root hash' v1.out
}
check "dm-verity format on a terminal: progress line, erased at the end" verity_tty

verity_quiet_tty() {
	on_tty v2.tty "\"$DV\" format --quiet --seed pg in.img v2.hash >v2.out" || return 1
	[ ! -s v2.tty ] || { cat -A v2.tty | head -c 300; return 1; }
}
check "dm-verity format --quiet on a terminal: nothing on stderr" verity_quiet_tty

verity_dumb_tty() {
	on_tty v3.tty "\"$DV\" format --seed pg in.img v3.hash >v3.out" dumb || return 1
	[ ! -s v3.tty ] || { cat -A v3.tty | head -c 300; return 1; }
}
check "dm-verity format with TERM=dumb: nothing on stderr" verity_dumb_tty

verity_file_stderr() {
	# under a pty (stdin and stdout terminals) but stderr a file
	on_tty v4.tty "\"$DV\" format --seed pg in.img v4.hash >v4.out 2>v4.err" || return 1
	if [ -s v4.tty ] || [ -s v4.err ]; then
		cat -A v4.tty v4.err | head -c 300
		return 1
	fi
	# no terminal at all
	"$DV" format --seed pg in.img v5.hash >v5.out 2>v5.err || return 1
	[ ! -s v5.err ] || { cat -A v5.err | head -c 300; return 1; }
}
check "dm-verity format with stderr a file: nothing on stderr" verity_file_stderr

verity_same_bytes() {
	for n in 2 3 4 5; do
		# the report names its hash file
		cmp v1.hash v$n.hash && sed "s/v$n\.hash/v1.hash/" v$n.out | cmp v1.out - || return 1
	done
}
check "dm-verity format: the same tree and output with and without progress" verity_same_bytes

# ------------------------------------------------------------ dm-compose
BUILD="\"$DC\" build --in in.img --stack crypt-then-verity --key-file k.key"
compose_tty() {
	on_tty c1.tty "$BUILD --outdir c1 >c1.out" || return 1
	progress_only c1.tty "dm-compose " || return 1
	# one bar per pass, in the order the build runs them
	got=$(tr '\r' '\n' <c1.tty | sed -n 's/^dm-compose \(.*[a-z]\) \{1,\}[0-9]\{1,3\}% .*/\1/p' | uniq | tr '\n' ,)
	want="sha256 input,copy input,verity tree,encrypt,sha256 data.img,"
	[ "$got" = "$want" ] || { echo "passes: $got, want $want"; return 1; }
	grep -q '^Root hash' c1.out
}
check "dm-compose build on a terminal: a progress line per pass, erased at the end" compose_tty

compose_quiet() {
	on_tty c2.tty "$BUILD --quiet --outdir c2 >c2.out" || return 1
	[ ! -s c2.tty ] || { cat -A c2.tty | head -c 300; return 1; }
	on_tty c3.tty "$BUILD --outdir c3 >c3.out 2>c3.err" || return 1
	if [ -s c3.tty ] || [ -s c3.err ]; then
		cat -A c3.tty c3.err | head -c 300
		return 1
	fi
	eval "$BUILD --outdir c4 >c4.out 2>c4.err" || return 1
	[ ! -s c4.err ] || { cat -A c4.err | head -c 300; return 1; }
}
check "dm-compose build --quiet, or stderr a file: nothing on stderr" compose_quiet

compose_same_bytes() {
	for n in 2 3 4; do
		for f in data.img manifest.json manifest.env boot/veritytab boot/crypttab; do
			cmp "c1/$f" "c$n/$f" || return 1
		done
	done
}
check "dm-compose build: the same outdir with and without progress" compose_same_bytes

rm -rf in.img ./*.hash c1 c2 c3 c4
