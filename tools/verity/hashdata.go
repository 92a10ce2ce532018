package verity

import (
	"bytes"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
)

// chunkBytes is the amount of data one worker hashes per job.
const chunkBytes = 256 << 10

var zeroBlock [MaxBlockSize]byte

// hasher computes one block digest for a format version and salt.
type hasher struct {
	newH    func() hash.Hash
	ds      int
	version int
	salt    []byte
	// isSHA256 allows the two-stream SHA-256 path (pair2).
	isSHA256 bool
}

func newHasher(p Params) *hasher {
	nh, ds, _ := newHash(p.Hash)
	return &hasher{newH: nh, ds: ds, version: p.Version, salt: p.Salt, isSHA256: p.Hash == "sha256"}
}

// sum writes the digest of block into dst[:ds] using the scratch state st.
func (h *hasher) sum(st hash.Hash, dst, block []byte) {
	st.Reset()
	if h.version == 1 {
		st.Write(h.salt)
	}
	st.Write(block)
	if h.version == 0 {
		st.Write(h.salt)
	}
	st.Sum(dst[:0])
}

// blockRange is a run [a, b) of block indexes within a chunk.
type blockRange struct{ a, b int }

type chunkJob struct {
	first   uint64 // first data block of the chunk
	n       int    // data blocks in the chunk
	ranges  []blockRange
	all     bool // read every block (no hole information)
	buf     []byte
	digests []byte
	err     error
	done    chan struct{}
}

// level0 streams the digests of every data block, in order, to emit. Each
// call of emit gets the digests of a run of consecutive blocks (a multiple of
// the digest size); the slice is only valid during the call.
type level0 struct {
	data    io.ReaderAt
	l       *Layout
	h       *hasher
	dbs     int
	workers int
	zeroDg  []byte
	holes   *holeFinder
	prog    func(int64)
}

func newLevel0(data io.ReaderAt, l *Layout, p Params, o Options) (*level0, error) {
	workers := o.workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	z := &level0{data: data, l: l, h: newHasher(p), dbs: p.DataBlockSize, workers: workers, prog: o.Progress}
	z.zeroDg = make([]byte, z.h.ds)
	z.h.sum(z.h.newH(), z.zeroDg, zeroBlock[:z.dbs])
	if f, ok := data.(*os.File); ok {
		fi, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("stat data: %w", err)
		}
		size := int64(l.DataBlocks) * int64(z.dbs)
		if fi.Mode().IsRegular() {
			if fi.Size() < size {
				return nil, fmt.Errorf("%w: data file has %d bytes, want %d", ErrDataSize, fi.Size(), size)
			}
			z.holes = newHoleFinder(f)
		}
	}
	return z, nil
}

// plan fills in which blocks of j must be read (the others lie in holes).
func (z *level0) plan(j *chunkJob) {
	j.ranges = j.ranges[:0]
	j.all = true
	if z.holes == nil {
		return
	}
	base := int64(j.first) * int64(z.dbs)
	end := base + int64(j.n)*int64(z.dbs)
	rs, ok := z.holes.dataRanges(base, end)
	if !ok {
		z.holes = nil
		return
	}
	j.all = false
	dbs := int64(z.dbs)
	for _, r := range rs {
		a := int((r[0] - base) / dbs)
		b := int((r[1] - base + dbs - 1) / dbs)
		if k := len(j.ranges); k > 0 && j.ranges[k-1].b >= a {
			if b > j.ranges[k-1].b {
				j.ranges[k-1].b = b
			}
			continue
		}
		j.ranges = append(j.ranges, blockRange{a, b})
	}
}

// process reads and hashes the blocks of j.
func (z *level0) process(j *chunkJob, st hash.Hash, p2 *pair2) {
	ds, dbs := z.h.ds, z.dbs
	j.digests = j.digests[:j.n*ds]
	hashRun := func(a, b int) error {
		if a >= b {
			return nil
		}
		buf := j.buf[:(b-a)*dbs]
		off := (int64(j.first) + int64(a)) * int64(dbs)
		if n, err := z.data.ReadAt(buf, off); n < len(buf) {
			if err == nil || err == io.EOF {
				return fmt.Errorf("%w: data ends before byte %d", ErrDataSize, off+int64(len(buf)))
			}
			return fmt.Errorf("read data at byte %d: %w", off+int64(n), err)
		}
		blk := func(i int) []byte { return buf[(i-a)*dbs : (i-a+1)*dbs] }
		dg := func(i int) []byte { return j.digests[i*ds : (i+1)*ds] }
		pend := -1 // a block waiting for a partner (two-stream SHA-256)
		for i := a; i < b; i++ {
			switch {
			case bytes.Equal(blk(i), zeroBlock[:dbs]):
				copy(dg(i), z.zeroDg)
			case p2 == nil:
				z.h.sum(st, dg(i), blk(i))
			case pend < 0:
				pend = i
			default:
				p2.sum(dg(pend), dg(i), blk(pend), blk(i))
				pend = -1
			}
		}
		if pend >= 0 {
			z.h.sum(st, dg(pend), blk(pend))
		}
		return nil
	}
	fillZero := func(a, b int) {
		for i := a; i < b; i++ {
			copy(j.digests[i*ds:], z.zeroDg)
		}
	}
	maxRun := len(j.buf) / dbs
	run := func(a, b int) error {
		for a < b {
			e := min(b, a+maxRun)
			if err := hashRun(a, e); err != nil {
				return err
			}
			a = e
		}
		return nil
	}
	if j.all {
		j.err = run(0, j.n)
		return
	}
	next := 0
	for _, r := range j.ranges {
		fillZero(next, r.a)
		if err := run(r.a, r.b); err != nil {
			j.err = err
			return
		}
		next = r.b
	}
	fillZero(next, j.n)
}

func (z *level0) newJob(per int) *chunkJob {
	return &chunkJob{
		buf:     make([]byte, per*z.dbs),
		digests: make([]byte, 0, per*z.h.ds),
		done:    make(chan struct{}, 1),
	}
}

// progress reports the data bytes up to the end of j as done.
func (z *level0) progress(j *chunkJob) {
	if z.prog != nil {
		z.prog((int64(j.first) + int64(j.n)) * int64(z.dbs))
	}
}

// run hashes all data blocks and hands the digests to emit in order.
func (z *level0) run(emit func([]byte) error) error {
	per := max(1, chunkBytes/z.dbs)
	total := z.l.DataBlocks
	nextJob := func(j *chunkJob, first uint64) {
		j.first = first
		j.n = int(min(uint64(per), total-first))
		j.err = nil
		z.plan(j)
	}
	if z.workers == 1 {
		j := z.newJob(per)
		st, p2 := z.h.newH(), newPair2(z.h, z.dbs)
		for first := uint64(0); first < total; first += uint64(j.n) {
			nextJob(j, first)
			z.process(j, st, p2)
			if j.err != nil {
				return j.err
			}
			if err := emit(j.digests); err != nil {
				return err
			}
			z.progress(j)
		}
		return nil
	}

	depth := 2 * z.workers
	free := make(chan *chunkJob, depth)
	for range depth {
		free <- z.newJob(per)
	}
	work := make(chan *chunkJob, depth)
	order := make(chan *chunkJob, depth)
	stop := make(chan struct{})
	workersDone := make(chan struct{})
	go func() { // producer: plans chunks in order
		defer close(work)
		defer close(order)
		for first := uint64(0); first < total; {
			var j *chunkJob
			select {
			case j = <-free:
			case <-stop:
				return
			}
			nextJob(j, first)
			first += uint64(j.n)
			order <- j
			work <- j
		}
	}()
	for w := 0; w < z.workers; w++ {
		go func() {
			st, p2 := z.h.newH(), newPair2(z.h, z.dbs)
			for j := range work {
				z.process(j, st, p2)
				j.done <- struct{}{}
			}
			workersDone <- struct{}{}
		}()
	}
	var err error
	for j := range order {
		<-j.done
		if err == nil {
			err = j.err
			if err == nil {
				err = emit(j.digests)
			}
			if err != nil {
				close(stop)
			} else {
				z.progress(j)
			}
		}
		free <- j
	}
	for w := 0; w < z.workers; w++ {
		<-workersDone
	}
	return err
}
