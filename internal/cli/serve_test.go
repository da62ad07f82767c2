package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ecr-preflight/ecr-preflight/certs/certstest"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
	"github.com/ecr-preflight/ecr-preflight/webhook"

	"github.com/ecr-preflight/ecr-preflight/internal/testutil/loopback"
)

const (
	seedImage = "1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-ui:1.2.1"
	seedRole  = "arn:aws:iam::123456789012:role/EksNodeGroupRole"
)

// seedChecker answers like the engine for the workshop scenario: the UI
// image is denied by statement "new policy", everything else pulls.
type seedChecker struct{}

func (seedChecker) CheckPools(_ context.Context, images []string, _ nodepools.Placement) []preflight.Result {
	out := make([]preflight.Result, len(images))
	for i, img := range images {
		out[i] = preflight.Result{Image: img, Verdict: preflight.VerdictPullable}
		if img == seedImage {
			out[i].Verdict = preflight.VerdictNotPullable
			out[i].Findings = []preflight.Finding{{
				Code: preflight.CodeRepositoryPolicyDenies, Severity: preflight.SeverityError, Role: seedRole,
				Action: "ecr:BatchGetImage", Statement: "new policy",
				// Worded as the engine words it: the statement and action are named.
				Message: `statement "new policy" of the repository policy of retail-sample-app-ui denies ecr:BatchGetImage to role EksNodeGroupRole`,
				Fix:     `change statement "new policy" to Allow`,
			}}
		}
	}
	return out
}

// standalone is a running `serve --standalone` on loopback.
type standalone struct {
	webhook, health, metrics string
	certDir                  string
	firstCert                []byte
	client                   *http.Client
	stop                     context.CancelFunc
	done                     chan error
}

func startStandalone(t *testing.T, mode webhook.Mode, shutdownDelay time.Duration) *standalone {
	t.Helper()
	return startStandaloneWith(t, seedChecker{}, func(o *ServeOptions) {
		o.Mode = mode
		o.ShutdownDelay = shutdownDelay
	})
}

// startStandaloneWith starts serve --standalone with checker, on flags
// that set may change.
func startStandaloneWith(t *testing.T, checker webhook.Checker, set func(*ServeOptions)) *standalone {
	t.Helper()
	dir := t.TempDir()
	first, err := certstest.Write(dir, "first")
	if err != nil {
		t.Fatal(err)
	}
	o := NewServeOptions()
	o.Standalone = true
	o.BindAddress = "127.0.0.1"
	o.Port = loopback.Port(t)
	o.CertDir = dir
	o.Pools.NodeRoles = []string{seedRole}
	o.MetricsBindAddress = fmt.Sprintf("127.0.0.1:%d", loopback.Port(t))
	o.HealthProbeBindAddress = fmt.Sprintf("127.0.0.1:%d", loopback.Port(t))
	set(o)
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &standalone{
		webhook:   fmt.Sprintf("https://127.0.0.1:%d", o.Port),
		health:    "http://" + o.HealthProbeBindAddress,
		metrics:   "http://" + o.MetricsBindAddress,
		certDir:   dir,
		firstCert: first,
		stop:      cancel,
		done:      make(chan error, 1),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			// The test's own throwaway certificate: trust is not under test.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		}},
	}
	deps := serveDeps{checker: checker, registry: prometheus.NewRegistry(), certPoll: 100 * time.Millisecond}
	go func() { s.done <- runServe(ctx, o, deps, logr.Discard()) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop")
		}
	})
	s.waitReady(t)
	return s
}

func (s *standalone) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := s.get(s.health + "/readyz"); code == http.StatusOK {
			return
		}
		select {
		case err := <-s.done:
			t.Fatalf("serve ended before ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("serve never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *standalone) get(url string) (int, string) {
	resp, err := s.client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *standalone) admit(t *testing.T, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	resp, err := s.client.Post(s.webhook+"/validate-apps-v1-deployment", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ar admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&ar); err != nil || ar.Response == nil {
		t.Fatalf("HTTP %d: no AdmissionReview response: %v", resp.StatusCode, err)
	}
	return ar.Response
}

func deploymentReview(t *testing.T, images ...string) []byte {
	t.Helper()
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "ui-private", Namespace: "retail"},
	}
	for i, img := range images {
		d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
	}
	obj, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "uid-1", Operation: admissionv1.Create, Namespace: "retail", Name: "ui-private",
			Kind:   metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
			Object: runtime.RawExtension{Raw: obj},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServeStandalone(t *testing.T) {
	s := startStandalone(t, "deny", 0)

	t.Run("the seed Deployment is denied with the deciding statement and the fix", func(t *testing.T) {
		r := s.admit(t, deploymentReview(t, seedImage))
		want := "ecr-preflight: Deployment retail/ui-private uses images the node role cannot pull:\n" +
			`- container "c0": ` + seedImage + `: RepositoryPolicyDenies: statement "new policy" of the repository policy of retail-sample-app-ui denies ecr:BatchGetImage to role EksNodeGroupRole` +
			` (role ` + seedRole + `). Fix: change statement "new policy" to Allow`
		if r.Allowed || r.Result == nil || r.Result.Code != http.StatusForbidden || r.Result.Message != want {
			t.Errorf("got %+v\nwant message %q", r.Result, want)
		}
	})
	t.Run("a pullable image is allowed silently", func(t *testing.T) {
		r := s.admit(t, deploymentReview(t, "1234567890.dkr.ecr.us-west-2.amazonaws.com/catalog:1"))
		if !r.Allowed || len(r.Warnings) != 0 {
			t.Errorf("got %+v", r)
		}
	})
	t.Run("a malformed AdmissionReview gets a clear 400, and the server lives on", func(t *testing.T) {
		r := s.admit(t, []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE","object":{"spec":42}}}`))
		if r.Allowed || r.Result == nil || r.Result.Code != http.StatusBadRequest || r.Result.Message == "" {
			t.Errorf("got %+v", r.Result)
		}
		if code, _ := s.get(s.health + "/readyz"); code != http.StatusOK {
			t.Errorf("readyz %d after a malformed request", code)
		}
	})
	t.Run("metrics count the admissions", func(t *testing.T) {
		_, body := s.get(s.metrics + "/metrics")
		for _, want := range []string{
			`ecr_preflight_admissions_total{decision="deny",kind="Deployment",mode="deny",operation="CREATE"} 1`,
			`ecr_preflight_findings_total{code="RepositoryPolicyDenies"} 1`,
			`ecr_preflight_admission_duration_seconds_count{kind="Deployment"} 2`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
	t.Run("a replaced certificate is served without a restart", func(t *testing.T) {
		if served, err := servedCert(s.webhook); err != nil || !bytes.Equal(served, s.firstCert) {
			t.Fatalf("the first certificate is not served: %v", err)
		}
		der, err := certstest.Write(s.certDir, "second")
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			served, err := servedCert(s.webhook)
			if err == nil && bytes.Equal(served, der) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("new certificate not served: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// servedCert is the leaf certificate a fresh handshake with url presents.
func servedCert(url string) ([]byte, error) {
	conn, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, errors.New("no certificate")
	}
	return certs[0].Raw, nil
}

// TestServeShutdownDelay: after termination is requested the server
// reports not ready but keeps answering admissions until the delay ends.
func TestServeShutdownDelay(t *testing.T) {
	const delay = 700 * time.Millisecond
	s := startStandalone(t, "warn", delay)
	s.stop()
	start := time.Now()
	deadline := start.Add(delay / 2)
	for {
		code, _ := s.get(s.health + "/readyz")
		if code == http.StatusInternalServerError || code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still ready (%d) while draining", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := s.admit(t, deploymentReview(t, seedImage)); !r.Allowed || len(r.Warnings) != 1 {
		t.Errorf("admission while draining: %+v", r)
	}
	select {
	case err := <-s.done:
		if took := time.Since(start); took < delay-50*time.Millisecond {
			t.Errorf("stopped after %v, before the %v delay", took, delay)
		}
		if err != nil {
			t.Errorf("serve: %v", err)
		}
		s.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after the delay")
	}
}

// TestServeBadCertDir: a missing certificate is a clear failure (exit 1)
// before anything reaches out to AWS.
func TestServeBadCertDir(t *testing.T) {
	dir := t.TempDir()
	var out loopback.Buffer
	code := Execute([]string{"serve", "--standalone", "--cert-dir", dir, "--node-role-arn", seedRole,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0"}, nil, &out, &out)
	if code != ExitFail || !strings.Contains(out.String(), "error: loading serving certificate from "+dir+" (want tls.crt and tls.key)") {
		t.Errorf("exit %d: %s", code, out.String())
	}
}
