//go:build unix

package cli

import "syscall"

// umask is the process's file mode creation mask, read once at start-up
// (reading it means setting it; nothing creates files during init).
var umask = func() uint32 {
	m := syscall.Umask(0o22)
	syscall.Umask(m)
	return uint32(m)
}()
