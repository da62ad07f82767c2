package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/ecr-preflight/ecr-preflight/certs"
	"github.com/ecr-preflight/ecr-preflight/internal/metrics"
	"github.com/ecr-preflight/ecr-preflight/webhook"
)

// serveDeps are what serve builds for itself unless a test provides them.
type serveDeps struct {
	// checker replaces the engine built from the engine flags.
	checker webhook.Checker
	// registry replaces controller-runtime's metrics registry.
	registry registry
	// certPoll shortens the certificate re-read interval.
	certPoll time.Duration
}

// registry is where metrics are registered and read from.
type registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// newLogger builds the process logger and hands it to controller-runtime
// and client-go, so every log line shares one format.
func newLogger(w io.Writer, format logFormat, verbosity int) logr.Logger {
	opts := &slog.HandlerOptions{Level: slog.Level(-verbosity)}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if format == logText {
		h = slog.NewTextHandler(w, opts)
	}
	log := logr.FromSlogHandler(h)
	ctrllog.SetLogger(log)
	klog.SetLogger(log)
	return log
}

// runServe wires the webhook and serves until ctx ends, then drains.
func runServe(ctx context.Context, o *ServeOptions, deps serveDeps, log logr.Logger) error {
	// Local, cheap failures first: a bad certificate directory should not
	// wait on AWS configuration to be reported.
	files, err := certs.NewFiles(o.CertDir)
	if err != nil {
		return err
	}
	if deps.certPoll > 0 {
		files.WithPollInterval(deps.certPoll)
	}
	reg := deps.registry
	if reg == nil {
		reg = ctrlmetrics.Registry
	}
	rec, err := metrics.NewRecorder(reg)
	if err != nil {
		return err
	}
	checker := deps.checker
	if checker == nil {
		// The recorder doubles as the AWS layer's observer, so AWS calls
		// and cache hits show on the same /metrics as admissions.
		engine, err := buildEngine(ctx, o.Engine, rec, slog.New(logr.ToSlogHandler(log.WithName("preflight"))))
		if err != nil {
			return err
		}
		checker = engine
	}
	d := &drain{delay: o.ShutdownDelay}
	serveCtx := d.after(ctx, log)
	wopts := o.webhookOptions(checker, rec)
	log.Info("starting ecr-preflight webhook", "mode", o.Mode, "standalone", o.Standalone,
		"nodeRoles", o.NodeRoleARNs, "port", o.Port, "admissionTimeout", o.AdmissionTimeout)
	if o.Standalone {
		err = runStandalone(serveCtx, o, wopts, files, d, reg, log)
	} else {
		err = runManager(serveCtx, o, wopts, files, d, log)
	}
	if err != nil {
		return fmt.Errorf("serving: %w", err)
	}
	log.Info("stopped")
	return nil
}

// tlsOptions serve the certificate files, TLS 1.2 or later, and HTTP/1.1
// only unless HTTP/2 is asked for.
func (o *ServeOptions) tlsOptions(files *certs.Files) []func(*tls.Config) {
	return []func(*tls.Config){
		files.TLSOption,
		func(c *tls.Config) {
			c.MinVersion = tls.VersionTLS12
			if !o.EnableHTTP2 {
				c.NextProtos = []string{"http/1.1"}
			}
		},
	}
}

// drain implements --shutdown-delay. controller-runtime stops serving as
// soon as its context ends, while the Service still routes admissions to
// this pod for a few seconds; failing readiness first and stopping later
// lets the endpoints move away before connections are refused.
type drain struct {
	delay    time.Duration
	draining atomic.Bool
}

// after returns a context that ends delay after parent ends, reporting
// not ready in between.
func (d *drain) after(parent context.Context, log logr.Logger) context.Context {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	go func() {
		<-parent.Done()
		d.draining.Store(true)
		log.Info("termination requested; not ready, serving until the shutdown delay ends", "delay", d.delay)
		time.Sleep(d.delay)
		cancel()
	}()
	return ctx
}

// check is a readiness check failing while draining.
func (d *drain) check(*http.Request) error {
	if d.draining.Load() {
		return errors.New("shutting down")
	}
	return nil
}
