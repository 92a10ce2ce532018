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
