package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/e2e/harness"
)

// The seed scenario itself (shared/seed): warned about, rejected, fixed.

func (s *suite) testWarn(t *testing.T) {
	const ns = "seed-warn"
	s.namespace(t, ns, "warn")

	res := s.kubectl(t, "apply", "-f", harness.ManifestFile, "-n", ns)
	accepted(t, res, "deployment.apps/ui-private created")
	wantAll(t, res.Command+" warnings", strings.Join(res.Warnings(), "\n"),
		`statement "new policy"`, "RepositoryPolicyDenies", s.env.Seed.Image)
}

func (s *suite) testDeny(t *testing.T) {
	const ns = "seed-deny"
	s.namespace(t, ns, "deny")

	res := s.kubectl(t, "apply", "-f", harness.ManifestFile, "-n", ns)
	rejected(t, res)
	wantAll(t, res.Command+" stderr", res.Stderr,
		s.env.Seed.Image, "RepositoryPolicyDenies", `statement "new policy"`,
		"role "+s.env.Seed.RoleARN, "Fix:", "change its Effect to Allow", "aws ecr set-repository-policy")

	// Rejected means not stored.
	if get := s.kubectl(t, "get", "deployment", "ui-private", "-n", ns); get.Err == nil || !strings.Contains(get.Stderr, "NotFound") {
		t.Errorf("%s after the rejection: err %v, want NotFound\n%s", get.Command, get.Err, get.Output)
	}
}

// testFixed changes the shared seed: it runs last and puts the Deny back.
func (s *suite) testFixed(t *testing.T) {
	const ns = "seed-fixed"
	s.namespace(t, ns, "deny")

	rejected(t, s.kubectl(t, "apply", "-f", harness.ManifestFile, "-n", ns))

	seed := s.env.Seed
	if err := seed.Fix(caseContext(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Not caseContext: t's context is already cancelled in cleanups.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := seed.Break(ctx); err != nil {
			t.Errorf("restoring the seed's Deny: %v", err)
		}
	})
	policy, err := s.env.RepositoryPolicy(caseContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(policy, `"Allow"`) {
		t.Fatalf("repository policy after Fix = %s, want Effect Allow", policy)
	}

	// Right away: the rejection above is not served from a cache.
	res := s.kubectl(t, "apply", "-f", harness.ManifestFile, "-n", ns)
	accepted(t, res, "deployment.apps/ui-private created")
	noWarnings(t, res)
}
