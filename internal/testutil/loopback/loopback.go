// Package loopback holds the small pieces every test that runs servers or
// processes on this machine needs: a free loopback port, and a buffer that a
// child process (or a logger's goroutines) may write while the test reads it.
// Network tests only ever listen on 127.0.0.1.
package loopback

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
)

// FreePort returns a port on 127.0.0.1 that was free a moment ago. A
// process that binds it later may lose a race with another; it then fails
// with "address already in use", which its caller reports.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free loopback port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Port is FreePort for tests: it fails tb instead of returning an error.
func Port(tb testing.TB) int {
	tb.Helper()
	p, err := FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// Buffer is a bytes.Buffer safe for concurrent writes and reads.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
