package e2e

import (
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecr-preflight/ecr-preflight/e2e/harness"
)

// testWebhookDown runs a webhook of its own (standalone, deny mode) behind
// a configuration with failurePolicy Ignore, proves it rejects the seed,
// stops the process, and applies again: the cluster must not depend on
// the webhook being up.
func (s *suite) testWebhookDown(t *testing.T) {
	const ns = "webhook-down"
	s.env.CreateNamespace(t, ns, "", map[string]string{instanceLabel: ns})
	wh := s.env.Serve(t, harness.ServeOptions{Mode: "deny", Standalone: true})
	s.env.Register(t, harness.Hook{
		Name:              "ecr-preflight-" + ns,
		Webhook:           wh,
		FailurePolicy:     admissionregistrationv1.Ignore,
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{instanceLabel: ns}},
	})
	if err := s.env.AwaitMode(caseContext(t), ns, "deny"); err != nil {
		t.Fatal(err)
	}
	rejected(t, s.kubectl(t, "apply", "-f", harness.ManifestFile, "-n", ns))

	wh.Stop()
	res := s.kubectl(t, "apply", "-f", harness.ManifestFile, "-n", ns)
	accepted(t, res, "deployment.apps/ui-private created")
	noWarnings(t, res)
}
