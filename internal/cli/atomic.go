package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
)

// File is an output being written under a temporary name next to its final
// path. Commit makes it appear under the final name (fsync, rename, fsync of
// the directory); until then a failure or a signal removes it, so no partial
// artifact ever carries a final name.
type File struct {
	*os.File
	final string
	done  bool
}

var (
	pendingMu sync.Mutex
	pending   = map[*File]struct{}{}
)

// Create opens a temporary file beside path with the given permissions
// less the umask, as open(2) would apply them (0644 for images; use 0600
// for anything key-derived).
func Create(path string, perm os.FileMode) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// Under exitMu: a signal cleanup either runs after the temporary is
	// registered (and removes it) or holds exitMu until os.Exit (and no
	// temporary appears after it).
	exitMu.Lock()
	defer exitMu.Unlock()
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if err := f.Chmod(perm &^ os.FileMode(umask)); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	af := &File{File: f, final: path}
	pendingMu.Lock()
	pending[af] = struct{}{}
	pendingMu.Unlock()
	return af, nil
}

// Umask is the process's file mode creation mask (0 where there is none).
func Umask() os.FileMode { return os.FileMode(umask) }

// SetPerm changes the file's permissions to perm less the umask, as Create
// applies them (e.g. 0600 while it holds plaintext, 0644 once encrypted).
func (f *File) SetPerm(perm os.FileMode) error {
	if err := f.File.Chmod(perm &^ os.FileMode(umask)); err != nil {
		return fmt.Errorf("chmod %s: %w", f.final, err)
	}
	return nil
}

// Final is the name the file gets on Commit.
func (f *File) Final() string { return f.final }

// Commit syncs, closes and renames the file to its final name.
func (f *File) Commit() error {
	if f.done {
		return nil
	}
	if err := f.Sync(); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", f.final, err)
	}
	if err := f.File.Close(); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", f.final, err)
	}
	// Under exitMu: a signal cleanup either runs before the rename (and the
	// temporary goes) or after it (and sees the final path as committed).
	exitMu.Lock()
	if err := os.Rename(f.Name(), f.final); err != nil {
		exitMu.Unlock()
		f.Abort()
		return fmt.Errorf("write %s: %w", f.final, err)
	}
	f.forget()
	markCommitted(f.final)
	exitMu.Unlock()
	if d, err := os.Open(filepath.Dir(f.final)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Abort closes and removes the temporary file. Safe to call after Commit.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.File.Close()
	os.Remove(f.Name())
	f.forget()
}

func (f *File) forget() {
	f.done = true
	pendingMu.Lock()
	delete(pending, f)
	pendingMu.Unlock()
}

// exitMu serialises the end of a run. The signal watcher takes it for its
// cleanup and keeps it until its os.Exit, so a main goroutine that fails
// meanwhile (its files closed under it) blocks in cleanupAll instead of
// printing a second error line, and a run that has succeeded cannot exit 0
// while its outputs are being removed (UndoOnFailure).
var exitMu sync.Mutex

func cleanupAll() {
	exitMu.Lock()
	defer exitMu.Unlock()
	cleanupLocked()
}

func cleanupLocked() {
	pendingMu.Lock()
	files := make([]*File, 0, len(pending))
	for f := range pending {
		files = append(files, f)
	}
	pendingMu.Unlock()
	for _, f := range files {
		f.Abort()
	}
	undoAll()      // UndoOnFailure paths (undo.go)
	restoreAll()   // RestoreOnFailure functions (undo.go)
	releaseLocks() // LockDir locks (lock.go)
}

// watchSignals removes pending temporary files on SIGINT/SIGTERM and exits 1
// with a one-line message.
func watchSignals() (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	quit := make(chan struct{})
	stopped := false // guarded by exitMu
	go func() {
		select {
		case s := <-ch:
			exitMu.Lock() // never released: os.Exit below
			if stopped {
				// the run ended first: its outcome and outputs stand
				exitMu.Unlock()
				return
			}
			cleanupLocked()
			fmt.Fprintf(os.Stderr, "interrupted by %v; partial outputs removed\n", s)
			os.Exit(ExitFailure)
		case <-quit:
		}
	}()
	return func() {
		exitMu.Lock()
		stopped = true
		signal.Stop(ch)
		close(quit)
		exitMu.Unlock()
	}
}

// WriteFileAtomic writes data to path through Create/Commit.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// WriteJSON writes v as indented JSON (with a final newline) atomically.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return WriteFileAtomic(path, append(b, '\n'), 0o644)
}
