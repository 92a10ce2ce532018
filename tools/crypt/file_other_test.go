//go:build !linux

package crypt

import "time"

// fileChunk is the chunk size of the mapped path (none here).
func fileChunk() int64 { return ChunkSize }

// processCPU is unknown here (0: no cpu-MB/s metric).
func processCPU() time.Duration { return 0 }
