package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/ecr-preflight/ecr-preflight/certs/certstest"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/loopback"
)

// slowChecker answers as seedChecker after d on average, like an engine
// waiting on AWS, and gives up when its context ends, as the engine does.
// Check times spread from d/2 to 3d/2, so clients that started together do
// not stay in step.
type slowChecker struct {
	d     time.Duration
	calls atomic.Int64
	// cancelled counts checks whose context ended before the answer.
	cancelled atomic.Int32
}

func (c *slowChecker) CheckPools(ctx context.Context, images []string, pl nodepools.Placement) []preflight.Result {
	n := c.calls.Add(1)
	t := time.NewTimer(c.d/2 + time.Duration(n*7919%1000)*c.d/1000)
	defer t.Stop()
	select {
	case <-t.C:
		return seedChecker{}.CheckPools(ctx, images, pl)
	case <-ctx.Done():
		c.cancelled.Add(1)
		out := make([]preflight.Result, len(images))
		for i, img := range images {
			out[i] = preflight.Result{Image: img, Verdict: preflight.VerdictUnknown}
		}
		return out
	}
}

// loadTally is what the load clients saw.
type loadTally struct {
	mu sync.Mutex
	// answered counts correct answers; spanning those whose request was
	// sent before the end of the shutdown delay and answered after it.
	answered, spanning int
	// notAccepted counts requests that reached no server: the dial or the
	// TLS handshake failed, as it must once the listener is closed.
	notAccepted int
	// lost are requests sent on an established connection that got no
	// answer; wrong are answers other than the seed image's denial.
	lost, wrong []string
}

func (l *loadTally) add(f func(*loadTally)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(l)
}

// loadClient sends the seed Deployment to url over its own kept-alive
// connection, one request after the other, until stop is closed.
func loadClient(url string, http2 bool, body []byte, delayEnd *atomic.Int64, stop <-chan struct{}, tally *loadTally) {
	tr := testTransport(http2)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for {
		select {
		case <-stop:
			return
		default:
		}
		// The transport may try twice (a reused connection found closed
		// before anything was written); the last attempt decides.
		var connected, reused atomic.Bool
		trace := &httptrace.ClientTrace{
			GetConn: func(string) { connected.Store(false) },
			GotConn: func(i httptrace.GotConnInfo) {
				connected.Store(true)
				reused.Store(i.Reused)
			},
		}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
			http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			panic(err)
		}
		req.Header.Set("Content-Type", "application/json")
		sent := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			if !connected.Load() {
				// Connection refused or reset before the handshake ended:
				// the listener is closed, a client would try elsewhere.
				tally.add(func(l *loadTally) { l.notAccepted++ })
				time.Sleep(10 * time.Millisecond)
				continue
			}
			tally.add(func(l *loadTally) { l.lost = append(l.lost, fmt.Sprintf("reused=%v: %v", reused.Load(), err)) })
			continue
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		done := time.Now()
		var ar admissionv1.AdmissionReview
		switch {
		case (resp.ProtoMajor == 2) != http2:
			tally.add(func(l *loadTally) { l.wrong = append(l.wrong, "answered over "+resp.Proto) })
		case err != nil:
			tally.add(func(l *loadTally) { l.lost = append(l.lost, "reading the answer: "+err.Error()) })
		case resp.StatusCode != http.StatusOK || json.Unmarshal(b, &ar) != nil || ar.Response == nil:
			tally.add(func(l *loadTally) { l.wrong = append(l.wrong, fmt.Sprintf("HTTP %d: %.200s", resp.StatusCode, b)) })
		case ar.Response.Allowed || ar.Response.Result == nil || ar.Response.Result.Code != http.StatusForbidden ||
			!strings.Contains(ar.Response.Result.Message, "RepositoryPolicyDenies"):
			tally.add(func(l *loadTally) {
				l.wrong = append(l.wrong, fmt.Sprintf("allowed=%v warnings=%q result=%+v", ar.Response.Allowed, ar.Response.Warnings, ar.Response.Result))
			})
		default:
			end := time.Unix(0, delayEnd.Load())
			spans := delayEnd.Load() != 0 && sent.Before(end) && done.After(end.Add(50*time.Millisecond))
			tally.add(func(l *loadTally) {
				l.answered++
				if spans {
					l.spanning++
				}
			})
		}
	}
}

// TestServeShutdownUnderLoad: termination under continuous load loses
// nothing and changes no verdict. Sixteen clients keep sending a Deployment
// with the seed image, each over its own kept-alive connection, to a deny-mode
// server whose checks take 300ms, so requests are always in flight; an
// idle kept-alive connection waits beside them. Termination is requested
// the way SIGTERM requests it. Every request sent on an established
// connection is answered, and every answer is the denial: those in flight
// when the shutdown delay ends finish on their own budget rather than
// answering "could not verify", and none dies with EOF on a kept-alive
// connection. The server exits within delay + admission timeout + margin.
func TestServeShutdownUnderLoad(t *testing.T) {
	t.Run("HTTP/1.1", func(t *testing.T) { testShutdownUnderLoad(t, false) })
	t.Run("HTTP/2", func(t *testing.T) { testShutdownUnderLoad(t, true) })
}

// testTransport keeps one connection to the test's server, over HTTP/2 if
// asked.
func testTransport(http2 bool) *http.Transport {
	return &http.Transport{
		// The test's own throwaway certificate: trust is not under test.
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		MaxIdleConnsPerHost: 1,
		ForceAttemptHTTP2:   http2,
	}
}

func testShutdownUnderLoad(t *testing.T, http2 bool) {
	const (
		clients   = 16
		delay     = 600 * time.Millisecond
		checkTime = 300 * time.Millisecond
		// Far above checkTime: slowness of a busy machine must not
		// turn into a "could not verify" that the test would blame on
		// shutdown.
		budget = 4 * time.Second
	)
	checker := &slowChecker{d: checkTime}
	s := startStandaloneWith(t, checker, func(o *ServeOptions) {
		o.Mode = "deny"
		o.ShutdownDelay = delay
		o.AdmissionTimeout = budget
		o.EnableHTTP2 = http2
	})
	url := s.webhook + "/validate-apps-v1-deployment"
	body := deploymentReview(t, seedImage)

	// An idle kept-alive connection must not hold the server up.
	idle := testTransport(http2)
	defer idle.CloseIdleConnections()
	if resp, err := (&http.Client{Transport: idle}).Post(url, "application/json", bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}

	var (
		tally    loadTally
		delayEnd atomic.Int64
		wg       sync.WaitGroup
	)
	stopClients := make(chan struct{})
	for i := range clients {
		// A pullable image of its own beside the denied one: each client's
		// review is checked on its own, not shared with identical ones.
		body := deploymentReview(t, seedImage, fmt.Sprintf("1234567890.dkr.ecr.us-west-2.amazonaws.com/catalog:%d", i))
		wg.Go(func() { loadClient(url, http2, body, &delayEnd, stopClients, &tally) })
	}
	defer func() {
		select {
		case <-stopClients:
		default:
			close(stopClients)
		}
		wg.Wait()
	}()

	// Every client connected and answered, twice on average.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var answered int
		tally.add(func(l *loadTally) { answered = l.answered })
		if answered >= 2*clients {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("load never got going: %d answers", answered)
		}
		time.Sleep(20 * time.Millisecond)
	}

	start := time.Now()
	delayEnd.Store(start.Add(delay).UnixNano())
	s.stop()
	var took time.Duration
	select {
	case err := <-s.done:
		took = time.Since(start)
		if err != nil {
			t.Errorf("serve: %v", err)
		}
		s.done <- nil // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	close(stopClients)
	wg.Wait()

	tally.mu.Lock()
	defer tally.mu.Unlock()
	t.Logf("stopped after %v: %d answers, %d in flight across the end of the delay, %d not accepted after the listener closed",
		took, tally.answered, tally.spanning, tally.notAccepted)
	for _, l := range tally.lost {
		t.Errorf("lost: %s", l)
	}
	for _, w := range tally.wrong {
		t.Errorf("wrong verdict: %s", w)
	}
	if n := checker.cancelled.Load(); n > 0 {
		t.Errorf("%d checks saw their context cancelled", n)
	}
	if tally.spanning == 0 {
		t.Error("no request was in flight when the shutdown delay ended: the test proves nothing")
	}
	if limit := delay + budget + drainMargin + time.Second; took < delay || took > limit {
		t.Errorf("stopped after %v: want between the %v delay and %v", took, delay, limit)
	}
}

// TestServeShutdownClosesQuietConnections: connections that send nothing
// (an idle keep-alive, a TCP connection that never starts TLS) do not hold
// the stop up: it ends well within the admission budget, without error.
func TestServeShutdownClosesQuietConnections(t *testing.T) {
	s := startStandalone(t, "deny", 0)
	idle := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer idle.CloseIdleConnections()
	if r := s.admitWith(t, &http.Client{Transport: idle}, deploymentReview(t, seedImage)); r.Allowed {
		t.Fatalf("seed image allowed: %+v", r)
	}
	silent, err := net.Dial("tcp", strings.TrimPrefix(s.webhook, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = silent.Close() }()

	start := time.Now()
	s.stop()
	select {
	case err := <-s.done:
		if took := time.Since(start); took > newConnWait+time.Second {
			t.Errorf("stopped after %v; quiet connections held it up", took)
		}
		if err != nil {
			t.Errorf("serve: %v", err)
		}
		s.done <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the silent connection was not closed: %v", err)
	}
}

// TestServeShutdownIsBounded: a request that never finishes arriving does
// not keep the process alive: serve stops admission timeout + margin after
// the delay, saying it cut a request off.
func TestServeShutdownIsBounded(t *testing.T) {
	const budget = 300 * time.Millisecond
	s := startStandaloneWith(t, seedChecker{}, func(o *ServeOptions) {
		o.Mode = "deny"
		o.ShutdownDelay = 0
		o.AdmissionTimeout = budget
	})
	conn, err := tls.Dial("tcp", strings.TrimPrefix(s.webhook, "https://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	const path = "/validate-apps-v1-deployment"
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", path); err != nil {
		t.Fatal(err)
	}
	// The handler is reading the body that never comes.
	deadline := time.Now().Add(10 * time.Second)
	for inFlight(t, path) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the stalled request never reached its handler")
		}
		time.Sleep(10 * time.Millisecond)
	}

	start := time.Now()
	s.stop()
	select {
	case err := <-s.done:
		took := time.Since(start)
		if limit := budget + drainMargin + time.Second; took < budget+drainMargin || took > limit {
			t.Errorf("stopped after %v: want the %v grace, at most %v", took, budget+drainMargin, limit)
		}
		if err == nil || !strings.Contains(err.Error(), "requests still in flight") {
			t.Errorf("serve: %v, want the cut-off reported", err)
		}
		s.done <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// inFlight reads controller-runtime's in-flight gauge for path.
func inFlight(t *testing.T, path string) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "controller_runtime_webhook_requests_in_flight" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "webhook" && l.GetValue() == path {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

func (s *standalone) admitWith(t *testing.T, client *http.Client, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	saved := s.client
	s.client = client
	defer func() { s.client = saved }()
	return s.admit(t, body)
}

// TestOnShutdownSignal: the first signal ends the context, the second
// exits at once; after stop, signals do nothing.
func TestOnShutdownSignal(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	exited := make(chan os.Signal, 2)
	ctx, stop := onShutdownSignal(context.Background(), sigs, func(sig os.Signal) { exited <- sig })
	defer stop()
	if ctx.Err() != nil {
		t.Fatal("ended before any signal")
	}
	sigs <- syscall.SIGTERM
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the first signal did not end the context")
	}
	select {
	case sig := <-exited:
		t.Fatalf("exited on the first signal (%v)", sig)
	default:
	}
	sigs <- os.Interrupt
	select {
	case sig := <-exited:
		if sig != os.Interrupt {
			t.Errorf("exit for %v", sig)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second signal did not exit")
	}

	sigs2 := make(chan os.Signal, 2)
	ctx2, stop2 := onShutdownSignal(context.Background(), sigs2, func(sig os.Signal) { exited <- sig })
	stop2()
	if ctx2.Err() == nil {
		t.Error("stop did not end the context")
	}
	sigs2 <- syscall.SIGTERM
	sigs2 <- syscall.SIGTERM
	time.Sleep(50 * time.Millisecond)
	select {
	case sig := <-exited:
		t.Errorf("exited (%v) after stop", sig)
	default:
	}
}

// serveHelperEnv makes the test binary run serve (see TestServeSignals).
const serveHelperEnv = "ECR_PREFLIGHT_SERVE_HELPER_ARGS"

// TestServeSignalHelper is serve in a process of its own, for
// TestServeSignals; it does nothing in a normal run.
func TestServeSignalHelper(t *testing.T) {
	args := os.Getenv(serveHelperEnv)
	if args == "" {
		t.Skip("helper process only")
	}
	s := Streams{Out: os.Stdout, Err: os.Stderr}
	root := NewRootCommand(s)
	for _, c := range root.Commands() {
		if c.Name() == "serve" {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(newServeCommandWithDeps(s, serveDeps{checker: seedChecker{}, registry: prometheus.NewRegistry()}))
	root.SetArgs(append([]string{"serve"}, strings.Fields(args)...))
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(ExitFail)
	}
	os.Exit(ExitOK)
}

// TestServeSignals: with real signals, SIGTERM starts the drain (not
// ready, still serving) and a second SIGTERM exits at once, long before a
// one-minute shutdown delay ends.
func TestServeSignals(t *testing.T) {
	dir := t.TempDir()
	if _, err := certstest.Write(dir, "signals"); err != nil {
		t.Fatal(err)
	}
	port, health := loopback.Port(t), loopback.Port(t)
	args := fmt.Sprintf("--standalone --bind-address 127.0.0.1 --port %d --cert-dir %s --node-role-arn %s --mode deny "+
		"--metrics-bind-address 0 --health-probe-bind-address 127.0.0.1:%d --shutdown-delay 1m --log-format text",
		port, dir, seedRole, health)
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeSignalHelper$")
	cmd.Env = append(os.Environ(), serveHelperEnv+"="+args)
	var out loopback.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", health)
	waitFor := func(what string, want func(code int) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if resp, err := http.Get(readyz); err == nil {
				_ = resp.Body.Close()
				if want(resp.StatusCode) {
					return
				}
			}
			select {
			case <-exited:
				t.Fatalf("serve exited (%v) before %s:\n%s", waitErr, what, out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("never %s:\n%s", what, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("ready", func(code int) bool { return code == http.StatusOK })

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor("draining", func(code int) bool {
		return code == http.StatusInternalServerError || code == http.StatusServiceUnavailable
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	(&standalone{webhook: fmt.Sprintf("https://127.0.0.1:%d", port), client: client}).admitDenied(t)

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		var ee *exec.ExitError
		if !errors.As(waitErr, &ee) || ee.ExitCode() != ExitFail {
			t.Errorf("exit: %v, want status %d", waitErr, ExitFail)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("exited %v after the second signal", took)
		}
		if !strings.Contains(out.String(), "second signal; exiting at once") {
			t.Errorf("no word of the second signal in:\n%s", out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running after a second SIGTERM:\n%s", out.String())
	}
}

// admitDenied sends the seed Deployment and wants it denied.
func (s *standalone) admitDenied(t *testing.T) {
	t.Helper()
	if r := s.admit(t, deploymentReview(t, seedImage)); r.Allowed {
		t.Errorf("seed image allowed: %+v", r)
	}
}
