package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	"github.com/ecr-preflight/ecr-preflight/certs"
	"github.com/ecr-preflight/ecr-preflight/webhook"
)

// runStandalone serves admission on a bare webhook server, with health and
// metrics on small HTTP servers of their own: no manager, no API server.
func runStandalone(ctx context.Context, o *ServeOptions, wopts webhook.Options, files *certs.Files, d *drain, reg registry, log logr.Logger) error {
	srv := newWebhookServer(o, files, d, log)
	if err := webhook.RegisterWithServer(srv, wopts); err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return files.Start(ctx) })
	g.Go(func() error { return srv.Start(ctx) })
	if o.HealthProbeBindAddress != "0" {
		mux := http.NewServeMux()
		// The same endpoints the manager serves, so probes fit both modes.
		mux.Handle("/healthz", http.StripPrefix("/healthz", &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}))
		ready := http.StripPrefix("/readyz", &healthz.Handler{Checks: map[string]healthz.Checker{
			"webhook": srv.StartedChecker(),
			"drain":   d.check,
		}})
		mux.Handle("/readyz", ready)
		mux.Handle("/readyz/", ready)
		g.Go(func() error { return serveHTTP(ctx, "health probes", o.HealthProbeBindAddress, mux, log) })
	}
	if o.MetricsBindAddress != "0" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		g.Go(func() error { return serveHTTP(ctx, "metrics", o.MetricsBindAddress, mux, log) })
	}
	return g.Wait()
}

// serveHTTP serves h on addr until ctx ends.
func serveHTTP(ctx context.Context, what, addr string, h http.Handler, log logr.Logger) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for %s on %s: %w", what, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("serving "+what, "address", l.Addr().String())
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving %s: %w", what, err)
	}
	return nil
}
