package cli

import "sync"

var (
	restoreMu sync.Mutex
	restores  []func()
)

// RestoreOnFailure registers fn to run if the command fails, panics or is
// stopped by SIGINT/SIGTERM/SIGHUP, after the temporary files and the
// UndoOnFailure paths are removed: for outputs written in place, which no
// rename can take back (e.g. truncating a file that was grown back to its
// size). fn must be quick and safe to run while other goroutines of the run
// are still writing (on a signal they are not stopped first). Nothing runs
// when the command succeeds.
func RestoreOnFailure(fn func()) {
	restoreMu.Lock()
	restores = append(restores, fn)
	restoreMu.Unlock()
}

// restoreAll runs the RestoreOnFailure functions, newest first, once.
func restoreAll() {
	restoreMu.Lock()
	fns := restores
	restores = nil
	restoreMu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}
