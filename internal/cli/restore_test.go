package cli

import (
	"bytes"
	"errors"
	"testing"
)

func TestRestoreOnFailure(t *testing.T) {
	var buf bytes.Buffer
	ran := 0
	run("prog", func([]string) error {
		RestoreOnFailure(func() { ran++ })
		return nil
	}, nil, &buf)
	if ran != 0 {
		t.Fatalf("hook ran %d times after a success", ran)
	}
	restores = nil // Main exits right after a success
	ran = 0
	order := ""
	code := run("prog", func([]string) error {
		RestoreOnFailure(func() { order += "a" })
		RestoreOnFailure(func() { order += "b"; ran++ })
		return errors.New("boom")
	}, nil, &buf)
	if code != ExitFailure || ran != 1 || order != "ba" {
		t.Fatalf("code %d, ran %d, order %q", code, ran, order)
	}
	restoreAll()
	if ran != 1 {
		t.Fatal("hooks ran twice")
	}
}
