package progress

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf is a bytes.Buffer safe for the draw goroutine and the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSilentWhenNotTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Fatal("a regular file is a terminal")
	}
	old := os.Stderr
	os.Stderr = f
	defer func() { os.Stderr = old }()
	for _, quiet := range []bool{false, true} {
		b := New("x", 1<<20, quiet)
		if b != nil {
			t.Fatalf("quiet=%v: New returned an active bar with stderr a file", quiet)
		}
		// A nil bar accepts everything and wraps nothing.
		b.Add(5)
		b.Set(10)
		var buf bytes.Buffer
		if b.Writer(&buf) != io.Writer(&buf) || b.Reader(&buf) != io.Reader(&buf) {
			t.Error("nil bar wrapped a Writer/Reader")
		}
		if b.ReaderAt(f) != io.ReaderAt(f) || b.WriterAt(f) != io.WriterAt(f) {
			t.Error("nil bar wrapped an *os.File")
		}
		b.Done()
	}
	if fi, _ := f.Stat(); fi.Size() != 0 {
		t.Errorf("wrote %d bytes to a non-terminal stderr", fi.Size())
	}
}

func TestQuietOnTerminal(t *testing.T) {
	pt, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skip("no pty:", err)
	}
	defer pt.Close()
	if !IsTerminal(pt) {
		t.Skip("pty master is not a terminal here")
	}
	old := os.Stderr
	os.Stderr = pt
	defer func() { os.Stderr = old }()
	t.Setenv("TERM", "xterm")
	if b := New("x", 1, true); b != nil {
		t.Error("--quiet bar is active")
	}
	b := New("x", 1, false)
	if b == nil {
		t.Error("bar on a terminal is silent")
	}
	b.Done()
	t.Setenv("TERM", "dumb")
	if b := New("x", 1, false); b != nil {
		t.Error("bar active with TERM=dumb")
	}
}

func TestDrawsOnlyOnTicks(t *testing.T) {
	var out syncBuf
	tick := make(chan time.Time)
	t0 := time.Unix(1000, 0)
	now := t0
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	b := start("fmt", 100<<20, &out, clock, tick)
	for range 1000 {
		b.Add(10 << 10) // many updates, no tick: nothing drawn
	}
	if out.String() != "" {
		t.Fatalf("drew without a tick: %q", out.String())
	}
	mu.Lock()
	now = t0.Add(2 * time.Second)
	mu.Unlock()
	tick <- now
	tick <- now // the second send returns once the first draw is done
	b.Done()
	b.Done()
	s := out.String()
	if b.draws != 2 {
		t.Errorf("%d draws for 2 ticks", b.draws)
	}
	want := "\rfmt  10%  9/100 MiB  5.1 MB/s  ETA 0:18\x1b[K"
	if !strings.HasPrefix(s, want) || !strings.HasSuffix(s, "\r\x1b[K") {
		t.Errorf("output %q, want it to start with %q and end erasing the line", s, want)
	}
}

func TestRateLimit(t *testing.T) {
	var out syncBuf
	tk := time.NewTicker(Interval)
	defer tk.Stop()
	b := start("x", 1<<30, &out, time.Now, tk.C)
	end := time.Now().Add(350 * time.Millisecond)
	for time.Now().Before(end) {
		b.Add(1)
	}
	b.Done()
	if b.draws > 4 {
		t.Errorf("%d redraws in 350 ms (limit 10/s)", b.draws)
	}
}

func TestWrappersCount(t *testing.T) {
	var out syncBuf
	b := start("x", 100, &out, time.Now, nil)
	defer b.Done()
	r := b.ReaderAt(strings.NewReader(strings.Repeat("a", 100)))
	p := make([]byte, 10)
	r.ReadAt(p, 50)
	r.ReadAt(p, 0) // earlier offset: no step back
	if got := b.done.Load(); got != 60 {
		t.Errorf("after ReadAt: %d, want high-water mark 60", got)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "w"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b.WriterAt(f).WriteAt(p, 85)
	if got := b.done.Load(); got != 95 {
		t.Errorf("after WriteAt: %d, want 95", got)
	}
	var sink bytes.Buffer
	b2 := start("y", 100, &out, time.Now, nil)
	defer b2.Done()
	b2.Writer(&sink).Write(p)
	io.Copy(io.Discard, b2.Reader(strings.NewReader("abcde")))
	if got := b2.done.Load(); got != 15 {
		t.Errorf("Writer+Reader counted %d, want 15", got)
	}
}

func TestLine(t *testing.T) {
	for _, c := range []struct {
		done, total int64
		el          float64
		want        string
	}{
		{0, 1 << 30, 0, "v   0%  0/1024 MiB"},
		{1 << 29, 1 << 30, 1, "v  50%  512/1024 MiB  536.9 MB/s  ETA 0:01"},
		{1 << 30, 1 << 30, 2, "v 100%  1024/1024 MiB  536.9 MB/s"},
		{1 << 20, 1 << 40, 1, "v   0%  1/1048576 MiB  1.0 MB/s  ETA 291:16:15"},
	} {
		if got := Line("v", c.done, c.total, c.el); got != c.want {
			t.Errorf("Line(%d, %d, %v) = %q, want %q", c.done, c.total, c.el, got, c.want)
		}
	}
}
