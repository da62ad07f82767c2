package preflight

import (
	"context"
	"errors"
	"fmt"
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
	rules, err := e.lookups.PullThroughCacheRules(ctx, t.Region, t.Account)
	if err != nil {
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
	return c.err != nil && strings.Contains(repo, "/")
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

// cause says in a few words why the rules could not be read.
func (c cacheRule) cause() string {
	if le := (*awsclient.LookupError)(nil); errors.As(c.err, &le) {
		return le.Brief()
	}
	return c.err.Error()
}

// missingImage explains an image missing from an existing repository.
// imported reports that a pull-through cache rule imports it on the first
// pull, so the node roles' ecr:BatchImportUpstreamImage decides.
func (c cacheRule) missingImage(img imageref.Image, t target, withRoles bool) (f Finding, imported bool) {
	what := "tag " + img.Tag
	if img.Digest != "" {
		what = "digest " + img.Digest
	}
	switch {
	case c.rule != nil:
		f = Finding{
			Code: CodeImageImportedOnPull, Severity: SeverityWarning,
			Message: fmt.Sprintf("%s: %s is not in pull-through cache repository %s yet; ECR imports it from %s on the first pull (whether %s has it was not checked)",
				img.Original, what, t.Repository, c.upstream(), c.upstream()),
			Fix: fmt.Sprintf("make sure %s has the image", c.upstream()),
		}
		if !withRoles {
			f.Fix += fmt.Sprintf(", and that the node role may %s (no node role was given, so that was not checked)", ActionBatchImportUpstreamImage)
		}
		return f, true
	case c.unsure(t.Repository):
		f = imageNotFound(img, t)
		f.Severity = SeverityWarning
		f.Message += fmt.Sprintf("; if it is under a pull-through cache rule it is imported on the first pull (the rules could not be read: %s)", c.cause())
		return f, false
	}
	return imageNotFound(img, t), false
}

// missingRepository explains a repository that does not exist, for all the
// images of g: definite, unless a pull-through cache rule creates it on the
// first pull (then the node roles' permissions to create it, import into
// it and pull from it decide) or rules that could not be read might.
func (e *Engine) missingRepository(ctx context.Context, g *repoGroup, results []Result, addAll func(...Finding), withRoles bool, res resourcePolicies, problems []Finding, awaitRoles func() []roleAnswer) {
	t := g.target
	c := e.cacheRuleFor(ctx, g)
	f := Finding{
		Code: CodeRepositoryNotFound, Severity: SeverityError,
		Message: fmt.Sprintf("repository %s does not exist in registry %s (%s)", t.Repository, t.Account, t.Region),
		Fix: fmt.Sprintf("check the repository name, or create it in account %s: aws ecr create-repository --repository-name %s --region %s",
			t.Account, t.Repository, t.Region),
	}
	switch {
	case c.unsure(t.Repository):
		// A rule we could not read may create it on the first pull: could
		// not check is not cannot pull.
		prefix, _, _ := strings.Cut(t.Repository, "/")
		f.Severity = SeverityWarning
		f.Message = fmt.Sprintf("repository %s does not exist; if it is under a pull-through cache prefix such as %q it is created on the first pull (the rules could not be read: %s)",
			t.Repository, prefix, c.cause())
		addAll(f)
		return
	case c.rule == nil:
		addAll(f)
		return
	}
	f.Severity = SeverityWarning
	f.Message = fmt.Sprintf("repository %s does not exist yet; the pull-through cache rule for prefix %q creates it and imports the image from %s on the first pull",
		t.Repository, strings.Trim(c.rule.EcrRepositoryPrefix, "/"), c.upstream())
	if !withRoles {
		f.Fix = fmt.Sprintf("make sure the node role may %s and %s under that prefix (no node role was given, so that was not checked)",
			ActionCreateRepository, ActionBatchImportUpstreamImage)
		addAll(f)
		return
	}
	f.Fix = fmt.Sprintf("make sure %s has the image", c.upstream())
	addAll(f)
	addAll(problems...)
	// The new repository starts without a policy. (A repository creation
	// template could give it one; templates are not read: see the README.)
	res.Repository = policyInput{}
	for _, role := range awaitRoles() {
		if role.problem != nil {
			addAll(*role.problem)
			continue
		}
		for j := range results {
			results[j].Findings = append(results[j].Findings, e.decider.evaluatePull(results[j].Image, t, role.policies, res)...)
			results[j].Findings = append(results[j].Findings, e.decider.evaluateImport(results[j].Image, t, c, role.policies, res, true)...)
		}
	}
}

// evaluateImport answers whether ECR may, on role's pull, import the image
// from the cache rule's upstream into t (creating t first when create is
// set), as findings.
func (d decider) evaluateImport(image string, t target, c cacheRule, rp rolePolicies, res resourcePolicies, create bool) []Finding {
	actions := []string{ActionBatchImportUpstreamImage}
	if create {
		actions = []string{ActionCreateRepository, ActionBatchImportUpstreamImage}
	}
	// The registry policy governs pull-through cache whatever its scope.
	registries := d.candidates(res.Registry, "the registry policy of account "+t.Account)
	var findings []Finding
	for _, action := range actions {
		repos := d.repositoryCandidates(res)
		if action == ActionCreateRepository {
			repos = []*iampolicy.NamedPolicy{nil} // no repository policy can grant creating it
		}
		req := d.baseRequest(rp)
		req.Action, req.Resource = action, t.RepositoryARN
		f, ok, settled := agreed(repos, registries, func(repo, registry *iampolicy.NamedPolicy) (Finding, bool) {
			var decisions []iampolicy.Decision
			for _, p := range []*iampolicy.NamedPolicy{repo, registry} {
				if p != nil || len(decisions) == 0 {
					decisions = append(decisions, iampolicy.Evaluate(req, iampolicy.PolicySet{Identity: rp.Identity, Boundary: rp.Boundary, Resource: p}))
				}
			}
			return d.importFinding(image, t, c, rp, action, decisions)
		})
		switch {
		case !settled && res.Registry.Unknown:
			// A registry policy of another account is unread without a
			// LookupFailed finding (it does not govern pulls under the
			// default scope), so say here what it leaves open.
			findings = append(findings, Finding{
				Code: CodeUndetermined, Severity: SeverityWarning, Role: rp.ARN, Action: action,
				Message: fmt.Sprintf("%s: whether role %s may %s on repository %s depends on the registry policy of account %s, which could not be read",
					image, roleName(rp.ARN), action, t.Repository, t.Account),
				Fix: fmt.Sprintf("let ecr-preflight read it: --assume-role %s=ROLE_ARN with a role in account %s that may ecr:GetRegistryPolicy", t.Account, t.Account),
			})
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
func (d decider) importFinding(image string, t target, c cacheRule, rp rolePolicies, action string, decisions []iampolicy.Decision) (Finding, bool) {
	role := roleName(rp.ARN)
	consequence := "so ECR cannot import the image from " + c.upstream() + " on the first pull"
	if action == ActionCreateRepository {
		consequence = "so ECR cannot create the cache repository on the first pull"
	}
	f := Finding{Code: CodePullThroughCacheNotAllowed, Severity: SeverityError, Role: rp.ARN, Action: action}
	for _, dec := range decisions {
		if dec.Decision != iampolicy.ExplicitDeny {
			continue
		}
		r := firstReason(dec, "Deny")
		f.Statement = r.Statement
		f.Message = fmt.Sprintf("%s: statement %q of %s denies %s to role %s, %s", image, r.Statement, describePolicy(r, role), action, role, consequence)
		if r.Policy == iampolicy.SourceResource {
			f.Fix = fmt.Sprintf("edit %s: exempt role %s from statement %q or narrow its actions", r.Name, role, r.Statement)
		} else {
			f.Fix = identityDenyFix(rp, r, action, action, "")
		}
		return f, true
	}
	if slices.ContainsFunc(decisions, func(dec iampolicy.Decision) bool { return dec.Decision == iampolicy.Allow }) {
		return Finding{}, false
	}
	for _, dec := range decisions {
		if dec.Decision == iampolicy.Undetermined {
			return d.undetermined(image, rp.ARN, action, "repository "+t.Repository, dec), true
		}
	}
	missing := decisions[0].Missing
	if rp.Boundary != nil && slices.Contains(missing, iampolicy.SourceBoundary) && !slices.Contains(missing, iampolicy.SourceIdentity) {
		f.Message = fmt.Sprintf("%s: the permissions boundary %s of role %s does not allow %s on repository %s, %s",
			image, rp.Boundary.Name, role, action, t.Repository, consequence)
		f.Fix = fmt.Sprintf("allow %s on %s in the permissions boundary %s", action, t.RepositoryARN, rp.Boundary.Name)
		return f, true
	}
	f.Message = fmt.Sprintf("%s: no policy allows role %s to %s on repository %s, %s", image, role, action, t.Repository, consequence)
	scope := t.RepositoryARN
	if c.rule != nil {
		if prefix := strings.Trim(c.rule.EcrRepositoryPrefix, "/"); prefix != "ROOT" {
			scope = strings.TrimSuffix(t.RepositoryARN, t.Repository) + prefix + "/*"
		}
	}
	if action == ActionCreateRepository {
		f.Fix = fmt.Sprintf("allow %s on %s to role %s in an identity policy or the registry policy of account %s (neither AmazonEC2ContainerRegistryReadOnly nor AmazonEC2ContainerRegistryPullOnly grants it)",
			action, scope, role, t.Account)
	} else {
		f.Fix = fmt.Sprintf("attach AmazonEC2ContainerRegistryPullOnly to role %s (it grants %s), or allow %s on %s to the role in the registry policy of account %s",
			role, action, action, scope, t.Account)
	}
	return f, true
}
