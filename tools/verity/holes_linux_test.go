package verity

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHoleFinder(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "holes.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const mib = 1 << 20
	if err := f.Truncate(64 * mib); err != nil {
		t.Fatal(err)
	}
	hf := newHoleFinder(f)
	rs, ok := hf.dataRanges(0, 64*mib)
	if !ok || len(rs) != 0 {
		if ok && len(rs) == 1 && rs[0] == [2]int64{0, 64 * mib} {
			t.Skip("file system reports no holes")
		}
		t.Fatalf("all-hole file: ranges %v ok %v, want none", rs, ok)
	}
	if _, err := f.WriteAt([]byte("x"), 10*mib+5); err != nil {
		t.Fatal(err)
	}
	hf = newHoleFinder(f)
	rs, ok = hf.dataRanges(0, 64*mib)
	if !ok || len(rs) != 1 || rs[0][0] > 10*mib+5 || rs[0][1] <= 10*mib+5 || rs[0][1]-rs[0][0] > 2*mib {
		t.Fatalf("one data byte at 10 MiB: ranges %v ok %v", rs, ok)
	}
	// Queries in pieces agree with one big query (the cache must not lie).
	hf = newHoleFinder(f)
	var got [][2]int64
	for a := int64(0); a < 64*mib; a += 256 << 10 {
		r, ok := hf.dataRanges(a, a+256<<10)
		if !ok {
			t.Fatal("piecewise query failed")
		}
		got = append(got, r...)
	}
	if len(got) == 0 || got[0][0] != rs[0][0] || got[len(got)-1][1] != rs[0][1] {
		t.Errorf("piecewise ranges %v, whole %v", got, rs)
	}
}
