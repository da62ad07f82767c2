package awsclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// policyAnswer is a policy document or its known absence.
type policyAnswer struct {
	text  string
	found bool
	// repoMissing: the repository itself does not exist.
	repoMissing bool
}

func (l *Lookups) policyTTL(a policyAnswer) time.Duration {
	if a.found {
		return l.opts.TTL.Policy
	}
	return l.opts.TTL.NotFound
}

// RepositoryPolicy returns the repository's resource policy (JSON).
// found is false when the repository has no policy; a repository that does
// not exist gives an error wrapping ErrRepositoryNotFound.
func (l *Lookups) RepositoryPolicy(ctx context.Context, r Repository) (text string, found bool, err error) {
	return repositoryPolicy[*ecrtypes.RepositoryPolicyNotFoundException](ctx, l, r, repositoryPolicyGet{
		kind: KindRepositoryPolicy, keyPrefix: "repopolicy", policy: "repository policy", operation: "GetRepositoryPolicy",
		get: func(ctx context.Context, c ECRAPI) (*string, error) {
			out, err := c.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: aws.String(r.Name), RegistryId: aws.String(r.Account)})
			if err != nil {
				return nil, err
			}
			return out.PolicyText, nil
		},
	})
}

// repositoryPolicyGet is one of ECR's reads of a repository's policy text
// (GetRepositoryPolicy, GetLifecyclePolicy): what repositoryPolicy needs
// to know of it.
type repositoryPolicyGet struct {
	kind      Kind   // KindLifecyclePolicy, for WithFresh
	keyPrefix string // "lifecycle", the cache key's first part
	policy    string // "lifecycle policy", as errors name it
	operation string // "GetLifecyclePolicy"; its IAM action is ecr:<operation>
	// get asks ECR for r's policy with c and returns its text.
	get func(ctx context.Context, c ECRAPI) (*string, error)
}

// repositoryPolicy returns the text of r's policy that g reads; found is
// false when ECR answers with NoPolicy, the policy's own not-found
// exception. A repository that does not exist gives a ClassNotFound
// LookupError wrapping ErrRepositoryNotFound; other failures are a
// LookupError for the operation's action. Policies are cached for
// TTLs.Policy and their absence (or the repository's) for TTLs.NotFound.
func repositoryPolicy[NoPolicy error](ctx context.Context, l *Lookups, r Repository, g repositoryPolicyGet) (text string, found bool, err error) {
	what := fmt.Sprintf("getting the %s of %s", g.policy, r.Name)
	action := "ecr:" + g.operation
	a, err := cached(ctx, l, g.kind, key(g.keyPrefix, r.Region, r.Account, r.Name), what, l.policyTTL,
		func(ctx context.Context) (policyAnswer, error) {
			client, err := l.clients.ECR(r.Region, r.Account)
			if err != nil {
				return policyAnswer{}, fmt.Errorf("%s: %w", what, err)
			}
			text, err := call(ctx, l, g.operation, func(ctx context.Context) (*string, error) {
				return g.get(ctx, client)
			})
			_, noPolicy := errors.AsType[NoPolicy](err)
			var noRepo *ecrtypes.RepositoryNotFoundException
			switch {
			case noPolicy:
				return policyAnswer{}, nil
			case errors.As(err, &noRepo):
				return policyAnswer{repoMissing: true}, nil
			case err != nil:
				return policyAnswer{}, lookupError(what, action, err)
			}
			return policyAnswer{text: aws.ToString(text), found: true}, nil
		})
	if err == nil && a.repoMissing {
		err = &LookupError{What: what, Action: action, Class: ClassNotFound, Err: ErrRepositoryNotFound}
	}
	return a.text, a.found, err
}

// RegistryPolicy returns the private registry's policy (JSON); found is
// false when the registry has none. ECR only answers this for the caller's
// own registry, so for a registry in another account an assumed role must be
// configured for it, or the error wraps ErrNotOwnAccount.
func (l *Lookups) RegistryPolicy(ctx context.Context, r Registry) (text string, found bool, err error) {
	what := fmt.Sprintf("getting the registry policy of %s in %s", r.Account, r.Region)
	a, err := cached(ctx, l, KindRegistryPolicy, key("regpolicy", r.Region, r.Account), what, l.policyTTL,
		func(ctx context.Context) (policyAnswer, error) {
			client, err := l.ownRegistryClient(ctx, what, "ecr:GetRegistryPolicy", r)
			if err != nil {
				return policyAnswer{}, err
			}
			out, err := call(ctx, l, "GetRegistryPolicy", func(ctx context.Context) (*ecr.GetRegistryPolicyOutput, error) {
				return client.GetRegistryPolicy(ctx, &ecr.GetRegistryPolicyInput{})
			})
			var noPolicy *ecrtypes.RegistryPolicyNotFoundException
			switch {
			case errors.As(err, &noPolicy):
				return policyAnswer{}, nil
			case err != nil:
				return policyAnswer{}, lookupError(what, "ecr:GetRegistryPolicy", err)
			}
			return policyAnswer{text: aws.ToString(out.PolicyText), found: true}, nil
		})
	return a.text, a.found, err
}

// Registry policy scopes (ECR account setting REGISTRY_POLICY_SCOPE).
const (
	// ScopeV1: the registry policy governs only replication and
	// pull-through-cache actions (ecr:ReplicateImage,
	// ecr:BatchImportUpstreamImage, ecr:CreateRepository); it does not take
	// part in a pull's authorisation.
	ScopeV1 = "V1"
	// ScopeV2: the registry policy applies to every ECR action, pulls
	// included, alongside repository and identity policies. The default
	// for registries created since the setting was introduced.
	ScopeV2 = "V2"
)

// RegistryPolicyScope returns the registry's REGISTRY_POLICY_SCOPE setting,
// ScopeV1 or ScopeV2. Like RegistryPolicy it needs the registry's own
// account's credentials (ErrNotOwnAccount otherwise).
func (l *Lookups) RegistryPolicyScope(ctx context.Context, r Registry) (string, error) {
	what := fmt.Sprintf("getting the registry policy scope of %s in %s", r.Account, r.Region)
	return cached(ctx, l, KindRegistryPolicyScope, key("scope", r.Region, r.Account), what, fixed[string](l.opts.TTL.Policy),
		func(ctx context.Context) (string, error) {
			client, err := l.ownRegistryClient(ctx, what, "ecr:GetAccountSetting", r)
			if err != nil {
				return "", err
			}
			out, err := call(ctx, l, "GetAccountSetting", func(ctx context.Context) (*ecr.GetAccountSettingOutput, error) {
				return client.GetAccountSetting(ctx, &ecr.GetAccountSettingInput{Name: aws.String("REGISTRY_POLICY_SCOPE")})
			})
			if err != nil {
				return "", lookupError(what, "ecr:GetAccountSetting", err)
			}
			return aws.ToString(out.Value), nil
		})
}

// PullThroughCacheRule is one of a registry's pull-through-cache rules.
type PullThroughCacheRule struct {
	// EcrRepositoryPrefix: repositories named PREFIX/... are cached from the
	// upstream ("ROOT" for a rule without a prefix).
	EcrRepositoryPrefix string
	// UpstreamRegistry is ECR's name for the upstream ("docker-hub", ...).
	UpstreamRegistry string
	// UpstreamRegistryURL is the upstream registry's host.
	UpstreamRegistryURL string
	// UpstreamRepositoryPrefix is the upstream path prefix, if any.
	UpstreamRepositoryPrefix string
}

// PullThroughCacheRules returns the registry's pull-through-cache rules.
// Match an image against their prefixes with
// imageref.Image.MatchPullThroughCachePrefix: a repository under a rule's
// prefix may legitimately not exist yet, since the first pull creates it.
func (l *Lookups) PullThroughCacheRules(ctx context.Context, r Registry) ([]PullThroughCacheRule, error) {
	what := fmt.Sprintf("listing the pull-through-cache rules of %s in %s", r.Account, r.Region)
	return cached(ctx, l, KindPullThroughCacheRules, key("ptc", r.Region, r.Account), what, fixed[[]PullThroughCacheRule](l.opts.TTL.Policy),
		func(ctx context.Context) ([]PullThroughCacheRule, error) {
			client, err := l.clients.ECR(r.Region, r.Account)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			var rules []PullThroughCacheRule
			err = eachPage(ctx, l, "DescribePullThroughCacheRules",
				ecr.NewDescribePullThroughCacheRulesPaginator(client, &ecr.DescribePullThroughCacheRulesInput{RegistryId: aws.String(r.Account)}),
				func(out *ecr.DescribePullThroughCacheRulesOutput) {
					for _, r := range out.PullThroughCacheRules {
						rules = append(rules, PullThroughCacheRule{
							EcrRepositoryPrefix:      aws.ToString(r.EcrRepositoryPrefix),
							UpstreamRegistry:         string(r.UpstreamRegistry),
							UpstreamRegistryURL:      aws.ToString(r.UpstreamRegistryUrl),
							UpstreamRepositoryPrefix: aws.ToString(r.UpstreamRepositoryPrefix),
						})
					}
				})
			if err != nil {
				return nil, lookupError(what, "ecr:DescribePullThroughCacheRules", err)
			}
			return rules, nil
		})
}

// CallerAccount returns the account that the credentials used for account's
// resources act as: account itself when an assumed role is configured for
// it, otherwise our own account.
func (l *Lookups) CallerAccount(ctx context.Context, account string) (string, error) {
	what := "getting our caller identity"
	return cached(ctx, l, KindCallerIdentity, key("caller", account), what, fixed[string](l.opts.TTL.Policy),
		func(ctx context.Context) (string, error) {
			client, err := l.clients.STS(account)
			if err != nil {
				return "", fmt.Errorf("%s: %w", what, err)
			}
			out, err := call(ctx, l, "GetCallerIdentity", func(ctx context.Context) (*sts.GetCallerIdentityOutput, error) {
				return client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			})
			if err != nil {
				return "", lookupError(what, "sts:GetCallerIdentity", err)
			}
			return aws.ToString(out.Account), nil
		})
}

// ownRegistryClient returns the ECR client for registryID if its
// credentials act as registryID's account: registry-level reads
// (GetRegistryPolicy, GetAccountSetting) take no registry ID and answer for
// the caller's own account, so asking with another account's credentials
// would silently describe the wrong registry.
func (l *Lookups) ownRegistryClient(ctx context.Context, what, action string, r Registry) (ECRAPI, error) {
	caller, err := l.CallerAccount(ctx, r.Account)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if caller != r.Account {
		return nil, &LookupError{What: what, Action: action, Class: ClassAccessDenied,
			Err: fmt.Errorf("%w: our credentials act as %s; configure an assume-role for %s", ErrNotOwnAccount, caller, r.Account)}
	}
	client, err := l.clients.ECR(r.Region, r.Account)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return client, nil
}
