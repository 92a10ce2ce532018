//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package progress

import "os"

// IsTerminal reports whether f is a terminal (never, on this platform).
func IsTerminal(f *os.File) bool { return false }
