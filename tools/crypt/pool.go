package crypt

import (
	"sync"
	"sync/atomic"
)

// forChunks processes chunks 0..chunks-1 on up to workers goroutines, each
// taking the next chunk in turn. newWorker runs once in each goroutine
// before its first chunk (per-worker buffers, per-goroutine settings) and
// returns the function that processes one chunk. The first error stops
// every worker after its current chunk and is returned.
func forChunks(chunks, workers int64, newWorker func() func(idx int64) error) error {
	workers = min(workers, chunks)
	var (
		next     atomic.Int64
		failed   atomic.Bool
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work := newWorker()
			for !failed.Load() {
				idx := next.Add(1) - 1
				if idx >= chunks {
					return
				}
				if err := work(idx); err != nil {
					errOnce.Do(func() { firstErr = err })
					failed.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}
