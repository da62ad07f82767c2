package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecr-preflight/ecr-preflight/e2e/harness"
)

// suite is what every admission case shares: one API server, one moto with
// the seed planted, and one webhook in manager mode (default mode warn,
// namespace labels choose deny) registered with failurePolicy Fail, so an
// unreachable webhook fails the cases instead of letting them pass.
type suite struct {
	env *harness.Env
	wh  *harness.Webhook
}

// instanceLabel marks namespaces served by a case's own webhook instead of
// the shared one.
const instanceLabel = "e2e.ecr-preflight.io/instance"

// TestAdmission plays the seed scenario and its variations through kubectl
// and a Go client against a real kube-apiserver, with ecr-preflight serve
// running as a subprocess. Cases run in order, sharing one environment
// (start-up is the slow part); each uses its own namespace.
func TestAdmission(t *testing.T) {
	start := time.Now()
	env := harness.Start(t, harness.Options{})
	wh := env.Serve(t, harness.ServeOptions{})
	env.Register(t, harness.Hook{
		Name:    "ecr-preflight",
		Webhook: wh,
		NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: instanceLabel, Operator: metav1.LabelSelectorOpDoesNotExist,
		}}},
	})
	t.Logf("environment ready in %s", time.Since(start).Round(time.Millisecond))
	s := &suite{env: env, wh: wh}

	// Order matters once: the fix case changes the shared seed, and a
	// pullable answer is cached for --cache-ttl-result (30s) after it, so it
	// runs last. (The other direction, fixing a policy, needs no wait: the
	// webhook re-verifies not-pullable answers with fresh AWS data.)
	t.Run("warn mode: kubectl apply of the seed is accepted with a warning naming the statement", s.testWarn)
	t.Run("deny mode: kubectl apply of the seed is rejected with the statement, role and fix", s.testDeny)
	t.Run("Go client: deny is a Forbidden error with the story, warn returns the warnings", s.testGoClient)
	t.Run("deny mode: a missing tag is rejected with ImageNotFound", s.testMissingTag)
	t.Run("deny mode: a non-ECR image passes untouched", s.testNonECR)
	t.Run("deny mode: an UPDATE that only changes replicas is allowed even with a broken image", s.testScaleBrokenImage)
	t.Run("deny mode: with GetRepositoryPolicy denied to ecr-preflight the seed is admitted with a LookupFailed warning", s.testUnreadPolicyIsNotARejection)
	t.Run("failurePolicy Ignore: with the webhook down Deployments go through", s.testWebhookDown)
	t.Run("audit: every output format names the seed's denial, exit 1, and --policy-report writes PolicyReports", s.testAuditCommand)
	t.Run("node pools: pinned to the denied arm64 group it is rejected, to the amd64 group accepted; an amd64-only image on arm64 is PlatformNotAvailable", s.testNodePools)
	t.Run("after the fix (Effect Allow) the seed is accepted in deny mode without a warning", s.testFixed)
}

// namespace creates a namespace for one case in mode and waits until the
// webhook answers in it in that mode.
func (s *suite) namespace(t *testing.T, name, mode string) {
	t.Helper()
	s.env.CreateNamespace(t, name, mode, nil)
	if err := s.env.AwaitMode(caseContext(t), name, mode); err != nil {
		t.Fatal(err)
	}
}

// caseContext bounds one case's calls well below the test timeout.
func caseContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// kubectl runs kubectl, logging the command and its output (shown with
// -v or on failure).
func (s *suite) kubectl(t *testing.T, args ...string) harness.Result {
	t.Helper()
	res := s.env.Kubectl(caseContext(t), args...)
	t.Logf("$ %s  (exit: %v)\n%s", res.Command, res.Err, res.Output)
	return res
}

// accepted fails t unless res succeeded and printed want on stdout.
func accepted(t *testing.T, res harness.Result, want string) {
	t.Helper()
	if res.Err != nil {
		t.Fatalf("%s: %v, want accepted\n%s", res.Command, res.Err, res.Output)
	}
	if !strings.Contains(res.Stdout, want) {
		t.Errorf("%s: stdout = %q, want %q", res.Command, res.Stdout, want)
	}
}

// rejected fails t unless res failed with an admission denial.
func rejected(t *testing.T, res harness.Result) {
	t.Helper()
	if res.Err == nil {
		t.Fatalf("%s was accepted, want rejected\n%s", res.Command, res.Output)
	}
	wantAll(t, res.Command+" stderr", res.Stderr, `admission webhook "deployments.ecr-preflight.io" denied the request`)
}

// noWarnings fails t if kubectl printed any warning.
func noWarnings(t *testing.T, res harness.Result) {
	t.Helper()
	if w := res.Warnings(); len(w) > 0 {
		t.Errorf("%s printed warnings, want none: %q", res.Command, w)
	}
}

// counter reads one of the webhook's counters.
func (s *suite) counter(t *testing.T, wh *harness.Webhook, name string, labels map[string]string) float64 {
	t.Helper()
	v, err := wh.Counter(caseContext(t), name, labels)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantAll fails t for each of subs that text lacks.
func wantAll(t *testing.T, what, text string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(text, sub) {
			t.Errorf("%s lack %q; got:\n%s", what, sub, text)
		}
	}
}
