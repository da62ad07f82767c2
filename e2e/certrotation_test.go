package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ecr-preflight/ecr-preflight/certs"
	"github.com/ecr-preflight/ecr-preflight/e2e/envtestutil"
	"github.com/ecr-preflight/ecr-preflight/e2e/harness"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/loopback"
	"github.com/ecr-preflight/ecr-preflight/webhook"
)

// The names a Helm release "ecr-preflight" in namespace "ecr-preflight"
// gives the selfManaged certificate: serve's defaults.
const (
	rotNamespace = "ecr-preflight"
	rotSecret    = "ecr-preflight-tls"
	rotLease     = rotSecret + "-rotation"
	rotConfig    = "ecr-preflight"
	rotAccount   = "ecr-preflight"
	// rotWorkloads is where the test creates workloads through the webhooks.
	rotWorkloads = "rotation-workloads"

	// Logged by cert-controller when its rotator starts (on the leader
	// only) and when it finds the Secret's certificates valid.
	rotatorStarted = "starting cert rotator controller"
	noRefresh      = "no cert refresh needed"
)

// rotDNSNames are the serving certificate's names: the Service's, and
// localhost, which the API server dials here (webhook URLs on loopback).
var rotDNSNames = []string{"localhost", "ecr-preflight.ecr-preflight.svc"}

// TestServeCertRotation runs two replicas of the real `ecr-preflight serve
// --cert-rotation` against a real API server, each as the chart's
// ServiceAccount with least-privilege RBAC (the Secret, the Lease and the
// webhook configuration by resourceNames only; the Secret created
// beforehand, as the chart does). It proves:
//
//   - one replica, the Lease's holder, issues a CA and a serving certificate
//     for every --cert-dns-name into the Secret; the other never starts
//     cert-controller, and the Secret only ever holds that one CA and
//     certificate;
//   - every replica writes them into its --cert-dir and serves them;
//   - both are not ready while the certificate is not trusted (the webhook
//     configuration does not exist yet), and ready once the caBundle of
//     every webhook holds the CA;
//   - the API server calls each replica over TLS with that caBundle
//     (failurePolicy Fail);
//   - when the leader stops, the other takes the Lease and reuses the
//     Secret: nothing is issued again, and it keeps serving.
func TestServeCertRotation(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ecr-preflight")
	built := make(chan error, 1)
	buildCtx, cancelBuild := context.WithCancel(context.Background())
	var buildWG sync.WaitGroup
	t.Cleanup(func() { cancelBuild(); buildWG.Wait() })
	buildWG.Go(func() { built <- harness.BuildBinary(buildCtx, bin) })

	env, cfg := envtestutil.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	admin, err := client.NewWithWatch(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{rotNamespace, rotWorkloads} {
		mustCreate(ctx, t, admin, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	// As the chart: the Secret exists, empty, so that uninstall removes it
	// and the process needs no right to create Secrets.
	mustCreate(ctx, t, admin, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: rotSecret, Namespace: rotNamespace}})
	grantLeastPrivilege(ctx, t, admin)
	kubeconfig, _ := envtestutil.AddUserKubeconfig(t, env, envtest.User{
		Name:   "system:serviceaccount:" + rotNamespace + ":" + rotAccount,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + rotNamespace},
	})
	history := watchSecret(ctx, t, admin)
	if err := <-built; err != nil {
		t.Fatal(err)
	}

	a := startReplica(t, bin, kubeconfig, "a")
	b := startReplica(t, bin, kubeconfig, "b")
	replicas := []*replica{a, b}

	// The leader issues the certificate; every replica writes it into its
	// directory. Without the webhook configuration nothing trusts it yet,
	// so no replica is ready.
	var issued map[string][]byte
	waitUntil(t, 90*time.Second, "the certificate issued and written by both replicas", replicas, func() error {
		s := &corev1.Secret{}
		if err := admin.Get(ctx, client.ObjectKey{Namespace: rotNamespace, Name: rotSecret}, s); err != nil {
			return err
		}
		if len(s.Data[certs.SecretCA]) == 0 || len(s.Data[certs.CertFile]) == 0 {
			return errors.New("the Secret holds no certificate yet")
		}
		for _, r := range replicas {
			for _, name := range []string{certs.CertFile, certs.KeyFile} {
				got, err := os.ReadFile(filepath.Join(r.certDir, name))
				if err != nil || !bytes.Equal(got, s.Data[name]) {
					return fmt.Errorf("replica %s: %s is not the Secret's yet (%w)", r.name, name, err)
				}
			}
		}
		issued = s.Data
		return nil
	})
	ca := parsePEMCert(t, issued[certs.SecretCA])
	if !ca.IsCA {
		t.Errorf("ca.crt is no CA: %v", ca.Subject)
	}
	if err := verifyPEM(issued[certs.CertFile], ca, rotDNSNames); err != nil {
		t.Errorf("the Secret's serving certificate: %v", err)
	}
	for _, r := range replicas {
		if code, body := r.readyz(); code != http.StatusInternalServerError || !strings.Contains(body, "[-]certificate failed") {
			t.Errorf("replica %s without a webhook configuration: /readyz %d %q, want 500 naming the certificate check", r.name, code, body)
		}
	}

	leader, follower := whoLeads(ctx, t, admin, a, b)
	t.Logf("replica %s holds the Lease", leader.name)

	// The webhook configuration: one webhook per replica, so the API
	// server's calls show that each serves a certificate it trusts.
	hooks := map[*replica]string{a: "Deployment", b: "StatefulSet"}
	mustCreate(ctx, t, admin, webhookConfiguration(a, b))
	waitUntil(t, 60*time.Second, "both replicas ready", replicas, func() error {
		for _, r := range replicas {
			if code, body := r.readyz(); code != http.StatusOK {
				return fmt.Errorf("replica %s: /readyz %d %s", r.name, code, body)
			}
		}
		return nil
	})
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := admin.Get(ctx, client.ObjectKey{Name: rotConfig}, vwc); err != nil {
		t.Fatal(err)
	}
	for _, wh := range vwc.Webhooks {
		if !bytes.Equal(wh.ClientConfig.CABundle, issued[certs.SecretCA]) {
			t.Errorf("webhook %s: caBundle is not the Secret's CA", wh.Name)
		}
	}
	for _, r := range replicas {
		r.assertServes(t, ca)
		createThrough(ctx, t, admin, r, hooks[r], r.name+"-1")
	}
	if strings.Contains(follower.output.String(), rotatorStarted) {
		t.Errorf("replica %s started cert-controller without holding the Lease", follower.name)
	}

	// Failover: the leader stops and releases the Lease; the other takes
	// it, finds the Secret valid and issues nothing.
	leader.stop()
	waitUntil(t, 60*time.Second, "the other replica to take the Lease and check the Secret", []*replica{follower}, func() error {
		if holder := leaseHolder(ctx, admin); holder == "" || holder == leader.identity {
			return fmt.Errorf("lease holder %q", holder)
		}
		if out := follower.output.String(); !strings.Contains(out, rotatorStarted) || !strings.Contains(out, noRefresh) {
			return errors.New("cert-controller has not checked the Secret on the new leader yet")
		}
		return nil
	})
	if code, body := follower.readyz(); code != http.StatusOK {
		t.Errorf("replica %s after failover: /readyz %d %s", follower.name, code, body)
	}
	follower.assertServes(t, ca)
	createThrough(ctx, t, admin, follower, hooks[follower], follower.name+"-2")

	cas, certificates := history.distinct()
	if cas != 1 || certificates != 1 {
		t.Errorf("the Secret held %d CAs and %d serving certificates over the test, want one of each: a second replica issued again", cas, certificates)
	}
}

// grantLeastPrivilege gives the chart's ServiceAccount what serve
// --cert-rotation needs, and no more: namespaces to read mode labels; the
// Secret, the Lease and the webhook configuration by name (get, list and
// watch by name work because serve's watches select that one name); Lease
// creation (which RBAC cannot limit by name); events for leader election.
func grantLeastPrivilege(ctx context.Context, t *testing.T, c client.Client) {
	t.Helper()
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: rotAccount, Namespace: rotNamespace}}
	mustCreate(ctx, t, c, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "ecr-preflight"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"validatingwebhookconfigurations"},
				ResourceNames: []string{rotConfig}, Verbs: []string{"get", "list", "watch", "update"}},
		},
	})
	mustCreate(ctx, t, c, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ecr-preflight"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "ecr-preflight"},
		Subjects:   subject,
	})
	mustCreate(ctx, t, c, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "ecr-preflight", Namespace: rotNamespace},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{rotSecret}, Verbs: []string{"get", "list", "watch", "update"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{rotLease}, Verbs: []string{"get", "update"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
			{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		},
	})
	mustCreate(ctx, t, c, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ecr-preflight", Namespace: rotNamespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "ecr-preflight"},
		Subjects:   subject,
	})
}

// replica is one `ecr-preflight serve --cert-rotation` process.
type replica struct {
	name     string
	certDir  string
	port     int
	health   string
	metrics  string
	identity string // Lease holder identity, once known
	cmd      *exec.Cmd
	output   *loopback.Buffer
	done     chan struct{}
	stopOnce sync.Once
}

func startReplica(t *testing.T, bin, kubeconfig, name string) *replica {
	t.Helper()
	r := &replica{name: name, certDir: t.TempDir(), port: loopback.Port(t), output: &loopback.Buffer{}, done: make(chan struct{})}
	health, metrics := loopback.Port(t), loopback.Port(t)
	r.health = "http://127.0.0.1:" + strconv.Itoa(health)
	r.metrics = "http://127.0.0.1:" + strconv.Itoa(metrics) + "/metrics"
	args := []string{"serve",
		"--kubeconfig", kubeconfig,
		"--node-role-arn", "arn:aws:iam::123456789012:role/EksNodeGroupRole",
		"--bind-address", "127.0.0.1",
		"--port", strconv.Itoa(r.port),
		"--cert-dir", r.certDir,
		"--metrics-bind-address", "127.0.0.1:" + strconv.Itoa(metrics),
		"--health-probe-bind-address", "127.0.0.1:" + strconv.Itoa(health),
		"--shutdown-delay", "0s",
		"--log-format", "text",
		"--cert-rotation",
		"--cert-secret-name", rotSecret,
		"--webhook-configuration-name", rotConfig,
	}
	for _, n := range rotDNSNames {
		args = append(args, "--cert-dns-name", n)
	}
	r.cmd = exec.Command(bin, args...)
	// The namespace comes from the downward API's POD_NAMESPACE, as in the
	// chart. AWS is never reached: the workloads use no ECR image.
	r.cmd.Env = append(filteredEnv(), "POD_NAMESPACE="+rotNamespace,
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=example",
		"AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL=http://127.0.0.1:1")
	r.cmd.Stdout, r.cmd.Stderr = r.output, r.output
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("replica %s log:\n%s", r.name, r.output.String())
		}
	})
	return r
}

// filteredEnv is the test's environment without AWS or kubeconfig
// settings that could leak into the replicas.
func filteredEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "KUBECONFIG=") || strings.HasPrefix(kv, "POD_NAMESPACE=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// stop sends SIGTERM and waits; SIGKILL after 20s.
func (r *replica) stop() {
	r.stopOnce.Do(func() {
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.done
		}
	})
}

func (r *replica) running() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

func (r *replica) readyz() (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(r.health + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// assertServes dials the replica as the API server does: it must present
// a certificate the CA vouches for, under every DNS name.
func (r *replica) assertServes(t *testing.T, ca *x509.Certificate) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range rotDNSNames {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)),
			&tls.Config{RootCAs: roots, ServerName: name, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Errorf("replica %s as %s: %v", r.name, name, err)
			continue
		}
		_ = conn.Close()
	}
}

// admissions is the replica's count of answered admissions.
func (r *replica) admissions(t *testing.T) float64 {
	t.Helper()
	resp, err := http.Get(r.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "ecr_preflight_admissions_total{"); ok {
			_, value, _ := strings.Cut(rest, "} ")
			v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", sc.Text(), err)
			}
			sum += v
		}
	}
	return sum
}

// createThrough creates a workload of kind whose webhook calls r
// (failurePolicy Fail): it is admitted only if the API server reached r
// over TLS, trusting the injected caBundle, and r counts the admission.
func createThrough(ctx context.Context, t *testing.T, c client.Client, r *replica, kind, name string) {
	t.Helper()
	before := r.admissions(t)
	labels := map[string]string{"app": name}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
	}
	meta := metav1.ObjectMeta{Name: name, Namespace: rotWorkloads}
	sel := &metav1.LabelSelector{MatchLabels: labels}
	var obj client.Object
	switch kind {
	case "Deployment":
		obj = &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Selector: sel, Template: tmpl}}
	case "StatefulSet":
		obj = &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Selector: sel, Template: tmpl}}
	default:
		t.Fatalf("kind %s", kind)
	}
	if err := c.Create(ctx, obj); err != nil {
		t.Errorf("creating %s %s through replica %s's webhook: %v", kind, name, r.name, err)
		return
	}
	if after := r.admissions(t); after <= before {
		t.Errorf("replica %s answered no admission for %s %s (%v before, %v after)", r.name, kind, name, before, after)
	}
}

// webhookConfiguration is the configuration serve injects the CA into:
// Deployments go to a, StatefulSets to b, for the workloads namespace only.
func webhookConfiguration(a, b *replica) *admissionregistrationv1.ValidatingWebhookConfiguration {
	hook := func(r *replica, kind, resource string) admissionregistrationv1.ValidatingWebhook {
		path := webhook.ValidatePath(appsv1.SchemeGroupVersion.WithKind(kind))
		return admissionregistrationv1.ValidatingWebhook{
			Name: strings.ToLower(kind) + "s.ecr-preflight.io",
			// localhost: a name of the certificate.
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr.To(fmt.Sprintf("https://localhost:%d%s", r.port, path))},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			TimeoutSeconds:          ptr.To[int32](10),
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: rotWorkloads}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{resource}},
			}},
		}
	}
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: rotConfig},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{hook(a, "Deployment", "deployments"), hook(b, "StatefulSet", "statefulsets")},
	}
}

// whoLeads tells the Lease holder from the other replica: exactly one has
// started cert-controller, and the Lease names it.
func whoLeads(ctx context.Context, t *testing.T, c client.Client, a, b *replica) (leader, follower *replica) {
	t.Helper()
	aLeads, bLeads := strings.Contains(a.output.String(), rotatorStarted), strings.Contains(b.output.String(), rotatorStarted)
	switch {
	case aLeads && !bLeads:
		leader, follower = a, b
	case bLeads && !aLeads:
		leader, follower = b, a
	default:
		t.Fatalf("cert-controller started in replica a: %v, b: %v; want exactly one", aLeads, bLeads)
	}
	leader.identity = leaseHolder(ctx, c)
	if leader.identity == "" {
		t.Fatal("the Lease has no holder")
	}
	return leader, follower
}

func leaseHolder(ctx context.Context, c client.Client) string {
	l := &coordinationv1.Lease{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: rotNamespace, Name: rotLease}, l); err != nil {
		return ""
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

// secretHistory is every CA and serving certificate the Secret held.
type secretHistory struct {
	mu           sync.Mutex
	cas, servers map[string]bool
}

func (h *secretHistory) distinct() (cas, servers int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.cas), len(h.servers)
}

// watchSecret records every version of the Secret from now on.
func watchSecret(ctx context.Context, t *testing.T, c client.WithWatch) *secretHistory {
	t.Helper()
	w, err := c.Watch(ctx, &corev1.SecretList{}, client.InNamespace(rotNamespace), client.MatchingFields{"metadata.name": rotSecret})
	if err != nil {
		t.Fatal(err)
	}
	h := &secretHistory{cas: map[string]bool{}, servers: map[string]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			s, ok := ev.Object.(*corev1.Secret)
			if !ok || ev.Type == watch.Error {
				continue
			}
			h.mu.Lock()
			if ca := s.Data[certs.SecretCA]; len(ca) > 0 {
				h.cas[string(ca)] = true
			}
			if crt := s.Data[certs.CertFile]; len(crt) > 0 {
				h.servers[string(crt)] = true
			}
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.Stop(); <-done })
	return h
}

// waitUntil polls cond every 100ms for at most timeout, failing early if a
// replica exits.
func waitUntil(t *testing.T, timeout time.Duration, what string, replicas []*replica, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		for _, r := range replicas {
			if !r.running() {
				t.Fatalf("replica %s exited while waiting for %s:\n%s", r.name, what, r.output.String())
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v", timeout, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mustCreate(ctx context.Context, t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(ctx, obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func parsePEMCert(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	c, err := certs.ParseCertificatePEM(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verifyPEM checks a PEM certificate against ca for every name.
func verifyPEM(p []byte, ca *x509.Certificate, names []string) error {
	leaf, err := certs.ParseCertificatePEM(p)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fmt.Errorf("for %s: %w", name, err)
		}
	}
	return nil
}
