// Package verity computes and checks dm-verity hash trees for disk images
// built offline.
//
// [Format] writes exactly the bytes `veritysetup format` (cryptsetup 2.6)
// writes to its hash device for the same data, salt, UUID, hash algorithm,
// block sizes, format version and hash offset: the optional 512-byte
// superblock, then the tree levels, top level first, the level over the data
// last. The root hash, [Table] and the result fields are what the kernel's
// dm-verity target needs, so the output can be opened by veritysetup or by a
// kernel table built without it.
//
// # Tree
//
// Level 0 holds one digest per data block; each higher level holds one digest
// per block of the level below, until a level fits in one hash block. The root
// hash is the digest of that top block (of the only data block when there is
// one data block and so no tree). A hash block holds the largest power of two
// of digests that fits. Format version 1 hashes H(salt || block) and gives
// each digest a slot of hash_block_size / count bytes (zero padded); version 0
// (Chrome OS) hashes H(block || salt) and packs digests at their own size.
// Unused space is zero.
//
// # Determinism
//
// The package reads no clock and no crypto/rand. [DeriveSalt] and
// [DeriveUUID] compute a salt and UUID from a seed string and the parameters
// (never from the data, so no second pass over it):
//
//	salt = SHA-256("rules_dm/verity/salt/v1\x00" || canon(p) || seed)        (32 bytes)
//	uuid = SHA-256("rules_dm/verity/uuid/v1\x00" || canon(p) || u16le(len(salt)) || salt || seed)[:16]
//	       with the RFC 4122 version nibble set to 4 and the variant bits to 10
//
// where canon(p) is "v<version> <hash> <data block size> <hash block size>
// sb=<0|1>\x00".
//
// # Streaming and speed
//
// Data is read once, in chunks, through an [io.ReaderAt]; memory stays bounded
// (a few chunks per worker plus one batch of hash blocks per tree level)
// whatever the image size. Level-0 hashing runs on GOMAXPROCS workers with
// results consumed in order, so the output is byte-identical to a sequential
// run. All-zero data blocks reuse one precomputed digest, hash blocks made
// only of such digests (at any level) reuse one digest per level, and when
// the data is an *os.File, holes (SEEK_DATA/SEEK_HOLE) are not read at all.
// On amd64 with SHA-NI, sha256 data blocks are hashed two at a time by an
// assembly routine that interleaves the two independent SHA-256 computations
// (sha256x2_amd64.s, generated from Go's own SHA-NI code by sha256x2_gen.py),
// which roughly halves the CPU time per byte; it is cross-tested against
// crypto/sha256. [FormatWith] and [VerifyWith] take [Options], whose Progress
// callback reports the data bytes done.
//
// # Limits
//
//   - Hash algorithms: sha1, sha256, sha512.
//   - Data and hash block sizes: powers of two from 512 to 4096 (the kernel
//     needs blocks no larger than a page).
//   - The data size must be a non-zero multiple of the data block size.
//   - Salt: at most 256 bytes (the superblock's limit); empty means no salt
//     ("-" in the kernel table).
//   - The hash offset is a multiple of 512 bytes with a superblock (the tree
//     starts at the next hash block boundary after it), and a multiple of the
//     hash block size without one (veritysetup silently rounds such an offset
//     down, which can overwrite bytes before it; this package refuses).
//   - [EncodeFEC] writes dm-verity FEC parity (RS(255, 255-roots), roots
//     2..24, interleaved as veritysetup does; see fec.go) byte-identical to
//     `veritysetup format --fec-device`; it needs equal data and hash block
//     sizes. Root hash signatures are not produced here.
//
// See https://docs.kernel.org/admin-guide/device-mapper/verity.html.
package verity
