// Command directread is a guest-side test helper for tests/suites/61-integrity-kernel.sh:
// it reads whole blocks of a block device with O_DIRECT into an aligned buffer (one
// pread per block) and prints one line per block: "<block> ok" or "<block> <ERRNO>"
// (EILSEQ, EIO, ...). busybox dd cannot do this exactly for 512-byte blocks (its buffer
// is not aligned, and errors spread over the page). Build it static (CGO_ENABLED=0).
//
//	directread DEV BLOCK_SIZE BLOCK...
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: directread DEV BLOCK_SIZE BLOCK...")
		os.Exit(2)
	}
	bs, err := strconv.Atoi(os.Args[2])
	if err != nil || bs < 512 || bs&(bs-1) != 0 {
		fmt.Fprintln(os.Stderr, "directread: bad block size")
		os.Exit(2)
	}
	fd, err := syscall.Open(os.Args[1], syscall.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "directread: open %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	raw := make([]byte, bs+4096)
	off := 4096 - int(uintptr(unsafe.Pointer(&raw[0]))&4095)
	buf := raw[off : off+bs]
	for _, a := range os.Args[3:] {
		b, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "directread: bad block %q\n", a)
			os.Exit(2)
		}
		n, err := syscall.Pread(fd, buf, b*int64(bs))
		var en syscall.Errno
		switch {
		case err == nil && n == bs:
			fmt.Println(b, "ok")
		case errors.As(err, &en):
			fmt.Println(b, errnoName(en))
		default:
			fmt.Println(b, "short", n)
		}
	}
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EILSEQ:
		return "EILSEQ"
	case syscall.EIO:
		return "EIO"
	case syscall.EINVAL:
		return "EINVAL"
	}
	return fmt.Sprintf("errno%d", int(e))
}
