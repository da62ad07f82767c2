package certs

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

// File names inside the certificate directory, as kubernetes.io/tls
// Secrets store them.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

// Files serves the certificate in a directory and reloads it when the
// files change. It is a manager.Runnable, and also runs on its own.
type Files struct {
	dir     string
	watcher *certwatcher.CertWatcher
}

// NewFiles loads dir/tls.crt and dir/tls.key. A missing or bad pair is an
// error now rather than a TLS handshake failure later.
func NewFiles(dir string) (*Files, error) {
	w, err := certwatcher.New(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("loading serving certificate from %s (want %s and %s): %w", dir, CertFile, KeyFile, err)
	}
	return &Files{dir: dir, watcher: w}, nil
}

// WithPollInterval sets how often the files are re-read in addition to
// file-system events. Kubernetes updates mounted Secrets by swapping a
// symlink, which not every watcher reports, so polling is the backstop.
func (f *Files) WithPollInterval(d time.Duration) *Files {
	f.watcher.WithWatchInterval(d)
	return f
}

// Start watches the files until ctx is done.
func (f *Files) Start(ctx context.Context) error {
	if err := f.watcher.Start(ctx); err != nil {
		return fmt.Errorf("watching serving certificate in %s: %w", f.dir, err)
	}
	return nil
}

// NeedLeaderElection is false: every replica serves.
func (f *Files) NeedLeaderElection() bool { return false }

// GetCertificate returns the current certificate, for tls.Config.
func (f *Files) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.watcher.GetCertificate(hello)
}

// TLSOption points a webhook server's TLS config at these files (for
// webhook.Options.TLSOpts).
func (f *Files) TLSOption(c *tls.Config) {
	c.GetCertificate = f.GetCertificate
}
