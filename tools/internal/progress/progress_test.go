package progress

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTerm stands for a terminal: a writer safe for the push goroutine and
// the test.
type fakeTerm struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *fakeTerm) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *fakeTerm) String() string {
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
	t.Setenv("TERM", "xterm")
	for _, quiet := range []bool{false, true} {
		b := New("x", 1<<20, quiet)
		if b != nil || Enabled(quiet) {
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
		b.Done()
	}
	var b *Bar // the zero value of a field or variable
	b.Add(1)
	b.Done()
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
	if b := New("x", 1, true); b != nil || Enabled(true) || !Enabled(false) {
		t.Error("--quiet bar is active, or a terminal's is not")
	}
	if b := New("x", 0, false); b != nil {
		t.Error("bar active for empty work")
	}
	b := New("x", 1, false)
	if b == nil {
		t.Error("bar on a terminal is silent")
	}
	b.Done()
	t.Setenv("TERM", "dumb")
	if b := New("x", 1, false); b != nil || Enabled(false) {
		t.Error("bar active with TERM=dumb")
	}
}

// the library's line: label, percentage, 20-cell bar, MiB done/total,
// rate, [elapsed:ETA]
var (
	lineRE  = regexp.MustCompile(`^fmt +10% \|█{2} {18}\| \(10/100 MiB, [0-9.]+ [kMG]?i?B/s\) \[[0-9smh]+:[0-9smh]+\] *$`)
	blankRE = regexp.MustCompile(`^\rfmt +0% \| {20}\| \( 0 B/100 MiB\) \[0s:0s\] *$`)
)

func TestDrawsOnTicksAndDoneErases(t *testing.T) {
	var out fakeTerm
	tick := make(chan time.Time)
	b := start("fmt", 100<<20, &out, tick, 0)
	first := out.String()
	if !blankRE.MatchString(first) {
		t.Fatalf("first line %q, want the 0%% line like %s", first, blankRE)
	}
	for range 1024 {
		b.Add(10 << 10) // many updates, no tick: no redraw
	}
	time.Sleep(10 * time.Millisecond) // a redraw of its own would show by now
	if s := out.String(); s != first {
		t.Fatalf("redrew without a tick: %q", s[len(first):])
	}
	tick <- time.Now()
	tick <- time.Now() // the second send returns once the first push is done
	b.Done()
	drawn := out.String()
	b.Done()
	b.Add(1)
	s := out.String()
	if s != drawn {
		t.Errorf("wrote after Done: %q", s[len(drawn):])
	}
	if b.pushes != 2 {
		t.Errorf("%d pushes for 2 ticks", b.pushes)
	}
	if strings.Contains(s, "\n") {
		t.Errorf("output has a newline: %q", s)
	}
	// the line is drawn at the start of the line, and the last thing
	// written blanks at least its width and returns to column 0
	parts := strings.Split(s, "\r")
	var lines []string
	widest := 0
	for _, p := range parts[2:] { // after the 0% line
		if strings.TrimSpace(p) != "" {
			lines = append(lines, p)
			widest = max(widest, len([]rune(p)))
		}
	}
	if len(lines) == 0 || !lineRE.MatchString(lines[0]) {
		t.Fatalf("no progress line like %s in %q", lineRE, s)
	}
	blank := regexp.MustCompile(`\r( +)\r$`).FindStringSubmatch(s)
	if blank == nil || len(blank[1]) < widest {
		t.Errorf("output %q does not end by blanking the %d-column line", s, widest)
	}
}

func TestDoneWithoutTickErasesTheFirstLine(t *testing.T) {
	var out fakeTerm
	b := start("x", 1<<20, &out, nil, 0)
	first := out.String()
	b.Add(1 << 19)
	b.Done()
	want := first + "\r" + strings.Repeat(" ", len([]rune(first))-1) + "\r"
	if s := out.String(); s != want {
		t.Errorf("Done before any tick: output %q, want %q", s, want)
	}
}

func TestRateLimit(t *testing.T) {
	var out fakeTerm
	tk := time.NewTicker(Interval)
	defer tk.Stop()
	b := start("x", 1<<30, &out, tk.C, Interval/2)
	end := time.Now().Add(350 * time.Millisecond)
	for time.Now().Before(end) {
		b.Add(1)
	}
	b.Done()
	if b.pushes > 4 {
		t.Errorf("%d pushes in 350 ms (limit 10/s)", b.pushes)
	}
	// each draw starts with "\rx ": the 0% line, then one per tick
	if n := strings.Count(out.String(), "\rx "); n > 5 || n < 2 {
		t.Errorf("%d draws in 350 ms, want 2..5", n)
	}
}

func TestWrappersCount(t *testing.T) {
	var out fakeTerm
	b := start("x", 100, &out, nil, 0)
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
	b2 := start("y", 100, &out, nil, 0)
	defer b2.Done()
	b2.Writer(&sink).Write(p)
	io.Copy(io.Discard, b2.Reader(strings.NewReader("abcde")))
	if got := b2.done.Load(); got != 15 {
		t.Errorf("Writer+Reader counted %d, want 15", got)
	}
}
