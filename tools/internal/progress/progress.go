// Package progress draws a one-line progress report (percentage, MB/s, ETA)
// on stderr for long work, and nothing at all unless stderr is a terminal and
// the tool was not given --quiet. Redraws are rate-limited (at most 10 a
// second, from one goroutine), so the hot path is one atomic add or store.
//
// Typical use in a command:
//
//	bar := progress.New("dm-verity format", size, *quiet)
//	defer bar.Done()
//	err := lib.Work(bar.ReaderAt(data), ...) // or call bar.Set / bar.Add
//
// A nil *Bar, and the Bar New returns when disabled, accept every method and
// do nothing, and its wrappers return their argument unchanged (so type
// assertions such as *os.File for SEEK_DATA keep working when disabled; when
// enabled, prefer Set/Add from the library over wrapping such a reader).
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Interval is the minimum time between two redraws.
const Interval = 100 * time.Millisecond

// Bar reports the progress of one piece of work of a known size in bytes.
type Bar struct {
	label string
	total int64
	done  atomic.Int64
	out   io.Writer
	now   func() time.Time
	start time.Time

	stop     chan struct{}
	finished chan struct{}
	once     sync.Once
	stopTick func()
	drawn    bool // a line is on screen (draw goroutine only)
	draws    int  // redraws so far (tests)
}

// New returns a Bar for total bytes labelled label, drawing on stderr when
// stderr is a terminal, TERM is not "dumb" and quiet is false. Otherwise it
// returns nil, which is a valid silent Bar. Call Done when the work ends
// (also on failure, before printing an error).
func New(label string, total int64, quiet bool) *Bar {
	if quiet || os.Getenv("TERM") == "dumb" || !IsTerminal(os.Stderr) {
		return nil
	}
	tk := time.NewTicker(Interval)
	b := start(label, total, os.Stderr, time.Now, tk.C)
	b.stopTick = tk.Stop
	return b
}

// start begins drawing on out at every tick.
func start(label string, total int64, out io.Writer, now func() time.Time, tick <-chan time.Time) *Bar {
	b := &Bar{label: label, total: total, out: out, now: now, start: now(),
		stop: make(chan struct{}), finished: make(chan struct{})}
	go b.loop(tick)
	return b
}

func (b *Bar) loop(tick <-chan time.Time) {
	defer close(b.finished)
	for {
		select {
		case <-tick:
			b.draw()
		case <-b.stop:
			if b.drawn {
				fmt.Fprint(b.out, "\r\x1b[K") // erase the line
			}
			return
		}
	}
}

// Add records n more bytes done. Safe for concurrent use.
func (b *Bar) Add(n int64) {
	if b != nil {
		b.done.Add(n)
	}
}

// Set records that done bytes are done (for work that knows its position,
// holes skipped included). It never moves the count backwards. Safe for
// concurrent use.
func (b *Bar) Set(done int64) {
	if b == nil {
		return
	}
	for {
		old := b.done.Load()
		if done <= old || b.done.CompareAndSwap(old, done) {
			return
		}
	}
}

// Done stops the redraws and erases the line. It is idempotent.
func (b *Bar) Done() {
	if b == nil {
		return
	}
	b.once.Do(func() {
		close(b.stop)
		<-b.finished
		if b.stopTick != nil {
			b.stopTick()
		}
	})
}

func (b *Bar) draw() {
	done := min(b.done.Load(), b.total)
	el := b.now().Sub(b.start).Seconds()
	fmt.Fprint(b.out, "\r"+Line(b.label, done, b.total, el)+"\x1b[K")
	b.drawn = true
	b.draws++
}

// Line formats one report: label, percentage, MiB done of total, MB/s
// (10^6 bytes per second) and ETA, e.g.
// "dm-verity format  42%  430/1024 MiB  350.2 MB/s  ETA 0:02".
func Line(label string, done, total int64, elapsed float64) string {
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	s := fmt.Sprintf("%s %3.0f%%  %d/%d MiB", label, pct, done>>20, total>>20)
	if elapsed <= 0 || done <= 0 {
		return s
	}
	rate := float64(done) / elapsed
	s += fmt.Sprintf("  %.1f MB/s", rate/1e6)
	if left := total - done; left > 0 {
		eta := int64(float64(left)/rate + 0.5)
		if eta >= 3600 {
			s += fmt.Sprintf("  ETA %d:%02d:%02d", eta/3600, eta/60%60, eta%60)
		} else {
			s += fmt.Sprintf("  ETA %d:%02d", eta/60, eta%60)
		}
	}
	return s
}

// ReaderAt wraps r so that reads advance the bar to the highest offset read
// (so parallel readers and skipped holes count as progress). With a nil Bar
// it returns r itself.
func (b *Bar) ReaderAt(r io.ReaderAt) io.ReaderAt {
	if b == nil {
		return r
	}
	return &readerAt{r, b}
}

type readerAt struct {
	r io.ReaderAt
	b *Bar
}

func (c *readerAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.b.Set(off + int64(n))
	return n, err
}

// WriterAt wraps w so that writes advance the bar to the highest offset
// written. With a nil Bar it returns w itself.
func (b *Bar) WriterAt(w io.WriterAt) io.WriterAt {
	if b == nil {
		return w
	}
	return &writerAt{w, b}
}

type writerAt struct {
	w io.WriterAt
	b *Bar
}

func (c *writerAt) WriteAt(p []byte, off int64) (int, error) {
	n, err := c.w.WriteAt(p, off)
	c.b.Set(off + int64(n))
	return n, err
}

// Writer wraps w so that writes add their length to the bar. With a nil Bar
// it returns w itself.
func (b *Bar) Writer(w io.Writer) io.Writer {
	if b == nil {
		return w
	}
	return &writer{w, b}
}

type writer struct {
	w io.Writer
	b *Bar
}

func (c *writer) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.b.Add(int64(n))
	return n, err
}

// Reader wraps r so that reads add their length to the bar. With a nil Bar
// it returns r itself.
func (b *Bar) Reader(r io.Reader) io.Reader {
	if b == nil {
		return r
	}
	return &reader{r, b}
}

type reader struct {
	r io.Reader
	b *Bar
}

func (c *reader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.b.Add(int64(n))
	return n, err
}
