package e2e

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecr-preflight/ecr-preflight/e2e/harness"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/ecrstub"
)

// testUnreadPolicyIsNotARejection runs a webhook of its own (standalone,
// deny mode) whose AWS is the ECR stub in front of the environment's moto,
// proves it rejects the seed while the repository policy can be read, then
// makes GetRepositoryPolicy fail with AccessDenied and applies again: an
// unread policy could allow or deny anything, so the seed is unknown, and
// deny mode admits it with a LookupFailed warning.
//
// Determinism: the webhook caches no policy (--cache-ttl-policy=0) and no
// whole answer (--cache-ttl-result=0), so the second apply asks ECR for the
// repository policy again and gets the failure, rather than reusing the
// Deny the first apply read (which a re-verification may also reuse while
// it is recent).
func (s *suite) testUnreadPolicyIsNotARejection(t *testing.T) {
	const ns = "unread-policy"
	const op = "GetRepositoryPolicy"
	stub := ecrstub.Start(t, s.env.Moto)
	s.env.CreateNamespace(t, ns, "", map[string]string{instanceLabel: ns})
	wh := s.env.Serve(t, harness.ServeOptions{
		Mode: "deny", Standalone: true, AWSEndpoint: stub.URL,
		Args: []string{"--cache-ttl-policy=0", "--cache-ttl-result=0"},
	})
	s.env.Register(t, harness.Hook{
		Name:    "ecr-preflight-" + ns,
		Webhook: wh,
		// failurePolicy Fail (the default): an acceptance below comes from
		// the webhook's answer, never from the webhook being unreachable.
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{instanceLabel: ns}},
	})
	if err := s.env.AwaitMode(caseContext(t), ns, "deny"); err != nil {
		t.Fatal(err)
	}

	// The read working: the seed's Deny rejects it.
	res := s.kubectl(t, "apply", "-f", harness.ManifestFile, "-n", ns)
	rejected(t, res)
	wantAll(t, res.Command+" stderr", res.Stderr, "RepositoryPolicyDenies", `statement "new policy"`)

	stub.Fail(op, ecrstub.AccessDenied(op))
	before := stub.Calls(op)
	res = s.kubectl(t, "apply", "-f", harness.ManifestFile, "-n", ns)
	if stub.Calls(op) == before {
		t.Fatalf("the webhook never called %s after the failure was injected", op)
	}
	accepted(t, res, "deployment.apps/ui-private created")
	warnings := strings.Join(res.Warnings(), "\n")
	wantAll(t, res.Command+" warnings", warnings, s.env.Seed.Image, "could not be verified", "LookupFailed")
	if strings.Contains(warnings, "RepositoryPolicyDenies") {
		t.Errorf("%s warned about the Deny it could not read:\n%s", res.Command, warnings)
	}
}
