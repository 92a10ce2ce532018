package verity

import "encoding/binary"

var sha256IV = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

// pair2 computes the SHA-256 digests of two data blocks at once, each hashed
// as pre || block || post (the salt before the block for format 1, after it
// for format 0), with block2. The message is cut into a head (pre and the
// first r bytes of the block, whole 64-byte blocks), a middle read in place
// from the block, and a padded tail; head and tail are per-pair scratch.
type pair2 struct {
	r, m int // block bytes in the head; 64-byte blocks in the middle
	head [2][]byte
	tail [2][]byte
	k    int // block bytes at the start of the tail
}

// newPair2 returns a pair hasher for h's parameters and data block size, or
// nil when the two-stream path does not apply (not sha256, no SHA-NI).
func newPair2(h *hasher, dbs int) *pair2 {
	if !useSHA2x || h.ds != 32 || !h.isSHA256 {
		return nil
	}
	var pre, post []byte
	if h.version == 1 {
		pre = h.salt
	} else {
		post = h.salt
	}
	p := &pair2{}
	if len(pre) > 0 {
		p.r = (64 - len(pre)%64) % 64
	}
	if p.r > dbs {
		return nil
	}
	p.m = (dbs - p.r) / 64
	p.k = dbs - p.r - 64*p.m
	total := uint64(len(pre)+dbs+len(post)) * 8
	tl := (p.k + len(post) + 1 + 8 + 63) / 64 * 64
	for s := range 2 {
		if len(pre) > 0 {
			p.head[s] = make([]byte, len(pre)+p.r)
			copy(p.head[s], pre)
		}
		t := make([]byte, tl)
		copy(t[p.k:], post)
		t[p.k+len(post)] = 0x80
		binary.BigEndian.PutUint64(t[tl-8:], total)
		p.tail[s] = t
	}
	return p
}

// sum writes the digests of blocks a and b to da and db.
func (p *pair2) sum(da, db, a, b []byte) {
	sa, sb := sha256IV, sha256IV
	if p.head[0] != nil {
		n := len(p.head[0]) - p.r
		copy(p.head[0][n:], a[:p.r])
		copy(p.head[1][n:], b[:p.r])
		block2(&sa, &sb, &p.head[0][0], &p.head[1][0], len(p.head[0])/64)
	}
	if p.m > 0 {
		block2(&sa, &sb, &a[p.r], &b[p.r], p.m)
	}
	copy(p.tail[0], a[p.r+64*p.m:])
	copy(p.tail[1], b[p.r+64*p.m:])
	block2(&sa, &sb, &p.tail[0][0], &p.tail[1][0], len(p.tail[0])/64)
	for i := range 8 {
		binary.BigEndian.PutUint32(da[4*i:], sa[i])
		binary.BigEndian.PutUint32(db[4*i:], sb[i])
	}
}
