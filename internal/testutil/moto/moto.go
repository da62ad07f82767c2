package moto

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ecr-preflight/ecr-preflight/internal/testutil/loopback"
)

const (
	// DefaultAccount is the account moto acts as for credentials it did not
	// issue.
	DefaultAccount = "123456789012"
	// Region is the region of the configs built here.
	Region = "us-west-2"
	// startTimeout bounds the wait for the server to answer; moto imports
	// every service's models on start, which takes seconds on a busy box.
	startTimeout = 60 * time.Second
)

// Server is a running moto_server.
type Server struct {
	// URL is the endpoint, http://127.0.0.1:PORT.
	URL string

	cmd    *exec.Cmd
	output *loopback.Buffer
	done   chan struct{}
}

// Option changes how Start runs the server.
type Option func(*options)

type options struct {
	env []string
}

// WithAccountID makes the server act as account for every request, whatever
// the credentials (moto's MOTO_ACCOUNT_ID). A separate process, such as the
// webhook under test, then sees that account without sending moto's header.
func WithAccountID(account string) Option {
	return func(o *options) { o.env = append(o.env, "MOTO_ACCOUNT_ID="+account) }
}

// Start starts moto_server on a free loopback port with AWS managed IAM
// policies loaded, waits until it answers, and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatalf("moto_server is not on PATH (install moto[server] 5.x): %v", err)
	}
	port, err := loopback.FreePort()
	if err != nil {
		t.Fatalf("finding a free port for moto_server: %v", err)
	}
	s := &Server{
		URL:    "http://127.0.0.1:" + strconv.Itoa(port),
		output: &loopback.Buffer{},
		done:   make(chan struct{}),
	}
	s.cmd = exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	s.cmd.Env = append(append(os.Environ(), "MOTO_IAM_LOAD_MANAGED_POLICIES=true"), o.env...)
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	// Own process group, so that stopping it reaches any child it spawns.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting moto_server: %v", err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.stop)
	if err := s.waitReady(startTimeout); err != nil {
		t.Fatalf("moto_server did not become ready: %v\noutput:\n%s", err, s.output.String())
	}
	return s
}

// waitReady polls the server until it answers HTTP.
func (s *Server) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("moto_server exited")
		default:
		}
		resp, err := client.Get(s.URL + "/moto-api/data.json")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer after %s (last error: %w)", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the server's process group: SIGTERM, then SIGKILL.
func (s *Server) stop() {
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
}

// Output returns what the server has printed, for failure messages (moto
// logs a NotImplementedError there for an operation it lacks).
func (s *Server) Output() string { return s.output.String() }

// Reset wipes all of the server's state.
func (s *Server) Reset(t testing.TB) {
	t.Helper()
	resp, err := http.Post(s.URL+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatalf("resetting moto: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("resetting moto: HTTP %d", resp.StatusCode)
	}
}

// Config returns an aws.Config for the server: static fake credentials
// (acting as DefaultAccount), region us-west-2, BaseEndpoint set, and no
// retries, so that an unimplemented operation fails at once.
func (s *Server) Config() aws.Config {
	return aws.Config{
		Region:           Region,
		Credentials:      credentials.NewStaticCredentialsProvider("AKIAMOTOTESTING00000", "moto-secret", ""),
		BaseEndpoint:     aws.String(s.URL),
		RetryMaxAttempts: 1,
	}
}

// ConfigAs returns Config acting as account, through moto's
// x-moto-account-id request header.
func (s *Server) ConfigAs(account string) aws.Config {
	cfg := s.Config()
	cfg.APIOptions = append(cfg.APIOptions, smithyhttp.AddHeaderValue("x-moto-account-id", account))
	return cfg
}

// Context returns a context for calls to the server, ended with the test
// (or after a minute, whichever comes first).
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
