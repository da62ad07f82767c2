package preflight

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
	"github.com/ecr-preflight/ecr-preflight/internal/imageref"
)

// What a pull through a pull-through cache rule needs besides the pull
// itself (AWS: "IAM permissions required to sync an upstream registry with
// an Amazon ECR private registry"). BatchImportUpstreamImage may come from
// an identity policy, the repository policy or the registry policy;
// CreateRepository, needed when the cache repository does not exist yet,
// only from an identity policy or the registry policy.
const (
	ActionBatchImportUpstreamImage = "ecr:BatchImportUpstreamImage"
	ActionCreateRepository         = "ecr:CreateRepository"
)

// cacheRule is what is known of the pull-through cache rule a repository
// falls under. It is looked up only when an image or the repository is
// missing.
type cacheRule struct {
	looked bool
	// rule is the matching rule; nil when none matches or the rules could
	// not be read.
	rule *awsclient.PullThroughCacheRule
	// err: the rules could not be read.
	err error
}

func (e *Engine) cacheRuleFor(ctx context.Context, g *repoGroup) cacheRule {
	t := g.target
	c := cacheRule{looked: true}
	rules, err := e.lookups.PullThroughCacheRules(ctx, t.Registry)
	if err != nil {
		e.logLookupFailure(ctx, "listing the pull-through cache rules of account "+t.Account, err)
		c.err = err
		return c
	}
	prefixes := make([]string, len(rules))
	for i, r := range rules {
		prefixes[i] = r.EcrRepositoryPrefix
	}
	ptc, ok := g.images[0].MatchPullThroughCachePrefix(prefixes)
	if !ok {
		return c
	}
	if i := slices.IndexFunc(rules, func(r awsclient.PullThroughCacheRule) bool {
		return strings.Trim(r.EcrRepositoryPrefix, "/") == ptc.Prefix
	}); i >= 0 {
		c.rule = &rules[i]
	}
	return c
}

// unsure reports whether rules that could not be read might cover repo. A
// cache repository sits under its rule's prefix, so an unnested name is
// taken not to be one (a ROOT rule aside: see the README).
func (c cacheRule) unsure(repo string) bool {
	_, _, nested := strings.Cut(repo, "/")
	return c.err != nil && nested
}

// upstream names the rule's upstream registry for messages.
func (c cacheRule) upstream() string {
	switch {
	case c.rule == nil:
		return "the upstream registry"
	case c.rule.UpstreamRegistryURL != "":
		return c.rule.UpstreamRegistryURL
	case c.rule.UpstreamRegistry != "":
		return c.rule.UpstreamRegistry
	}
	return "the upstream registry"
}

// cause says in a few words why the rules could not be read: our words
// and AWS's error code, never AWS's text (see awsclient.CauseOf).
func (c cacheRule) cause() string {
	if le, ok := errors.AsType[*awsclient.LookupError](c.err); ok {
		return le.Brief()
	}
	return awsclient.CauseOf(c.err)
}

// missingImage explains an image missing from an existing repository.
// imported reports that a pull-through cache rule imports it on the first
// pull, so the node roles' ecr:BatchImportUpstreamImage decides.
func (c cacheRule) missingImage(img imageref.Image, t target, withRoles bool) (f Finding, imported bool) {
	switch {
	case c.rule != nil:
		return imageImportedOnPull(img, t, c.upstream(), withRoles), true
	case c.unsure(t.Name):
		return imageMaybeImported(img, t, c.cause()), false
	}
	return imageNotFound(img, t), false
}

// missingRepository explains a repository that does not exist, for all the
// images of g: definite, unless a pull-through cache rule creates it on the
// first pull (then the node roles' permissions to create it, import into
// it and pull from it decide) or rules that could not be read might.
func (e *Engine) missingRepository(ctx context.Context, g *repoGroup, ans *repoAnswer, withRoles bool, res resourcePolicies, problems []Finding, awaitRoles func() []roleAnswer) {
	t := g.target
	c := e.cacheRuleFor(ctx, g)
	switch {
	case c.unsure(t.Name):
		// A rule we could not read may create it on the first pull: could
		// not check is not cannot pull.
		ans.addAll(repositoryMaybeCached(t, c.cause()))
		return
	case c.rule == nil:
		ans.addAll(repositoryNotFound(t))
		return
	}
	ans.addAll(repositoryCreatedOnPull(t, strings.Trim(c.rule.EcrRepositoryPrefix, "/"), c.upstream(), withRoles))
	if !withRoles {
		return
	}
	ans.addAll(problems...)
	// The new repository starts without a policy. (A repository creation
	// template could give it one; templates are not read: see the README.)
	res.Repository = policyInput{}
	for _, role := range awaitRoles() {
		if role.problem != nil {
			ans.addAll(*role.problem)
			continue
		}
		ans.addAll(e.decider.evaluatePull(t, role.policies, res)...)
		ans.addAll(e.decider.evaluateImport(t, c, role.policies, res, true)...)
	}
}

// evaluateImport answers whether ECR may, on role's pull, import the image
// from the cache rule's upstream into t (creating t first when create is
// set), as findings.
func (d decider) evaluateImport(t target, c cacheRule, rp rolePolicies, res resourcePolicies, create bool) []Finding {
	actions := []string{ActionBatchImportUpstreamImage}
	if create {
		actions = []string{ActionCreateRepository, ActionBatchImportUpstreamImage}
	}
	// The registry policy governs pull-through cache whatever its scope.
	registries := d.candidates(res.Registry, registryPolicyName+t.Account)
	var findings []Finding
	for _, action := range actions {
		repos := d.repositoryCandidates(res)
		if action == ActionCreateRepository {
			repos = []*iampolicy.NamedPolicy{nil} // no repository policy can grant creating it
		}
		req := d.baseRequest(rp)
		req.Action, req.Resource = action, t.ARN
		f, ok, settled := agreed(repos, registries, func(repo, registry *iampolicy.NamedPolicy) (Finding, bool) {
			var decisions []iampolicy.Decision
			for _, p := range []*iampolicy.NamedPolicy{repo, registry} {
				if p != nil || len(decisions) == 0 {
					decisions = append(decisions, iampolicy.Evaluate(req, iampolicy.PolicySet{Identity: rp.Identity, Boundary: rp.Boundary, Resource: p}))
				}
			}
			return importFinding(t, c, rp, action, decisions)
		})
		switch {
		case !settled && res.Registry.Unknown:
			// A registry policy of another account is unread without a
			// LookupFailed finding (it does not govern pulls under the
			// default scope), so say here what it leaves open.
			findings = append(findings, cacheUnreadRegistry(t, rp, action))
		case !settled:
			// An unread repository policy: its LookupFailed finding says so.
		case ok:
			findings = append(findings, f)
		}
	}
	return findings
}

// importFinding judges one action of a pull-through cache import: allowed
// when no decision denies it explicitly and one allows it.
func importFinding(t target, c cacheRule, rp rolePolicies, action string, decisions []iampolicy.Decision) (Finding, bool) {
	consequence := "so ECR cannot import the image from " + c.upstream() + " on the first pull"
	if action == ActionCreateRepository {
		consequence = "so ECR cannot create the cache repository on the first pull"
	}
	for _, dec := range decisions {
		if dec.Decision == iampolicy.ExplicitDeny {
			return cacheDenied(t, rp, action, firstReason(dec, "Deny"), consequence), true
		}
	}
	if slices.ContainsFunc(decisions, func(dec iampolicy.Decision) bool { return dec.Decision == iampolicy.Allow }) {
		return Finding{}, false
	}
	for _, dec := range decisions {
		if dec.Decision == iampolicy.Undetermined {
			return undetermined(rp.ARN, action, "repository "+t.Name, dec), true
		}
	}
	missing := decisions[0].Missing
	boundary := rp.Boundary != nil && slices.Contains(missing, iampolicy.SourceBoundary) && !slices.Contains(missing, iampolicy.SourceIdentity)
	scope := t.ARN
	if c.rule != nil {
		if prefix := strings.Trim(c.rule.EcrRepositoryPrefix, "/"); prefix != "ROOT" {
			scope = strings.TrimSuffix(t.ARN, t.Name) + prefix + "/*"
		}
	}
	return cacheNotAllowed(t, rp, action, scope, consequence, boundary), true
}
