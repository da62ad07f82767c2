package loopback_test

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/ecr-preflight/ecr-preflight/internal/testutil/loopback"
)

func TestPortCanBeBound(t *testing.T) {
	p := loopback.Port(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatalf("port %d is not free: %v", p, err)
	}
	_ = l.Close()
}

func TestBufferKeepsConcurrentWrites(t *testing.T) {
	var b loopback.Buffer
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { _, _ = b.Write([]byte("x")) })
	}
	wg.Wait()
	if got := b.String(); got != strings.Repeat("x", 50) {
		t.Fatalf("got %q", got)
	}
}
