package cli

import (
	"os"
	"sync"
)

var (
	undoMu    sync.Mutex
	undoPaths []string
)

// UndoOnFailure registers a path this run created under its final name (for
// example a committed File whose companion outputs are not written yet): if
// the command then fails (cli.Main gets an error or a panic) or is stopped by
// SIGINT/SIGTERM/SIGHUP, the path is removed with the temporary files, so a
// failed run leaves all of its outputs or none. Nothing is removed when the
// command succeeds. Call it right after the Commit.
func UndoOnFailure(path string) {
	undoMu.Lock()
	undoPaths = append(undoPaths, path)
	undoMu.Unlock()
}

// undoAll removes the registered paths (newest first).
func undoAll() {
	undoMu.Lock()
	paths := undoPaths
	undoPaths = nil
	undoMu.Unlock()
	for i := len(paths) - 1; i >= 0; i-- {
		os.Remove(paths[i])
	}
}
