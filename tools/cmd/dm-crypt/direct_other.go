//go:build !linux

package main

import "os"

type directWriter struct{ f *os.File }

func newDirectWriter(f *os.File) *directWriter { return &directWriter{f: f} }

func (w *directWriter) WriteAt(p []byte, off int64) (int, error) { return w.f.WriteAt(p, off) }

func (w *directWriter) Close() error { return nil }

func adviseSequential(*os.File) {}
