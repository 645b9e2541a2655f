package testutil

import (
	"bytes"
	"sync"
	"testing"
)

// Buffer collects output written concurrently (a logger, a process's
// output copier) while a test reads it. Changed is signalled after writes,
// so a test can wait for a line instead of sleeping.
type Buffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

// NewBuffer returns an empty Buffer.
func NewBuffer() *Buffer { return &Buffer{changed: make(chan struct{}, 1)} }

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	select {
	case b.changed <- struct{}{}:
	default:
	}
	return n, err
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Changed receives a value after one or more writes.
func (b *Buffer) Changed() <-chan struct{} { return b.changed }

// Lines parses what was written as contract log lines, failing the test on
// any "action:" line that breaks the grammar.
func (b *Buffer) Lines(t testing.TB) []Line {
	t.Helper()
	lines, err := ParseAll(b.String())
	if err != nil {
		t.Fatal(err)
	}
	return lines
}
