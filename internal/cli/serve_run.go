package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/ecr-preflight/ecr-preflight/certs"
	"github.com/ecr-preflight/ecr-preflight/internal/imageplatform"
	"github.com/ecr-preflight/ecr-preflight/internal/metrics"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools/discover"
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
	files, err := o.certFiles()
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
	// The recorder doubles as the AWS layer's observer, so AWS calls and
	// cache hits show on the same /metrics as admissions.
	env, err := buildAWS(ctx, o.Engine, rec)
	if err != nil {
		return err
	}
	checker := deps.checker
	if checker == nil {
		engine, err := buildEngine(env, o.Engine, imageplatform.Mode(o.Pools.PlatformCheck), o.AdmissionTimeout/10, slog.New(logr.ToSlogHandler(log.WithName("preflight"))))
		if err != nil {
			return err
		}
		checker = engine
	}
	d := newDrain(o)
	serveCtx := d.after(ctx, log)
	wopts := o.webhookOptions(checker, rec)
	log.Info("starting ecr-preflight webhook", "mode", o.Mode, "standalone", o.Standalone,
		"nodeRoles", o.Pools.NodeRoles, "nodePoolsConfig", o.Pools.ConfigFile, "clusterName", o.Pools.ClusterName,
		"discoverNodes", o.Pools.nodeDiscovery(!o.Standalone), "platformCheck", o.Pools.PlatformCheck,
		"auditInterval", o.AuditInterval, "port", o.Port, "admissionTimeout", o.AdmissionTimeout)
	discovery := func(reader client.Reader) (*discover.Provider, error) {
		return buildPools(o.Pools, env.cfg, reader, log.WithName("nodepools"))
	}
	if o.Standalone {
		var p *discover.Provider
		if p, err = discovery(nil); err != nil {
			return err
		}
		go func() { _ = p.Start(serveCtx) }() // never fails: errors are Incomplete
		wopts.Pools = poolsOf(p)
		err = runStandalone(serveCtx, o, wopts, files, d, reg, log)
	} else {
		err = runManager(serveCtx, o, wopts, files, d, discovery, reg, log)
	}
	if err != nil {
		return fmt.Errorf("serving: %w", err)
	}
	log.Info("stopped")
	return nil
}

// poolsOf is the webhook's view of discovery: placements from its
// snapshot, instant once the first one exists.
func poolsOf(p *discover.Provider) webhook.Pools {
	return webhook.Pools{Snapshot: p.Snapshot, Ready: p.Ready}
}

// certFiles are the serving certificate's files: there now, or, with
// --cert-rotation, written into --cert-dir once the manager runs (see
// runManager).
func (o *ServeOptions) certFiles() (*certs.Files, error) {
	if o.CertRotation {
		return certs.AwaitFiles(o.CertDir), nil
	}
	return certs.NewFiles(o.CertDir)
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

// drain implements --shutdown-delay and the stop after it.
//
// The Service still routes admissions to this pod for a few seconds after
// SIGTERM; failing readiness first and stopping the webhook server only
// after the delay lets the endpoints move away before connections are
// refused. While draining, every answer closes its connection, so a
// client's next request opens a new one, which goes to another pod, instead
// of racing our close of an idle one.
//
// Once the delay is over the webhook server stops accepting and gives the
// admissions in flight grace to finish on their own budget (see
// webhookServer.stop).
type drain struct {
	delay time.Duration
	// grace bounds the stop: the admission budget plus drainMargin.
	grace    time.Duration
	draining atomic.Bool
}

const (
	// drainMargin is what an admission in flight may take beyond its
	// budget once the server stops: reading the request, writing the
	// answer.
	drainMargin = time.Second
	// newConnWait is how long, once the listener is closed, a connection
	// accepted just before may take to send its request.
	newConnWait = 500 * time.Millisecond
)

func newDrain(o *ServeOptions) *drain {
	return &drain{delay: o.ShutdownDelay, grace: o.AdmissionTimeout + drainMargin}
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
		log.Info("shutdown delay over; stopping", "grace", d.grace)
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

// closeWhileDraining makes every answer given while draining close its
// connection (HTTP/2: a GOAWAY once the connection's streams are done).
func (d *drain) closeWhileDraining(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// webhookServer serves the admission webhooks in place of
// controller-runtime's webhook server, whose stop loses requests: it gives
// each request a context that ends when the server stops, so admissions in
// flight are cancelled and answer "could not verify"; and its
// http.Server.Shutdown drops, unanswered, a request read after it began on
// a connection accepted just before. Registration still goes through
// controller-runtime's server, for the same paths and webhook metrics; only
// serving is done here.
type webhookServer struct {
	// reg holds the registered hooks and their mux; it is never started.
	reg     crwebhook.Server
	addr    string
	tlsOpts []func(*tls.Config)
	drain   *drain
	log     logr.Logger
	started atomic.Bool
	fresh   freshConns
}

var _ crwebhook.Server = (*webhookServer)(nil)

func newWebhookServer(o *ServeOptions, files *certs.Files, d *drain, log logr.Logger) *webhookServer {
	return &webhookServer{
		reg:     crwebhook.NewServer(crwebhook.Options{Host: o.BindAddress, Port: o.Port}),
		addr:    net.JoinHostPort(o.BindAddress, strconv.Itoa(o.Port)),
		tlsOpts: o.tlsOptions(files),
		drain:   d,
		log:     log.WithName("webhook-server"),
	}
}

// NeedLeaderElection is false: every replica serves.
func (*webhookServer) NeedLeaderElection() bool { return false }

// Register serves hook at path.
func (s *webhookServer) Register(path string, hook http.Handler) { s.reg.Register(path, hook) }

// WebhookMux is the mux the hooks are registered on.
func (s *webhookServer) WebhookMux() *http.ServeMux { return s.reg.WebhookMux() }

// StartedChecker is healthy once the server is started and completes a
// TLS handshake, as controller-runtime's is.
func (s *webhookServer) StartedChecker() healthz.Checker {
	// Only reachability and a loadable certificate are checked, not trust.
	cfg := &tls.Config{InsecureSkipVerify: true}
	return func(*http.Request) error {
		if !s.started.Load() {
			return errors.New("webhook server has not been started yet")
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.addr, cfg)
		if err != nil {
			return fmt.Errorf("webhook server is not reachable: %w", err)
		}
		return conn.Close()
	}
}

// Start serves until ctx ends, then stops without losing a request: see
// stop.
func (s *webhookServer) Start(ctx context.Context) error {
	// As controller-runtime: HTTP/2 offered unless an option narrows it.
	cfg := &tls.Config{NextProtos: []string{"h2"}}
	for _, op := range s.tlsOpts {
		op(cfg)
	}
	ln, err := tls.Listen("tcp", s.addr, cfg)
	if err != nil {
		return fmt.Errorf("listening for webhooks: %w", err)
	}
	srv := &http.Server{
		Handler: s.drain.closeWhileDraining(s.reg.WebhookMux()),
		// Each admission runs on its own budget (--admission-timeout),
		// not on the server's lifetime: stopping never cancels one. A
		// client hanging up still does, through the connection.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ConnState:   s.fresh.track,
		// controller-runtime's limits.
		MaxHeaderBytes:    1 << 20,
		IdleTimeout:       90 * time.Second,
		ReadHeaderTimeout: 32 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s.started.Store(true)
	s.log.Info("serving webhooks", "address", ln.Addr().String())
	select {
	case err := <-served:
		return fmt.Errorf("serving webhooks: %w", err)
	case <-ctx.Done():
	}
	return s.stop(srv, ln, served)
}

// stop closes the listener, lets connections accepted before send their
// request, closes idle connections and waits for the answers in flight, at
// most grace in all; then it closes whatever is left.
func (s *webhookServer) stop(srv *http.Server, ln net.Listener, served <-chan error) error {
	grace := s.drain.grace
	deadline := time.Now().Add(grace)
	s.log.Info("stopping: no new connections, admissions in flight finish", "within", grace)
	_ = ln.Close()
	<-served //nolint:errcheck // Serve returns http.ErrServerClosed once its listener is closed
	if n := s.fresh.settle(min(newConnWait, grace)); n > 0 {
		s.log.Info("closed connections that sent no request in time", "connections", n)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	// Closes idle keep-alive connections at once, and each busy one after
	// its answer.
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("requests still in flight %v after the webhook server began to stop; connections closed", grace)
	}
	s.log.Info("webhook server stopped")
	return nil
}

// freshConns tracks connections that have not sent a request yet.
// http.Server.Shutdown answers no request read after it began, so a
// connection accepted just before the listener closed must get its
// request in first.
type freshConns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// track is the server's ConnState hook.
func (f *freshConns) track(c net.Conn, state http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if state != http.StateNew {
		delete(f.conns, c)
		return
	}
	if f.conns == nil {
		f.conns = make(map[net.Conn]struct{})
	}
	f.conns[c] = struct{}{}
}

// settle waits up to d for every tracked connection to send its request
// (or close), then closes those that have not and says how many.
func (f *freshConns) settle(d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		f.mu.Lock()
		n := len(f.conns)
		if n == 0 || !time.Now().Before(deadline) {
			for c := range f.conns {
				_ = c.Close()
				delete(f.conns, c)
			}
			f.mu.Unlock()
			return n
		}
		f.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
}
