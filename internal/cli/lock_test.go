//go:build unix

package cli

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestLockDirExclusive(t *testing.T) {
	dir := t.TempDir()
	unlock, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, LockName)); err != nil {
		t.Fatalf("lock file: %v", err)
	}
	_, err = LockDir(dir)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second LockDir: %v, want ErrLocked", err)
	}
	if want := "outdir " + dir + " is in use by another build"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	unlock()
	unlock() // idempotent
	if _, err := os.Stat(filepath.Join(dir, LockName)); !os.IsNotExist(err) {
		t.Fatalf("lock file left after unlock: %v", err)
	}
	unlock2, err := LockDir(dir)
	if err != nil {
		t.Fatalf("LockDir after unlock: %v", err)
	}
	unlock2()
}

func TestLockDirErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(dir, "missing"), file} {
		_, err := LockDir(d)
		if err == nil || errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "lock outdir "+d) {
			t.Errorf("LockDir(%s): %v", d, err)
		}
	}
}

func TestLockDirReleasedOnFailure(t *testing.T) {
	dir := t.TempDir()
	var stderr strings.Builder
	code := run("prog", func([]string) error {
		if _, err := LockDir(dir); err != nil {
			return err
		}
		return errors.New("failed while holding the lock")
	}, nil, &stderr)
	if code != ExitFailure {
		t.Fatalf("exit %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, LockName)); !os.IsNotExist(err) {
		t.Fatalf("lock file left after a failure: %v", err)
	}
	unlock, err := LockDir(dir)
	if err != nil {
		t.Fatalf("lock not released by the failure: %v", err)
	}
	unlock()
}

// Many goroutines race to lock, unlock (which removes the file) and relock:
// never two holders at once, even when one locks an orphaned inode.
func TestLockDirMutualExclusion(t *testing.T) {
	dir := t.TempDir()
	var holders, maxHolders, wins atomic.Int32
	var wg sync.WaitGroup
	deadline := time.Now().Add(300 * time.Millisecond)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				unlock, err := LockDir(dir)
				if err != nil {
					if !errors.Is(err, ErrLocked) {
						t.Error(err)
						return
					}
					continue
				}
				n := holders.Add(1)
				for m := maxHolders.Load(); n > m && !maxHolders.CompareAndSwap(m, n); m = maxHolders.Load() {
				}
				wins.Add(1)
				time.Sleep(50 * time.Microsecond)
				holders.Add(-1)
				unlock()
			}
		}()
	}
	wg.Wait()
	if maxHolders.Load() != 1 || wins.Load() == 0 {
		t.Fatalf("max simultaneous holders %d (want 1), %d acquisitions", maxHolders.Load(), wins.Load())
	}
}

// TestLockDirHelper holds a lock in a child process (see TestLockDirAcrossProcesses).
func TestLockDirHelper(t *testing.T) {
	dir := os.Getenv("RULES_DM_LOCK_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	if _, err := LockDir(dir); err != nil {
		os.Stdout.WriteString("error " + err.Error() + "\n")
		os.Exit(3)
	}
	os.Stdout.WriteString("locked\n")
	time.Sleep(time.Minute) // killed by the parent
	os.Exit(0)
}

func TestLockDirAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockDirHelper$")
	cmd.Env = append(os.Environ(), "RULES_DM_LOCK_HELPER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("helper: %q", line)
	}
	if _, err := LockDir(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("LockDir while another process holds it: %v", err)
	}
	// A killed holder leaves (at most) the file, never the lock.
	cmd.Process.Kill()
	cmd.Wait()
	unlock, err := LockDir(dir)
	if err != nil {
		t.Fatalf("LockDir after the holder died: %v", err)
	}
	unlock()
}

func TestUndoOnFailure(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	// failure: both committed outputs are removed, and the lock released
	code := run("prog", func([]string) error {
		unlock, err := LockDir(dir)
		if err != nil {
			return err
		}
		defer unlock()
		for _, p := range []string{a, b} {
			if err := WriteFileAtomic(p, []byte("x"), 0o644); err != nil {
				return err
			}
			UndoOnFailure(p)
		}
		return errors.New("the manifest could not be written")
	}, nil, io.Discard)
	if code != ExitFailure {
		t.Fatalf("exit %d", code)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left after a failure: %v", ents)
	}
	// success: nothing is removed, and a later failure does not reach back
	code = run("prog", func([]string) error {
		if err := WriteFileAtomic(a, []byte("x"), 0o644); err != nil {
			return err
		}
		UndoOnFailure(a)
		return nil
	}, nil, io.Discard)
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if _, err := os.Stat(a); err != nil {
		t.Fatalf("success removed its output: %v", err)
	}
	// declared before the commit, and a path this run never committed (an
	// earlier build's file) is left alone
	old := filepath.Join(dir, "old.img")
	if err := os.WriteFile(old, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code = run("prog", func([]string) error {
		UndoOnFailure(b)
		UndoOnFailure(old)
		if err := WriteFileAtomic(b, []byte("x"), 0o644); err != nil {
			return err
		}
		return errors.New("later step failed")
	}, nil, io.Discard)
	if _, err := os.Stat(b); code != ExitFailure || !os.IsNotExist(err) {
		t.Fatalf("exit %d, %s: %v", code, b, err)
	}
	if _, err := os.Stat(old); err != nil {
		t.Fatalf("a file this run did not commit was removed: %v", err)
	}
	undoAll() // one run per process in real commands: forget a's registration
}

// TestSignalHelper is a command that writes an output until SIGTERM (see
// TestSignalMidWriteOneLine).
func TestSignalHelper(t *testing.T) {
	dir := os.Getenv("RULES_DM_SIGNAL_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	Main("helper", func([]string) error {
		unlock, err := LockDir(dir)
		if err != nil {
			return err
		}
		defer unlock()
		f, err := Create(filepath.Join(dir, "out.img"), 0o644)
		if err != nil {
			return err
		}
		buf := make([]byte, 64<<10)
		os.Stdout.WriteString("writing\n")
		for {
			if _, err := f.WriteAt(buf, 0); err != nil {
				return err // "file already closed" once the watcher aborted it
			}
		}
	})
}

// SIGTERM while the main goroutine writes: exit 1, one stderr line, nothing
// left (no temporary, no lock file), never a second error from the writer
// whose file was closed under it.
func TestSignalMidWriteOneLine(t *testing.T) {
	for i := 0; i < 10; i++ {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestSignalHelper$")
		cmd.Env = append(os.Environ(), "RULES_DM_SIGNAL_HELPER_DIR="+dir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if line, _ := bufio.NewReader(out).ReadString('\n'); line != "writing\n" {
			cmd.Process.Kill()
			t.Fatalf("helper: %q", line)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != ExitFailure {
			t.Fatalf("run %d: %v, want exit %d", i, err, ExitFailure)
		}
		if s := stderr.String(); strings.Count(s, "\n") != 1 || !strings.HasPrefix(s, "interrupted by terminated") {
			t.Fatalf("run %d: stderr %q, want one line", i, s)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("run %d: left %v", i, ents)
		}
	}
}
