// Package crypt encrypts and decrypts disk images offline exactly as the
// Linux kernel's dm-crypt target reads and writes them, so that an image
// built on a host opens with a plain dm-crypt table (no LUKS header).
//
// Supported cipher specs (the kernel's "old" format cipher-chainmode-ivmode):
//
//	aes-cbc-plain         IV = le32(iv sector), zero padded to 16 bytes
//	aes-cbc-plain64       IV = le64(iv sector), zero padded
//	aes-cbc-essiv:sha256  IV = AES-256_{sha256(key)}(le64(iv sector) || 0^8)
//	aes-xts-plain64       XTS tweak = le64(iv sector) || 0^8 (IEEE P1619)
//
// AES-128/192/256 is chosen by key length: 16/24/32 bytes for CBC, 32/48/64
// bytes for XTS (two AES keys concatenated, data key first).
//
// Sectors. The sector size (512, 1024, 2048 or 4096; table option
// sector_size:N) is the unit of encryption: each sector is ONE CBC chain or
// ONE XTS data unit with one IV. Sector k of the image (counted in sector
// size units from the start of the crypt target, byte offset k*SectorSize)
// gets the IV sector number
//
//	k*(SectorSize/512) + IVOffset                     by default
//	(k*(SectorSize/512) + IVOffset) / (SectorSize/512) with iv_large_sectors
//
// exactly as drivers/md/dm-crypt.c computes it (cc_sector, shifted by
// sector_shift when CRYPT_IV_LARGE_SECTORS is set). IVOffset is in 512-byte
// units and, as in the kernel ("Invalid iv_offset sector"), must be a
// multiple of SectorSize/512. The device offset (<offset> in the table)
// does not enter the IV.
//
// Every sector is independent, so [Encrypt] and [Decrypt] work on chunks of
// sectors in parallel (2×GOMAXPROCS workers, one bounded buffer each: memory
// stays flat however large the image) and produce bytes identical to a
// sequential run. [EncryptFile] and [DecryptFile] do the same on files
// (holes of a sparse input are not read; O_DIRECT writes where possible;
// optionally the input read through a shared mapping, [IOMmap]). On amd64 with
// AES-NI, XTS and CBC use multi-block assembly kernels (package
// internal/fastaes: 8 blocks in flight for XTS and CBC decryption, 8
// independent sectors in flight for CBC encryption);
// elsewhere crypto/aes and golang.org/x/crypto/xts. Both paths are
// cross-tested and give identical bytes.
//
// Authenticated dm-crypt (integrity:<N>:aead over dm-integrity) is in
// aead.go: [NewAEAD] for capi:gcm(aes)-random and
// capi:authenc(hmac(sha256),xts(aes))-random writes ciphertext plus one
// [auth tag | IV] entry per sector, with deterministic SIV-style IVs (see
// [AEAD] and docs/aead-offline.md).
//
// [Table] builds the kernel table line and [Cipher.Params] the layer's
// manifest fragment ([Params], never the key).
//
// Non-goals and limits: no authentication in the plain modes (dm-crypt has
// none there; use the AEAD specs), no LUKS header, no
// ciphertext stealing (sector sizes are multiples of 16), no other ciphers or
// IV modes (benbi, lmk, tcw, eboiv, plain64be, null) for now. The package
// reads no clock and no randomness: same key and input give the same bytes.
// Errors never contain key bytes. A [Cipher] is safe for concurrent use.
package crypt
