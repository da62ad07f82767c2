package certs_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/ecr-preflight/ecr-preflight/certs"
	"github.com/ecr-preflight/ecr-preflight/e2e/envtestutil"
)

const rotationNamespace = "certs-test"

// controllers numbers controller names: controller-runtime wants them
// unique in the process, -count=N included.
var controllers atomic.Int64

func controllerName(base string) string {
	return fmt.Sprintf("%s-%d", base, controllers.Add(1))
}

// TestRotation runs selfManaged rotation in-process against a real API
// server (envtest; it fails, never skips, without the binaries). The serve
// command's path, two replicas and RBAC are in e2e/certrotation_test.go;
// this covers what a short-lived certificate and a restart show.
func TestRotation(t *testing.T) {
	_, cfg := envtestutil.Start(t)
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rotationNamespace}}); err != nil {
		t.Fatal(err)
	}
	t.Run("renews before expiry", func(t *testing.T) { testRenewsBeforeExpiry(ctx, t, cfg, c) })
	t.Run("a DNS name added on restart", func(t *testing.T) { testDNSNameAdded(ctx, t, cfg, c) })
}

// testRenewsBeforeExpiry: a serving certificate valid for 4s, renewed 2s
// before it expires, is replaced in the Secret and then in the files
// served, under the same CA, which stays the caBundle.
func testRenewsBeforeExpiry(ctx context.Context, t *testing.T, cfg *rest.Config, c client.Client) {
	opts := certs.RotationOptions{
		SecretName: "renew-tls", SecretNamespace: rotationNamespace,
		DNSNames: []string{"renew.certs-test.svc"}, WebhookConfigurationName: "renew",
		CertValidity: 4 * time.Second, RenewBefore: 2 * time.Second, CheckInterval: 500 * time.Millisecond,
		ControllerName: controllerName("renew"),
	}
	createWebhookConfiguration(ctx, t, c, opts.WebhookConfigurationName, 1)
	run := startRotation(t, cfg, opts)
	run.waitReady(t)
	first := secretData(ctx, t, c, opts)
	ca := first[certs.SecretCA]

	waitFor(t, "a renewed certificate in the Secret and in the files", func() error {
		now := secretData(ctx, t, c, opts)
		if !bytes.Equal(now[certs.SecretCA], ca) {
			return fmt.Errorf("the CA changed")
		}
		if bytes.Equal(now[certs.CertFile], first[certs.CertFile]) {
			return fmt.Errorf("the Secret holds the first certificate")
		}
		served, err := run.files.GetCertificate(nil)
		if err != nil {
			return err
		}
		if bytes.Equal(served.Certificate[0], pemDER(t, first[certs.CertFile])) {
			return fmt.Errorf("the first certificate is still served")
		}
		return verify(served.Certificate[0], ca, opts.DNSNames)
	})
	// Renewals go on every two seconds or so; the check passes between them.
	waitFor(t, "ready after renewal", func() error { return run.r.Check(nil) })
	if got := secretData(ctx, t, c, opts)[certs.SecretCA]; !bytes.Equal(got, ca) {
		t.Error("the CA was replaced while renewing the serving certificate")
	}
	assertInjected(ctx, t, c, opts.WebhookConfigurationName, ca)
	run.stop()
}

// testDNSNameAdded: restarted with one more --cert-dns-name, the leader
// has a certificate issued for every name (cert-controller checks only the
// first) under the same CA, and readiness waits for it.
func testDNSNameAdded(ctx context.Context, t *testing.T, cfg *rest.Config, c client.Client) {
	opts := certs.RotationOptions{
		SecretName: "names-tls", SecretNamespace: rotationNamespace,
		DNSNames: []string{"a.certs-test.svc"}, WebhookConfigurationName: "names",
		ControllerName: controllerName("names"),
	}
	createWebhookConfiguration(ctx, t, c, opts.WebhookConfigurationName, 2)
	run := startRotation(t, cfg, opts)
	run.waitReady(t)
	before := secretData(ctx, t, c, opts)
	run.stop()

	opts.DNSNames = append(opts.DNSNames, "b.certs-test.svc")
	opts.ControllerName = controllerName("names")
	run = startRotation(t, cfg, opts)
	run.waitReady(t)
	after := secretData(ctx, t, c, opts)
	if !bytes.Equal(after[certs.SecretCA], before[certs.SecretCA]) {
		t.Error("the CA was replaced to add a DNS name")
	}
	if err := verify(pemDER(t, after[certs.CertFile]), after[certs.SecretCA], opts.DNSNames); err != nil {
		t.Error(err)
	}
	onDisk, err := os.ReadFile(filepath.Join(run.files.Dir(), certs.CertFile))
	if err != nil || !bytes.Equal(onDisk, after[certs.CertFile]) {
		t.Errorf("%s is not the Secret's certificate (%v)", certs.CertFile, err)
	}
	run.stop()
}

// rotationRun is SetupRotation in a manager of its own, as serve runs it.
type rotationRun struct {
	r     *certs.Rotation
	files *certs.Files
	stop  func()
}

func startRotation(t *testing.T, cfg *rest.Config, opts certs.RotationOptions) *rotationRun {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	log := funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{})
	mgr, err := manager.New(cfg, manager.Options{
		Scheme:                        scheme,
		Logger:                        log,
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                true,
		LeaderElectionID:              opts.LeaseName(),
		LeaderElectionNamespace:       opts.SecretNamespace,
		LeaderElectionReleaseOnCancel: true,
		// cert-controller finishes a renewal in progress before it stops:
		// its retries take up to 20s when writes conflict.
		GracefulShutdownTimeout: ptr.To(30 * time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	files := certs.AwaitFiles(t.TempDir()).WithPollInterval(100 * time.Millisecond)
	if err := mgr.Add(files); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, err := certs.SetupRotation(ctx, mgr, files, opts, log.WithName("certificates"))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("manager: %v", err)
				}
			case <-time.After(45 * time.Second):
				t.Error("manager did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return &rotationRun{r: r, files: files, stop: stop}
}

func (run *rotationRun) waitReady(t *testing.T) {
	t.Helper()
	waitFor(t, "ready", func() error { return run.r.Check(nil) })
}

// waitFor polls cond until it returns nil, at most 30s.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func secretData(ctx context.Context, t *testing.T, c client.Client, opts certs.RotationOptions) map[string][]byte {
	t.Helper()
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: opts.SecretNamespace, Name: opts.SecretName}, s); err != nil {
		t.Fatal(err)
	}
	return s.Data
}

func createWebhookConfiguration(ctx context.Context, t *testing.T, c client.Client, name string, hooks int) {
	t.Helper()
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for i := range hooks {
		vwc.Webhooks = append(vwc.Webhooks, admissionregistrationv1.ValidatingWebhook{
			Name:                    fmt.Sprintf("hook%d.%s.ecr-preflight.io", i, name),
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr.To(fmt.Sprintf("https://%s.invalid/validate", name))},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			FailurePolicy:           ptr.To(admissionregistrationv1.Ignore),
			// Nothing in these tests matches.
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"certs-test-never": "true"}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
			}},
		})
	}
	if err := c.Create(ctx, vwc); err != nil {
		t.Fatal(err)
	}
}

func assertInjected(ctx context.Context, t *testing.T, c client.Client, name string, ca []byte) {
	t.Helper()
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, vwc); err != nil {
		t.Fatal(err)
	}
	for _, wh := range vwc.Webhooks {
		if !bytes.Equal(wh.ClientConfig.CABundle, ca) {
			t.Errorf("webhook %s: caBundle is not the Secret's CA", wh.Name)
		}
	}
}

// verify checks that der is signed by the PEM CA for every name, now.
func verify(der, caPEM []byte, names []string) error {
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("no CA")
	}
	for _, name := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fmt.Errorf("certificate for %v: %w", leaf.DNSNames, err)
		}
	}
	if !slices.Equal(leaf.DNSNames, names) {
		return fmt.Errorf("certificate names %v, want %v", leaf.DNSNames, names)
	}
	return nil
}

func pemDER(t *testing.T, p []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(p)
	if b == nil {
		t.Fatal("no PEM block")
	}
	return b.Bytes
}
