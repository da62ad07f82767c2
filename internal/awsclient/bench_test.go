package awsclient_test

import (
	"context"
	"testing"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
)

// BenchmarkLookupsWarm measures the admission path when every answer is
// cached: what each image costs once the cache is warm.
func BenchmarkLookupsWarm(b *testing.B) {
	ctx := context.Background()
	e := newEnv()
	withRoles(e)
	e.ecr.AccountSettings = map[string]string{"REGISTRY_POLICY_SCOPE": "V2"}
	ids := []awsclient.ImageID{{Tag: "v1"}}
	lookup := func() {
		if _, _, err := e.l.DescribeImages(ctx, teamApp, ids); err != nil {
			b.Fatal(err)
		}
		if _, _, err := e.l.RepositoryPolicy(ctx, teamApp); err != nil {
			b.Fatal(err)
		}
		if _, err := e.l.RolePolicies(ctx, "arn:aws:iam::123456789012:role/eks/node"); err != nil {
			b.Fatal(err)
		}
	}
	lookup()
	calls := e.ecr.TotalCalls() + e.iam.TotalCalls()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			lookup()
		}
	})
	if got := e.ecr.TotalCalls() + e.iam.TotalCalls(); got != calls {
		b.Fatalf("warm lookups made %d AWS calls", got-calls)
	}
}
