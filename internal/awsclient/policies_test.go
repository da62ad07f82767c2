package awsclient_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/awsclient/fake"
)

func TestRepositoryPolicy(t *testing.T) {
	tests := map[string]struct {
		repo      string
		policy    *string
		wantText  string
		wantFound bool
		wantIs    error
	}{
		"a repository with a policy":    {repo: "team/app", policy: aws.String(`{"Statement":[]}`), wantText: `{"Statement":[]}`, wantFound: true},
		"a repository without a policy": {repo: "team/app"},
		"a missing repository":          {repo: "nope", wantIs: awsclient.ErrRepositoryNotFound},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv()
			e.ecr.Repositories["team/app"].Policy = tc.policy
			for range 2 { // the second answer comes from the cache
				text, found, err := e.l.RepositoryPolicy(context.Background(), awsclient.Repository{Registry: awsclient.Registry{Region: region, Account: registry}, Name: tc.repo})
				if tc.wantIs != nil {
					if !errors.Is(err, tc.wantIs) {
						t.Fatalf("err = %v, want %v", err, tc.wantIs)
					}
				} else if err != nil {
					t.Fatal(err)
				}
				if text != tc.wantText || found != tc.wantFound {
					t.Errorf("= %q, %v; want %q, %v", text, found, tc.wantText, tc.wantFound)
				}
			}
			if got := e.ecr.Calls("GetRepositoryPolicy"); got != 1 {
				t.Errorf("calls = %d, want 1", got)
			}
		})
	}
}

func TestRegistryPolicyAndScope(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	e.ecr.RegistryPolicy = aws.String(`{"Statement":[]}`)
	e.ecr.AccountSettings = map[string]string{"REGISTRY_POLICY_SCOPE": "V2"}
	text, found, err := e.l.RegistryPolicy(ctx, awsclient.Registry{Region: region, Account: registry})
	if err != nil || !found || text != `{"Statement":[]}` {
		t.Fatalf("RegistryPolicy = %q, %v, %v", text, found, err)
	}
	scope, err := e.l.RegistryPolicyScope(ctx, awsclient.Registry{Region: region, Account: registry})
	if err != nil || scope != awsclient.ScopeV2 {
		t.Fatalf("RegistryPolicyScope = %q, %v", scope, err)
	}
	if got := e.sts.Calls("GetCallerIdentity"); got != 1 {
		t.Errorf("GetCallerIdentity calls = %d, want 1 (cached)", got)
	}

	e.ecr.RegistryPolicy = nil
	e2 := newEnv()
	_, found, err = e2.l.RegistryPolicy(ctx, awsclient.Registry{Region: region, Account: registry})
	if err != nil || found {
		t.Fatalf("registry without a policy: found %v, err %v", found, err)
	}
}

func TestRegistrySettingsOfAnotherAccountNeedItsCredentials(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	const other = "210987654321"
	_, _, err := e.l.RegistryPolicy(ctx, awsclient.Registry{Region: region, Account: other})
	if !errors.Is(err, awsclient.ErrNotOwnAccount) || awsclient.ClassOf(err) != awsclient.ClassAccessDenied {
		t.Fatalf("err = %v, want ErrNotOwnAccount", err)
	}
	if _, err := e.l.RegistryPolicyScope(ctx, awsclient.Registry{Region: region, Account: other}); !errors.Is(err, awsclient.ErrNotOwnAccount) {
		t.Fatalf("scope err = %v, want ErrNotOwnAccount", err)
	}
	if got := e.ecr.Calls("GetRegistryPolicy") + e.ecr.Calls("GetAccountSetting"); got != 0 {
		t.Fatalf("ECR was asked %d times about the wrong registry", got)
	}

	// With an assumed role for the other account, its registry is readable.
	assumed := newEnv()
	l := awsclient.NewLookups(&fake.Clients{ECRClient: assumed.ecr, STSClient: assumed.sts,
		STSByAccount: map[string]awsclient.STSAPI{other: &fake.STS{Account: other}}}, awsclient.Options{})
	if _, _, err := l.RegistryPolicy(ctx, awsclient.Registry{Region: region, Account: other}); err != nil {
		t.Fatalf("with an assumed role: %v", err)
	}
}

func TestPullThroughCacheRulesArePaginated(t *testing.T) {
	e := newEnv()
	e.ecr.PullThroughCacheRules = []types.PullThroughCacheRule{
		{EcrRepositoryPrefix: aws.String("docker-hub"), UpstreamRegistry: types.UpstreamRegistryDockerHub, UpstreamRegistryUrl: aws.String("registry-1.docker.io")},
		{EcrRepositoryPrefix: aws.String("quay"), UpstreamRegistry: types.UpstreamRegistryQuay, UpstreamRegistryUrl: aws.String("quay.io")},
	}
	rules, err := e.l.PullThroughCacheRules(context.Background(), awsclient.Registry{Region: region, Account: registry})
	if err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for _, r := range rules {
		prefixes = append(prefixes, r.EcrRepositoryPrefix)
	}
	if !slices.Equal(prefixes, []string{"docker-hub", "quay"}) || rules[1].UpstreamRegistryURL != "quay.io" {
		t.Fatalf("rules = %+v", rules)
	}
	if got := e.ecr.Calls("DescribePullThroughCacheRules"); got != 2 {
		t.Fatalf("calls = %d, want 2 pages", got)
	}
}
