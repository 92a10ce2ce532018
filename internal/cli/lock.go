package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// LockName is the file LockDir creates (and removes on unlock) in the
// directory it locks.
const LockName = ".rules_dm.lock"

// ErrLocked is wrapped by LockDir's error when another process (or another
// LockDir call) holds the directory.
var ErrLocked = errors.New("in use by another build")

type lockedError struct{ dir string }

func (e *lockedError) Error() string {
	return fmt.Sprintf("outdir %s is %v (lock %s held)", e.dir, ErrLocked, filepath.Join(e.dir, LockName))
}

func (e *lockedError) Unwrap() error { return ErrLocked }

// dirLock is a held directory lock.
type dirLock struct {
	f    *os.File
	path string
	once sync.Once
}

var (
	locksMu sync.Mutex
	locks   = map[*dirLock]struct{}{}
)

// LockDir takes an exclusive, non-blocking lock on dir: flock(2) on
// <dir>/LockName, created if needed. It fails at once, with an error that
// wraps ErrLocked ("outdir DIR is in use by another build"), when the lock
// is held elsewhere. unlock removes the lock file and releases the lock; it is
// idempotent. A failed command (cli.Main) and SIGINT/SIGTERM release every
// held lock as they remove the temporary files. The lock dies with the
// process (flock), so a killed build never leaves a stale lock, only possibly
// an empty lock file.
func LockDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, LockName)
	for tries := 0; ; tries++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("lock outdir %s: %w", dir, err)
		}
		held, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock outdir %s: %w", dir, err)
		}
		if !held {
			f.Close()
			return nil, &lockedError{dir: dir}
		}
		// A previous holder removes the file before releasing it: if we
		// locked such an orphan, the name now points elsewhere (or nowhere).
		fst, err1 := f.Stat()
		pst, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(fst, pst) {
			l := &dirLock{f: f, path: path}
			locksMu.Lock()
			locks[l] = struct{}{}
			locksMu.Unlock()
			return l.release, nil
		}
		f.Close()
		if tries >= 100 {
			return nil, fmt.Errorf("lock outdir %s: the lock file keeps being replaced", dir)
		}
	}
}

// release removes the lock file while still holding the lock, then drops it.
func (l *dirLock) release() {
	l.once.Do(func() {
		os.Remove(l.path)
		l.f.Close()
		locksMu.Lock()
		delete(locks, l)
		locksMu.Unlock()
	})
}

// releaseLocks releases every lock still held (failure or signal).
func releaseLocks() {
	locksMu.Lock()
	held := make([]*dirLock, 0, len(locks))
	for l := range locks {
		held = append(held, l)
	}
	locksMu.Unlock()
	for _, l := range held {
		l.release()
	}
}
