//go:build !unix

package cli

import "os"

// tryLock: no flock here; the lock file is only advisory presence.
func tryLock(f *os.File) (held bool, err error) { return true, nil }
