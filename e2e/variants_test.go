package e2e

import (
	"testing"

	"github.com/ecr-preflight/ecr-preflight/e2e/harness"
)

// Variations on the seed: other images, and updates of a broken one.

func (s *suite) testMissingTag(t *testing.T) {
	const ns = "missing-tag"
	s.namespace(t, ns, "deny")

	res := s.kubectl(t, "create", "deployment", "missing", "--image="+s.env.Seed.MissingTagImage(), "-n", ns)
	rejected(t, res)
	wantAll(t, res.Command+" stderr", res.Stderr, "ImageNotFound", s.env.Seed.MissingTagImage())
}

func (s *suite) testNonECR(t *testing.T) {
	const ns = "non-ecr"
	s.namespace(t, ns, "deny")
	allowed := map[string]string{"kind": "Deployment", "operation": "CREATE", "mode": "deny", "decision": "allow"}
	before := s.counter(t, s.wh, "ecr_preflight_admissions_total", allowed)

	res := s.kubectl(t, "create", "deployment", "web", "--image=nginx:1.27", "-n", ns)
	accepted(t, res, "deployment.apps/web created")
	noWarnings(t, res)

	// Untouched, not unseen: the webhook answered it, and allowed it.
	if after := s.counter(t, s.wh, "ecr_preflight_admissions_total", allowed); after <= before {
		t.Errorf("ecr_preflight_admissions_total%v stayed at %v: the webhook never saw the create", allowed, before)
	}
}

// testScaleBrokenImage: a workload created while its namespace only warned
// must stay operable after the namespace moves to deny; only a change of
// image can be rejected.
func (s *suite) testScaleBrokenImage(t *testing.T) {
	const ns = "scale"
	s.namespace(t, ns, "warn")
	accepted(t, s.kubectl(t, "apply", "-f", harness.ManifestFile, "-n", ns), "deployment.apps/ui-private created")

	if err := s.env.SetNamespaceMode(caseContext(t), ns, "deny"); err != nil {
		t.Fatal(err)
	}
	if err := s.env.AwaitMode(caseContext(t), ns, "deny"); err != nil {
		t.Fatal(err)
	}
	updates := map[string]string{"kind": "Deployment", "operation": "UPDATE", "mode": "deny"}
	before := s.counter(t, s.wh, "ecr_preflight_admissions_total", updates)

	res := s.kubectl(t, "patch", "deployment", "ui-private", "-n", ns, "--type=merge", "-p", `{"spec":{"replicas":3}}`)
	accepted(t, res, "deployment.apps/ui-private patched")
	if after := s.counter(t, s.wh, "ecr_preflight_admissions_total", updates); after <= before {
		t.Errorf("ecr_preflight_admissions_total%v stayed at %v: the webhook never saw the update", updates, before)
	}

	// kubectl scale goes through the scale subresource, which the webhook
	// is not registered for: allowed without asking it.
	accepted(t, s.kubectl(t, "scale", "deployment", "ui-private", "-n", ns, "--replicas=2"), "deployment.apps/ui-private scaled")

	// The same namespace does reject an UPDATE that changes the image.
	res = s.kubectl(t, "set", "image", "deployment/ui-private", "-n", ns, "ui="+s.env.Seed.MissingTagImage())
	rejected(t, res)
	wantAll(t, res.Command+" stderr", res.Stderr, "ImageNotFound")
}
