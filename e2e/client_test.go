package e2e

import (
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/ecr-preflight/ecr-preflight/e2e/harness"
)

// testGoClient is the seed through a controller-runtime client, as an
// operator or a CD tool would send it: a denial is a Forbidden error
// carrying the message, and warnings reach rest.Config's warning handler.
func (s *suite) testGoClient(t *testing.T) {
	const denyNS, warnNS = "go-deny", "go-warn"
	s.namespace(t, denyNS, "deny")
	s.namespace(t, warnNS, "warn")
	warnings := &harness.Warnings{}
	c := s.env.Client(t, warnings)

	err := c.Create(caseContext(t), harness.Deployment(denyNS, "ui-private", s.env.Seed.Image))
	if !apierrors.IsForbidden(err) {
		t.Fatalf("create in %s: err = %v, want Forbidden", denyNS, err)
	}
	wantAll(t, "the Forbidden error", err.Error(), `statement "new policy"`, s.env.Seed.RoleARN, "Effect to Allow")

	warnings.Reset()
	if err := c.Create(caseContext(t), harness.Deployment(warnNS, "ui-private", s.env.Seed.Image)); err != nil {
		t.Fatalf("create in %s: %v, want accepted", warnNS, err)
	}
	got := strings.Join(warnings.List(), "\n")
	wantAll(t, "the warnings", got, "RepositoryPolicyDenies", `statement "new policy"`)
}
