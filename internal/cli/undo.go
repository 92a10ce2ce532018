package cli

import (
	"os"
	"path/filepath"
	"sync"
)

var (
	undoMu    sync.Mutex
	undoPaths []string
	undoDirs  []string
	committed = map[string]bool{} // final paths committed by this process
)

// UndoOnFailure declares that path, an output this run commits through a
// File (Create/Commit, WriteFileAtomic, WriteJSON), belongs to a set that must
// appear whole or not at all: if the command fails (cli.Main gets an error or
// a panic) or is stopped by SIGINT/SIGTERM/SIGHUP, the path is removed with
// the temporary files, provided this run committed it (a file of an earlier
// run under that name is never touched). Nothing is removed when the command
// succeeds. Call it before the Commit (for example for every output name at
// the start of the run): Commit and the signal cleanup are serialised, so no
// interleaving then leaves a committed path behind.
func UndoOnFailure(path string) {
	undoMu.Lock()
	undoPaths = append(undoPaths, filepath.Clean(path))
	undoMu.Unlock()
}

// UndoDirOnFailure declares a directory this run created for its outputs:
// on failure or signal, after the UndoOnFailure paths are removed, it is
// removed too if it is then empty (never with contents). Declare it only when
// the run itself created it.
func UndoDirOnFailure(dir string) {
	undoMu.Lock()
	undoDirs = append(undoDirs, filepath.Clean(dir))
	undoMu.Unlock()
}

// markCommitted records a final path (Commit, under exitMu).
func markCommitted(path string) {
	undoMu.Lock()
	committed[filepath.Clean(path)] = true
	undoMu.Unlock()
}

// undoAll removes the declared paths this run committed (newest first).
func undoAll() {
	undoMu.Lock()
	paths := undoPaths
	undoPaths = nil
	dirs := undoDirs
	undoDirs = nil
	done := committed
	committed = map[string]bool{}
	undoMu.Unlock()
	for i := len(paths) - 1; i >= 0; i-- {
		if done[paths[i]] {
			os.Remove(paths[i])
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Remove(dirs[i]) // only when empty
	}
}

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
