// Package cli holds the conventions every rules_dm command shares: exit codes
// (0 ok, 1 failure, 2 bad usage), one-line errors, key loading that never echoes
// key material, and atomic output files (temp file, fsync, rename; removed on
// failure or SIGINT/SIGTERM).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// Exit codes of every rules_dm command.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// UsageError marks a bad command line (unknown flag or value, missing
// argument). Commands exit 2 on it.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a *UsageError.
func Usagef(format string, a ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, a...)}
}

// IsUsage reports whether err is (or wraps) a *UsageError.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

// Main runs fn with os.Args[1:] and exits with the contract's code. Errors are
// printed as one line "<prog>: <error>" on stderr. A panic is reported as one
// line too (and the temp files are removed), never as a trace.
func Main(prog string, fn func(args []string) error) {
	os.Exit(run(prog, fn, os.Args[1:], os.Stderr))
}

func run(prog string, fn func(args []string) error, args []string, stderr io.Writer) (code int) {
	stop := watchSignals()
	defer stop()
	defer func() {
		if r := recover(); r != nil {
			cleanupAll()
			if os.Getenv("RULES_DM_TRACEBACK") != "" {
				debug.PrintStack()
			}
			fmt.Fprintf(stderr, "%s: internal error: %v\n", prog, oneLine(fmt.Sprint(r)))
			code = ExitFailure
		}
	}()
	err := fn(args)
	if err == nil {
		return ExitOK
	}
	cleanupAll()
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	fmt.Fprintf(stderr, "%s: %s\n", prog, oneLine(err.Error()))
	if IsUsage(err) {
		return ExitUsage
	}
	return ExitFailure
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", "; ")
}

// NewFlagSet returns a flag set whose parse errors become *UsageError
// (one line, no usage dump). --help prints the defaults to stdout.
func NewFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fs.SetOutput(os.Stdout)
		fmt.Fprintf(os.Stdout, "usage of %s:\n", name)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// Parse parses args with fs, turning errors into *UsageError. Flags may follow
// positional arguments (as with GNU tools): "format DATA HASH --salt -" works.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, flag.ErrHelp // the flag package has printed fs.Usage
			}
			return nil, &UsageError{Msg: oneLine(err.Error())}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// ParseSize parses a non-negative decimal byte or block count.
func ParseSize(name, s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, Usagef("%s: %q is not a non-negative integer", name, s)
	}
	return v, nil
}

// OneOf returns a usage error unless v is one of allowed.
func OneOf(name, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return Usagef("unknown %s %q (want one of: %s)", name, v, strings.Join(allowed, ", "))
}
