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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	}()

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
