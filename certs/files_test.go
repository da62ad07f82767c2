package certs_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/certs"
	"github.com/ecr-preflight/ecr-preflight/certs/certstest"
)

func TestFilesReload(t *testing.T) {
	dir := t.TempDir()
	first, err := certstest.Write(dir, "first")
	if err != nil {
		t.Fatal(err)
	}
	f, err := certs.NewFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	f.WithPollInterval(50 * time.Millisecond)
	if got := leaf(t, f); !bytes.Equal(got, first) {
		t.Fatal("first certificate not loaded")
	}
	startFiles(t, f)

	second, err := certstest.Write(dir, "second")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !bytes.Equal(leaf(t, f), second) {
		if time.Now().After(deadline) {
			t.Fatal("rotated certificate never loaded")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func leaf(t *testing.T, f *certs.Files) []byte {
	t.Helper()
	c, err := f.GetCertificate(nil)
	if err != nil || c == nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	return c.Certificate[0]
}

func TestFilesMissing(t *testing.T) {
	dir := t.TempDir()
	_, err := certs.NewFiles(dir)
	if err == nil || !strings.Contains(err.Error(), "loading serving certificate from "+dir) {
		t.Errorf("got %v", err)
	}
}

// TestAwaitFiles: without files, handshakes fail and Start waits; once the
// files appear they are served and reloaded like NewFiles'.
func TestAwaitFiles(t *testing.T) {
	dir := t.TempDir()
	f := certs.AwaitFiles(dir).WithPollInterval(50 * time.Millisecond)
	if c, err := f.GetCertificate(nil); err == nil || c != nil || !strings.Contains(err.Error(), "no serving certificate in "+dir+" yet") {
		t.Fatalf("before the files: %v, %v", c, err)
	}
	startFiles(t, f)
	for _, name := range []string{"first", "second"} {
		want, err := certstest.Write(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			if c, err := f.GetCertificate(nil); err == nil && bytes.Equal(c.Certificate[0], want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s certificate never served", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestAwaitFilesStops: Start returns when ctx ends before any file came.
func TestAwaitFilesStops(t *testing.T) {
	f := certs.AwaitFiles(t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := f.Start(ctx); err != nil {
		t.Errorf("Start: %v", err)
	}
}

// startFiles runs f's reload loop until the test ends, failing it if Start
// returns an error.
func startFiles(t *testing.T, f *certs.Files) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
}
