package verity

import (
	"errors"
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// holeFinder answers "where is data" with SEEK_DATA/SEEK_HOLE, caching the
// last answer so a file without holes costs two lseek calls in all.
type holeFinder struct {
	f       *os.File
	valid   bool
	q, d, h int64 // from q: hole until d, data until h
}

func newHoleFinder(f *os.File) *holeFinder { return &holeFinder{f: f} }

// dataRanges returns the byte ranges holding data within [a, b). ok is false
// when the file system cannot tell (then read everything).
func (hf *holeFinder) dataRanges(a, b int64) (rs [][2]int64, ok bool) {
	off := a
	for off < b {
		if !hf.valid || off < hf.q || off >= hf.h {
			d, err := hf.f.Seek(off, unix.SEEK_DATA)
			h := int64(0)
			switch {
			case errors.Is(err, unix.ENXIO):
				d, h = math.MaxInt64, math.MaxInt64
			case err != nil:
				return nil, false
			default:
				if h, err = hf.f.Seek(d, unix.SEEK_HOLE); err != nil {
					return nil, false
				}
			}
			if d < off || h <= d && d != math.MaxInt64 {
				return nil, false
			}
			hf.valid, hf.q, hf.d, hf.h = true, off, d, h
		}
		if off < hf.d {
			off = hf.d
			continue
		}
		end := min(hf.h, b)
		rs = append(rs, [2]int64{off, end})
		off = end
	}
	return rs, true
}
