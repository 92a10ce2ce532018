//go:build !linux

package fastaes

import "testing"

type cpuClock struct{}

func startCPU(b *testing.B) *cpuClock                   { b.ResetTimer(); return &cpuClock{} }
func (c *cpuClock) report(b *testing.B, bytesPerOp int) {}
