package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

// File names inside the certificate directory, as kubernetes.io/tls
// Secrets store them.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

// awaitInterval is how often AwaitFiles looks for files that are not
// there yet, unless WithPollInterval says otherwise.
const awaitInterval = time.Second

// Files serves the certificate in a directory and reloads it when the
// files change. It is a manager.Runnable, and also runs on its own.
type Files struct {
	dir     string
	poll    time.Duration // 0: certwatcher's default
	watcher atomic.Pointer[certwatcher.CertWatcher]
	// written wakes Start while it waits for the first files.
	written chan struct{}
}

// NewFiles loads dir/tls.crt and dir/tls.key. A missing or bad pair is an
// error now rather than a TLS handshake failure later.
func NewFiles(dir string) (*Files, error) {
	f := AwaitFiles(dir)
	w, err := f.load()
	if err != nil {
		return nil, err
	}
	f.watcher.Store(w)
	return f, nil
}

// AwaitFiles serves dir/tls.crt and dir/tls.key once they exist: until
// then GetCertificate fails (so TLS handshakes and the readiness check do),
// and Start waits for them. For certificates this process writes itself
// (see Rotation).
func AwaitFiles(dir string) *Files {
	return &Files{dir: dir, written: make(chan struct{}, 1)}
}

func (f *Files) load() (*certwatcher.CertWatcher, error) {
	w, err := certwatcher.New(filepath.Join(f.dir, CertFile), filepath.Join(f.dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("loading serving certificate from %s (want %s and %s): %w", f.dir, CertFile, KeyFile, err)
	}
	if f.poll > 0 {
		w.WithWatchInterval(f.poll)
	}
	return w, nil
}

// WithPollInterval sets how often the files are re-read in addition to
// file-system events. Kubernetes updates mounted Secrets by swapping a
// symlink, which not every watcher reports, so polling is the backstop.
// Call it before Start.
func (f *Files) WithPollInterval(d time.Duration) *Files {
	f.poll = d
	if w := f.watcher.Load(); w != nil {
		w.WithWatchInterval(d)
	}
	return f
}

// Dir is the directory served.
func (f *Files) Dir() string { return f.dir }

// Start watches the files until ctx is done, first waiting for them if
// they were not there yet.
func (f *Files) Start(ctx context.Context) error {
	w := f.watcher.Load()
	if w == nil {
		w = f.await(ctx)
		if w == nil {
			return nil // ctx ended first
		}
	}
	if err := w.Start(ctx); err != nil {
		return fmt.Errorf("watching serving certificate in %s: %w", f.dir, err)
	}
	return nil
}

// await loads the files as soon as they are there, looking again when told
// they were written and every poll interval; nil when ctx ends first.
func (f *Files) await(ctx context.Context) *certwatcher.CertWatcher {
	interval := awaitInterval
	if f.poll > 0 {
		interval = f.poll
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if w, err := f.load(); err == nil {
			f.watcher.Store(w)
			return w
		}
		select {
		case <-ctx.Done():
			return nil
		case <-f.written:
		case <-tick.C:
		}
	}
}

// wrote tells a waiting Start that files were written.
func (f *Files) wrote() {
	select {
	case f.written <- struct{}{}:
	default:
	}
}

// NeedLeaderElection is false: every replica serves.
func (f *Files) NeedLeaderElection() bool { return false }

// GetCertificate returns the current certificate, for tls.Config.
func (f *Files) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	w := f.watcher.Load()
	if w == nil {
		return nil, fmt.Errorf("no serving certificate in %s yet", f.dir)
	}
	c, err := w.GetCertificate(hello)
	if err == nil && c == nil {
		err = errors.New("no serving certificate loaded")
	}
	return c, err
}

// TLSOption points a webhook server's TLS config at these files (for
// webhook.Options.TLSOpts).
func (f *Files) TLSOption(c *tls.Config) {
	c.GetCertificate = f.GetCertificate
}
