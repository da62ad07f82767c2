package harness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/certs/certstest"

	"github.com/ecr-preflight/ecr-preflight/internal/testutil/loopback"
)

const (
	// readyTimeout bounds the wait for /readyz: the manager connects to the
	// API server and starts its webhook server first.
	readyTimeout = 60 * time.Second
	// stopTimeout is how long SIGTERM gets before SIGKILL.
	stopTimeout = 10 * time.Second
	// AdmissionTimeout is the webhook's --admission-timeout. The default
	// (2s) assumes warm caches and a nearby AWS; a cold check against moto
	// on two busy cores, under -race elsewhere, needs more. It stays below
	// Hook.TimeoutSeconds, as the README asks.
	AdmissionTimeout = 5 * time.Second
)

// ServeOptions choose how ecr-preflight serve runs.
type ServeOptions struct {
	// Mode is --mode: warn (empty), deny or dryrun.
	Mode string
	// Standalone runs without the API server (--standalone): no namespace
	// labels. Otherwise the manager reads Env.Kubeconfig.
	Standalone bool
	// Args are extra flags.
	Args []string
	// NoSeedRole leaves out --node-role-arn for the seed's role, for a
	// webhook that discovers its node pools instead.
	NoSeedRole bool
	// AWSEndpoint is the webhook's AWS_ENDPOINT_URL: empty is Env.Moto,
	// another is e.g. an ecrstub.Stub in front of it
	// (ecrstub.Start(t, env.Moto).URL), to make ECR fail a lookup.
	AWSEndpoint string
}

// Webhook is a running `ecr-preflight serve` subprocess.
type Webhook struct {
	// URL is the HTTPS base, https://127.0.0.1:PORT.
	URL string
	// CABundle is the PEM certificate the API server must trust: the
	// self-signed serving certificate (IP SAN 127.0.0.1).
	CABundle []byte
	// Args is the command line, for narration and failure messages.
	Args []string

	metricsURL string
	healthURL  string
	cmd        *exec.Cmd
	output     *loopback.Buffer
	done       chan struct{}
	stopOnce   sync.Once
}

// Serve starts `ecr-preflight serve` for the seed's node role on free
// loopback ports, with a fresh serving certificate, AWS through moto (or
// o.AWSEndpoint), and waits until /readyz answers. It is stopped (process
// group) when t ends; if t failed, its log is printed.
func (e *Env) Serve(t testing.TB, o ServeOptions) *Webhook {
	t.Helper()
	certDir := t.TempDir()
	if _, err := certstest.Write(certDir, "ecr-preflight-e2e"); err != nil {
		t.Fatalf("writing the webhook's serving certificate: %v", err)
	}
	ca, err := os.ReadFile(filepath.Join(certDir, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = loopback.FreePort(); err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
	}
	mode := o.Mode
	if mode == "" {
		mode = "warn"
	}
	args := []string{"serve",
		"--mode", mode,
		"--bind-address", "127.0.0.1",
		"--port", strconv.Itoa(ports[0]),
		"--cert-dir", certDir,
		"--metrics-bind-address", "127.0.0.1:" + strconv.Itoa(ports[1]),
		"--health-probe-bind-address", "127.0.0.1:" + strconv.Itoa(ports[2]),
		"--admission-timeout", AdmissionTimeout.String(),
		// Nothing routes to this process but the test: no need to drain.
		"--shutdown-delay", "0s",
		// The suite and the demo fix a policy and re-apply within a second;
		// a person takes longer than the default interval (5s).
		"--reverify-interval", "0s",
		"--log-format", "text",
		"-v", "1",
	}
	if !o.NoSeedRole {
		// The seed's role alone, as every pod's pool: no Nodes another
		// case creates may change this webhook's answers.
		args = append(args, "--node-role-arn", e.Seed.RoleARN, "--discover-nodes=false")
	}
	if o.Standalone {
		args = append(args, "--standalone")
	} else {
		args = append(args, "--kubeconfig", e.Kubeconfig)
	}
	args = append(args, o.Args...)

	endpoint := o.AWSEndpoint
	if endpoint == "" {
		endpoint = e.Moto.URL
	}
	w := e.StartServe(t, ServeProcess{
		Args:       args,
		Env:        awsEnv(endpoint),
		URL:        "https://127.0.0.1:" + strconv.Itoa(ports[0]),
		HealthPort: ports[2],
		MetricsURL: "http://127.0.0.1:" + strconv.Itoa(ports[1]) + "/metrics",
	})
	w.CABundle = ca
	return w
}

// ServeProcess is an `ecr-preflight serve` command line to run as it is,
// e.g. the one a Helm chart's Deployment holds.
type ServeProcess struct {
	// Args follow the binary: "serve" and its flags.
	Args []string
	// Env is the whole environment of the process (see AWSEnv).
	Env []string
	// URL is the HTTPS base the webhook serves on, for Webhook.URL.
	URL string
	// HealthPort is the port of /readyz on 127.0.0.1.
	HealthPort int
	// MetricsURL is where /metrics is scraped (empty: not scraped).
	MetricsURL string
}

// StartServe starts e.Binary with p.Args and p.Env and waits until /readyz
// answers 200. It is stopped (process group) when t ends; if t failed, its
// log is printed.
func (e *Env) StartServe(t testing.TB, p ServeProcess) *Webhook {
	t.Helper()
	w := &Webhook{
		URL:        p.URL,
		Args:       append([]string{e.Binary}, p.Args...),
		metricsURL: p.MetricsURL,
		healthURL:  "http://127.0.0.1:" + strconv.Itoa(p.HealthPort) + "/readyz",
		output:     &loopback.Buffer{},
		done:       make(chan struct{}),
	}
	w.cmd = exec.Command(e.Binary, p.Args...)
	w.cmd.Env = p.Env
	w.cmd.Stdout, w.cmd.Stderr = w.output, w.output
	// Own process group: Stop reaches anything it spawns, and a Ctrl-C in
	// the demo's terminal does not kill it behind the cleanup's back.
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", e.Binary, err)
	}
	go func() {
		_ = w.cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() {
		w.Stop()
		if t.Failed() {
			t.Logf("ecr-preflight serve (%s) log:\n%s", w.URL, w.Logs())
		}
	})
	if err := w.waitReady(readyTimeout); err != nil {
		t.Fatalf("ecr-preflight serve did not become ready: %v\ncommand: %v\nlog:\n%s", err, w.Args, w.Logs())
	}
	return w
}

// ValidateURL is the URL of the Deployment validator.
func (w *Webhook) ValidateURL() string { return w.URL + "/validate-apps-v1-deployment" }

// Logs returns what the process has logged so far.
func (w *Webhook) Logs() string { return w.output.String() }

// Running reports whether the process is still alive.
func (w *Webhook) Running() bool {
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

// Stop ends the process group: SIGTERM, then SIGKILL after stopTimeout.
// Safe to call more than once.
func (w *Webhook) Stop() {
	w.stopOnce.Do(func() {
		pgid := w.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-w.done:
		case <-time.After(stopTimeout):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-w.done
		}
	})
}

// waitReady polls /readyz until it answers 200, the process exits, or
// timeout passes.
func (w *Webhook) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.healthURL, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: HTTP %d", w.healthURL, resp.StatusCode)
		}
		last = err
		select {
		case <-w.done:
			return errors.New("the process exited")
		case <-ctx.Done():
			return fmt.Errorf("no 200 from %s within %s (last: %w)", w.healthURL, timeout, last)
		case <-tick.C:
		}
	}
}
