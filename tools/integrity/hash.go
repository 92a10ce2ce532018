package integrity

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// tagger computes the tag of one block: H([salt] || le64(logical sector) || block),
// truncated or zero-padded to the tag size. One per goroutine.
type tagger struct {
	hash    string
	salt    []byte // nil without fix_hmac
	tagSize int
	h       hash.Hash
	sum     []byte
}

func newTagger(hashName string, key, salt []byte, tagSize int) *tagger {
	t := &tagger{hash: hashName, salt: salt, tagSize: tagSize}
	switch hashName {
	case HashSHA256:
		t.h = sha256.New()
	case HashHMACSHA256:
		t.h = hmac.New(sha256.New, key)
	}
	t.sum = make([]byte, 0, 64)
	return t
}

// tag writes the tag of block (starting at logical 512-byte sector) into out[:tagSize].
func (t *tagger) tag(sector uint64, block, out []byte) {
	var le [8]byte
	binary.LittleEndian.PutUint64(le[:], sector)
	var d []byte
	switch t.hash {
	case HashCRC32C:
		c := crc32.Update(0, castagnoli, t.salt)
		c = crc32.Update(c, castagnoli, le[:])
		c = crc32.Update(c, castagnoli, block)
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], c)
		d = b[:]
	default:
		t.h.Reset()
		t.h.Write(t.salt)
		t.h.Write(le[:])
		t.h.Write(block)
		d = t.h.Sum(t.sum[:0])
	}
	n := copy(out[:t.tagSize], d)
	clear(out[n:t.tagSize])
}
