#!/usr/bin/env bash
# dm-crypt throughput: tools/crypt (one core, go test -bench) against
# `openssl speed -evp` on 4 KiB buffers, printed as ratios (not asserted).
# Both sides count CPU time, not wall time: openssl speed does by default,
# and our benchmarks report "cpu-MB/s" from the thread's rusage, so the
# ratios hold on a shared, loaded machine. Best of N runs on each side.
#   tests/bench/crypt.sh [RUNS]   (default 3; each run is ~1 s per line)
# Goals (issue 7): XTS >= 0.8x openssl per core; CBC-plain encryption of
# independent sectors >= 2x openssl's single-stream CBC.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export GOTOOLCHAIN=local
RUNS=${1:-3}

best_go() { # BENCH-REGEX [PACKAGE] -> best MB/s
	go test -run '^$' -bench "$1" -benchtime 300ms -count "$RUNS" -cpu 1 "${2:-./tools/crypt/}" |
		awk '/cpu-MB\/s/ { for (i = 1; i <= NF; i++) if ($(i+1) == "cpu-MB/s" && $i > m) m = $i } END { printf "%.0f\n", m }'
}
best_openssl() { # EVP-NAME [BYTES] -> best MB/s (openssl prints 1000s of bytes per CPU second)
	m=0
	for _ in $(seq "$RUNS"); do
		v=$(openssl speed -seconds 1 -bytes "${2:-4096}" -evp "$1" 2>/dev/null | awk -v n="$(echo "$1" | tr "[:lower:]" "[:upper:]")" 'toupper($1) == n { sub(/k$/, "", $2); print $2 / 1000 }')
		m=$(awk -v a="$m" -v b="$v" 'BEGIN { print (b > a) ? b : a }')
	done
	printf '%.0f\n' "$m"
}
line() { # LABEL OURS THEIRS
	awk -v l="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%-44s %8d MB/s  openssl %8d MB/s  ratio %.2fx\n", l, a, b, (b > 0) ? a / b : 0 }'
}

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $(openssl version)"
ox=$(best_openssl aes-256-xts)
ox512=$(best_openssl aes-256-xts 512)
oc=$(best_openssl aes-128-cbc)
oc512=$(best_openssl aes-128-cbc 512)
line "aes-xts-plain64 (AES-256) encrypt 4K"   "$(best_go 'XTS256Encrypt4K$')" "$ox"
line "aes-xts-plain64 (AES-256) decrypt 4K"   "$(best_go 'XTS256Decrypt4K$')" "$ox"
line "aes-xts-plain64 (AES-256) encrypt 512"  "$(best_go 'XTS256Encrypt512$')" "$ox512"
line "xts kernel without VAES (AES-NI only) 4K" "$(best_go 'XTSEncrypt256AESNI$' ./tools/crypt/internal/fastaes/)" "$ox"
line "aes-xts generic (x/crypto/xts) 4K"      "$(best_go 'XTS256Encrypt4KGeneric$')" "$ox"
line "aes-cbc-plain (AES-128) encrypt 4K"     "$(best_go 'CBC128PlainEncrypt4K$')" "$oc"
line "aes-cbc-plain (AES-128) encrypt 512"    "$(best_go 'CBC128PlainEncrypt512$')" "$oc512"
line "aes-cbc-essiv (AES-128) encrypt 512"    "$(best_go 'CBC128EssivEncrypt512$')" "$oc512"
line "aes-cbc-plain (AES-128) decrypt 4K"     "$(best_go 'CBC128PlainDecrypt4K$')" "$oc"
line "aes-cbc generic (crypto/cipher) 4K"     "$(best_go 'CBC128PlainEncrypt4KGeneric$')" "$oc"
