package awsclient_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/awsseed"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/ecrstub"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

// TestLookupsThroughTheECRStub covers, against moto behind the ECR stub,
// what moto alone cannot answer: archived images, pull-through-cache rules,
// the registry policy scope, and ECR's failures.
func TestLookupsThroughTheECRStub(t *testing.T) {
	stub := ecrstub.Start(t, moto.Start(t))
	ctx := moto.Context(t)
	cfg := stub.Config()
	// The webhook's retryer decides the attempts: Config's RetryMaxAttempts
	// (1, for moto) would override it.
	cfg.Retryer, cfg.RetryMaxAttempts = awsclient.NewRetryer(awsclient.RetryOptions{}), 0
	newLookups := func(t *testing.T) *awsclient.Lookups {
		t.Helper()
		factory, err := awsclient.NewFactory(cfg, awsclient.FactoryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return awsclient.NewLookups(factory, awsclient.Options{CallTimeout: motoCallTimeout})
	}

	seed := awsseed.NewAccount(cfg, moto.DefaultAccount)
	live, err := seed.PushImage(ctx, "team/app", "v1")
	if err != nil {
		t.Fatal(err)
	}
	cold, err := seed.PushImage(ctx, "team/cold", "v1")
	if err != nil {
		t.Fatal(err)
	}
	stub.SetImageStatus("team/cold", cold, ecrtypes.ImageStatusArchived)

	t.Run("images are found with their status, archived ones included", func(t *testing.T) {
		tests := map[string]struct {
			repo       string
			id         awsclient.ImageID
			wantDigest string
			wantStatus string
		}{
			"an archived image by tag":    {repo: "team/cold", id: awsclient.ImageID{Tag: "v1"}, wantDigest: cold, wantStatus: "ARCHIVED"},
			"an archived image by digest": {repo: "team/cold", id: awsclient.ImageID{Digest: cold}, wantDigest: cold, wantStatus: "ARCHIVED"},
			"an active image":             {repo: "team/app", id: awsclient.ImageID{Tag: "v1"}, wantDigest: live, wantStatus: "ACTIVE"},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				found, missing, err := newLookups(t).DescribeImages(ctx, awsclient.Repository{Registry: awsclient.Registry{Region: moto.Region, Account: moto.DefaultAccount}, Name: tc.repo}, []awsclient.ImageID{tc.id})
				if err != nil || len(missing) != 0 || len(found) != 1 {
					t.Fatalf("found %+v, missing %v, err %v; want one image found", found, missing, err)
				}
				if found[0].Digest != tc.wantDigest || found[0].Status != tc.wantStatus {
					t.Errorf("found %s in status %q, want %s in %q", found[0].Digest, found[0].Status, tc.wantDigest, tc.wantStatus)
				}
			})
		}
	})

	t.Run("pull-through-cache rules come back across pages", func(t *testing.T) {
		// More than one page: ECR answers 100 rules per page by default.
		var rules []ecrstub.Rule
		var want []awsclient.PullThroughCacheRule
		for i := range 150 {
			r := ecrstub.Rule{EcrRepositoryPrefix: fmt.Sprintf("upstream-%03d", i), UpstreamRegistryURL: "registry-1.docker.io", UpstreamRegistry: "docker-hub"}
			rules = append(rules, r)
			want = append(want, awsclient.PullThroughCacheRule{EcrRepositoryPrefix: r.EcrRepositoryPrefix, UpstreamRegistry: "docker-hub", UpstreamRegistryURL: "registry-1.docker.io"})
		}
		rules = append(rules, ecrstub.Rule{RegistryID: otherAccount, EcrRepositoryPrefix: "elsewhere", UpstreamRegistryURL: "quay.io", UpstreamRegistry: "quay"})
		stub.SetPullThroughCacheRules(rules...)
		t.Cleanup(func() { stub.SetPullThroughCacheRules() })
		before := stub.Calls("DescribePullThroughCacheRules")

		got, err := newLookups(t).PullThroughCacheRules(ctx, awsclient.Registry{Region: moto.Region, Account: moto.DefaultAccount})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("got %d rules, want the %d of this registry in order:\ngot  %v\nwant %v", len(got), len(want), got, want)
		}
		if calls := stub.Calls("DescribePullThroughCacheRules") - before; calls != 2 {
			t.Errorf("%d DescribePullThroughCacheRules calls, want 2 pages", calls)
		}
	})

	t.Run("the registry policy scope is the configured one", func(t *testing.T) {
		// In order: the first case reads the stub's default.
		for _, scope := range []string{"", awsclient.ScopeV1, awsclient.ScopeV2} {
			want := scope
			if scope == "" {
				want = awsclient.ScopeV2
			} else {
				stub.SetAccountSetting(ecrstub.RegistryPolicyScope, scope)
			}
			got, err := newLookups(t).RegistryPolicyScope(ctx, awsclient.Registry{Region: moto.Region, Account: moto.DefaultAccount})
			if err != nil || got != want {
				t.Errorf("set %q: scope %q, err %v; want %q", scope, got, err, want)
			}
		}
	})

	t.Run("ECR's failures are classified", func(t *testing.T) {
		tests := map[string]struct {
			failure   ecrstub.Failure
			wantClass awsclient.Class
			wantCalls int
		}{
			"access denied is not retried":          {failure: ecrstub.AccessDenied("DescribeImages"), wantClass: awsclient.ClassAccessDenied, wantCalls: 1},
			"throttling beyond the retry":           {failure: ecrstub.Throttling(), wantClass: awsclient.ClassThrottled, wantCalls: 2},
			"a server error":                        {failure: ecrstub.ServerError(), wantClass: awsclient.ClassUnavailable, wantCalls: 2},
			"a bare HTTP 503":                       {failure: ecrstub.Failure{Status: http.StatusServiceUnavailable}, wantClass: awsclient.ClassUnavailable, wantCalls: 2},
			"one throttle is absorbed by the retry": {failure: withTimes(ecrstub.Throttling(), 1), wantClass: awsclient.ClassOK, wantCalls: 2},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				stub.Fail("DescribeImages", tc.failure)
				defer stub.Clear("DescribeImages")
				before := stub.Calls("DescribeImages")
				_, _, err := newLookups(t).DescribeImages(ctx, awsclient.Repository{Registry: awsclient.Registry{Region: moto.Region, Account: moto.DefaultAccount}, Name: "team/app"}, []awsclient.ImageID{{Tag: "v1"}})
				if got := awsclient.ClassOf(err); got != tc.wantClass {
					t.Errorf("err = %v (class %s), want class %s", err, got, tc.wantClass)
				}
				if got := stub.Calls("DescribeImages") - before; got != tc.wantCalls {
					t.Errorf("%d DescribeImages requests, want %d", got, tc.wantCalls)
				}
			})
		}
	})
}

// withTimes returns f failing only n requests.
func withTimes(f ecrstub.Failure, n int) ecrstub.Failure {
	f.Times = n
	return f
}
