// Package progress draws a one-line progress report (label, percentage, bar,
// MiB done of total, MiB/s, elapsed:ETA) on stderr for long work, and
// nothing at all unless stderr is a terminal, TERM is not "dumb" and the
// tool was not given --quiet.
//
// The line is drawn by github.com/schollz/progressbar/v3. New draws it at
// 0% at once (so even short work shows that it ran). The work itself only
// touches an atomic counter (Add, Set, or the io wrappers): one goroutine
// per Bar pushes the counter into the library's bar at most 10 times a
// second (Interval), and the library redraws it (plain "\r" line redraws,
// no colours; the bar narrows to fit the terminal). Done erases the line, so
// what the tool prints afterwards (a summary, an error) starts on a clean
// line, and a tool's stdout is never touched.
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
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Interval is the minimum time between two redraws.
const Interval = 100 * time.Millisecond

// Bar reports the progress of one piece of work of a known size in bytes.
type Bar struct {
	total int64
	done  atomic.Int64
	pb    *progressbar.ProgressBar

	stop     chan struct{}
	finished chan struct{}
	once     sync.Once
	stopTick func()
	pushes   int // counts pushed into pb so far (push goroutine; tests)
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	return f != nil && term.IsTerminal(int(f.Fd()))
}

// Enabled reports whether New would draw: stderr is a terminal, TERM is not
// "dumb" and quiet is false. A command can skip progress hooks otherwise.
func Enabled(quiet bool) bool {
	return !quiet && os.Getenv("TERM") != "dumb" && IsTerminal(os.Stderr)
}

// New returns a Bar for total bytes labelled label, drawing on stderr when
// stderr is a terminal, TERM is not "dumb", quiet is false and total is
// positive. Otherwise it returns nil, which is a valid silent Bar that
// writes nothing. Call Done when the work ends (also on failure, before
// printing an error).
func New(label string, total int64, quiet bool) *Bar {
	if total <= 0 || !Enabled(quiet) {
		return nil
	}
	tk := time.NewTicker(Interval)
	// The library's own throttle is a guard only: the ticker already paces
	// the pushes (half the interval, so ticker jitter skips none).
	b := start(label, total, os.Stderr, tk.C, Interval/2)
	b.stopTick = tk.Stop
	return b
}

// start begins pushing the count into a library bar that renders on out, at
// every tick.
func start(label string, total int64, out io.Writer, tick <-chan time.Time, throttle time.Duration) *Bar {
	pb := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(out),
		progressbar.OptionSetDescription(label+" "),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(throttle),
		progressbar.OptionClearOnFinish(),
	)
	_ = pb.RenderBlank() // the 0% line at once (rates and ETA count from now)
	b := &Bar{total: total, pb: pb, stop: make(chan struct{}), finished: make(chan struct{})}
	go b.loop(tick)
	return b
}

func (b *Bar) loop(tick <-chan time.Time) {
	defer close(b.finished)
	for {
		select {
		case <-tick:
			// every tick, also without news: elapsed time and ETA move on
			_ = b.pb.Set64(min(b.done.Load(), b.total))
			b.pushes++
		case <-b.stop:
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

// Done stops the redraws and erases the line (when one was drawn). It is
// idempotent.
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
		// with OptionClearOnFinish, Finish only blanks a drawn line
		_ = b.pb.Finish()
	})
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
