//go:build !unix

package cli

var umask uint32
