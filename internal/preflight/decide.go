package preflight

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
	"github.com/ecr-preflight/ecr-preflight/internal/imageref"
)

// The actions a kubelet's pull needs, as ECR's documentation lists them for
// AmazonEC2ContainerRegistryPullOnly: a token from the registry, then the
// manifest and the layers from the repository.
const (
	ActionGetAuthorizationToken = "ecr:GetAuthorizationToken"
	ActionBatchGetImage         = "ecr:BatchGetImage"
	ActionGetDownloadURL        = "ecr:GetDownloadUrlForLayer"
)

// repositoryActions are checked against the repository ARN, in this order;
// the first failing one names the finding.
var repositoryActions = []string{ActionBatchGetImage, ActionGetDownloadURL}

// target is the repository a pull reads from, with what the evaluation
// needs of its ARN.
type target struct {
	awsclient.Repository
	ARN       string
	Partition string
}

func targetOf(img imageref.Image) target {
	return target{
		Repository: awsclient.Repository{Registry: awsclient.Registry{Region: img.Region, Account: img.Account}, Name: img.Repository},
		ARN:        img.RepositoryARN(),
		Partition:  img.Partition,
	}
}

func (t target) ref() *RepositoryRef {
	return &RepositoryRef{Name: t.Name, Account: t.Account, Region: t.Region}
}

// rolePolicies is what IAM says about one candidate node role.
type rolePolicies struct {
	ARN      string
	Role     awsclient.RoleARN
	Identity []iampolicy.NamedPolicy
	Boundary *iampolicy.NamedPolicy
	// Tags become aws:PrincipalTag/KEY context values.
	Tags map[string]string
}

// policyInput is one resource-side policy as the engine knows it: read
// (Policy, nil when there is none) or not readable (Unknown). An unread
// policy is never taken for "no policy": it could allow or deny anything.
type policyInput struct {
	Policy  *iampolicy.NamedPolicy
	Unknown bool
}

func knownPolicy(p *iampolicy.NamedPolicy) policyInput { return policyInput{Policy: p} }

// ECR's REGISTRY_POLICY_SCOPE values. Under V1 the registry policy governs
// replication and pull-through cache only; under V2 it governs pulls too.
const (
	scopeV1      = awsclient.ScopeV1
	scopeV2      = awsclient.ScopeV2
	scopeUnknown = ""
)

// resourcePolicies are the policies attached on the registry side.
type resourcePolicies struct {
	Repository policyInput
	// Registry is the registry policy, whatever its scope: it always
	// governs pull-through cache imports and repository creation.
	Registry policyInput
	// RegistryScope says whether Registry governs pulls: scopeV2 yes,
	// scopeV1 no (also when it holds no pull statement), scopeUnknown when
	// the scope could not be read.
	RegistryScope string
	// RepositoryMissing: GetRepositoryPolicy said the repository does not
	// exist.
	RepositoryMissing bool
}

// repositoryCandidates lists the repository policies that may stand in the
// evaluation, most permissive first (see candidates).
func (d decider) repositoryCandidates(res resourcePolicies) []*iampolicy.NamedPolicy {
	return d.candidates(res.Repository, "the repository policy")
}

// registryCandidatesForPulls lists the registry policies that may govern a
// pull: none under V1, the policy under V2, and both when the scope is
// unknown (the no-policy case first, as the one that rests on no
// assumption).
func (d decider) registryCandidatesForPulls(res resourcePolicies) []*iampolicy.NamedPolicy {
	switch res.RegistryScope {
	case scopeV1:
		return []*iampolicy.NamedPolicy{nil}
	case scopeV2:
		return d.candidates(res.Registry, "the registry policy")
	}
	return append([]*iampolicy.NamedPolicy{nil}, d.candidates(res.Registry, "the registry policy")...)
}

// candidates lists the policies that may stand for in: the one read, or for
// a policy that could not be read the two extremes every real policy lies
// between, "allow everything" first. Every pull decision is monotone in a
// resource policy, so if both extremes give the same answer every policy
// does; if they differ, the answer depends on what could not be read.
func (d decider) candidates(in policyInput, what string) []*iampolicy.NamedPolicy {
	if !in.Unknown {
		return []*iampolicy.NamedPolicy{in.Policy}
	}
	allow, deny := d.unread(what)
	return []*iampolicy.NamedPolicy{allow, deny}
}

// unread names the two extreme stand-ins for a policy that could not be
// read.
func (d decider) unread(what string) (allow, deny *iampolicy.NamedPolicy) {
	name := what + " (not readable)"
	return &iampolicy.NamedPolicy{Name: name, Policy: d.allowAll}, &iampolicy.NamedPolicy{Name: name, Policy: d.denyAll}
}

// newDecider builds a decider with the stand-ins for unread policies.
func newDecider(context map[string][]string, now func() time.Time) (decider, error) {
	const doc = `{"Version":"2012-10-17","Statement":[{"Sid":"NotRead","Effect":"%s","Principal":"*","Action":"*","Resource":"*"}]}`
	d := decider{context: context, now: now}
	var err error
	if d.allowAll, err = iampolicy.ParseAs(fmt.Appendf(nil, doc, "Allow"), iampolicy.SourceResource); err != nil {
		return d, fmt.Errorf("preflight: building the unread-policy stand-in: %w", err)
	}
	if d.denyAll, err = iampolicy.ParseAs(fmt.Appendf(nil, doc, "Deny"), iampolicy.SourceResource); err != nil {
		return d, fmt.Errorf("preflight: building the unread-policy stand-in: %w", err)
	}
	return d, nil
}

// agreed judges every combination of the repository and registry policies
// that may stand in the evaluation. settled reports whether all
// combinations agree (no finding, or findings of one severity); then the
// first combination, the most permissive, gives the finding. An answer that
// an unread policy could change is not settled.
func agreed(repos, registries []*iampolicy.NamedPolicy, judge func(repo, registry *iampolicy.NamedPolicy) (Finding, bool)) (f Finding, ok, settled bool) {
	for i, repo := range repos {
		for j, registry := range registries {
			g, gok := judge(repo, registry)
			if i == 0 && j == 0 {
				f, ok = g, gok
				continue
			}
			if gok != ok || g.Severity != f.Severity {
				return Finding{}, false, false
			}
		}
	}
	return f, ok, true
}

// decider turns policy decisions into findings. It holds no I/O: the engine
// fetches, the decider judges.
type decider struct {
	// context holds configured values for condition keys that are unknown at
	// admission time (--context KEY=VALUE).
	context map[string][]string
	now     func() time.Time
	// allowAll and denyAll stand for a resource policy that could not be
	// read: every real policy lies between them.
	allowAll, denyAll *iampolicy.Policy
}

// evaluatePull answers whether role may pull from t, as findings. No
// findings means the pull is allowed. The answer depends only on the
// repository, the role and the policies: the engine asks once per
// repository and shares it with every image there.
func (d decider) evaluatePull(t target, role rolePolicies, res resourcePolicies) []Finding {
	if role.Role.Partition != t.Partition {
		// Partitions share no identities: no policy can grant this.
		return []Finding{partitionMismatch(role.Role, t)}
	}
	base := d.baseRequest(role)
	var findings []Finding

	tokenReq := base
	tokenReq.Action, tokenReq.Resource = ActionGetAuthorizationToken, "*"
	token := iampolicy.Evaluate(tokenReq, iampolicy.PolicySet{Identity: role.Identity, Boundary: role.Boundary})
	if f, ok := d.tokenFinding(role, token); ok {
		findings = append(findings, f)
	}

	repos, registries := d.repositoryCandidates(res), d.registryCandidatesForPulls(res)
	// judge decides actions[0]; its finding speaks for all the actions,
	// which share its cause.
	judge := func(actions []string) (Finding, bool) {
		req := base
		req.Action, req.Resource = actions[0], t.ARN
		// Unsettled answers need no finding of their own: the failed read
		// behind them is a LookupFailed warning already.
		f, ok, _ := agreed(repos, registries, func(repoPolicy, registryPolicy *iampolicy.NamedPolicy) (Finding, bool) {
			repo := iampolicy.Evaluate(req, iampolicy.PolicySet{Identity: role.Identity, Boundary: role.Boundary, Resource: repoPolicy})
			var registry *iampolicy.Decision
			if registryPolicy != nil {
				reg := iampolicy.Evaluate(req, iampolicy.PolicySet{Identity: role.Identity, Boundary: role.Boundary, Resource: registryPolicy})
				registry = &reg
			}
			return d.repositoryFinding(t, role, resolvedPolicies{repoPolicy, registryPolicy}, actions, repo, registry)
		})
		return f, ok
	}
	var causes [][]string // the actions behind each repository finding
	first := len(findings)
	for _, action := range repositoryActions {
		f, ok := judge([]string{action})
		if !ok {
			continue
		}
		if i := slices.IndexFunc(findings[first:], func(g Finding) bool { return sameCause(f, g) }); i >= 0 {
			causes[i] = append(causes[i], action)
			continue
		}
		findings = append(findings, f)
		causes = append(causes, []string{action})
	}
	for i, actions := range causes {
		if len(actions) > 1 {
			findings[first+i], _ = judge(actions)
		}
	}
	return findings
}

// baseRequest is the request role's calls share; the caller sets the action
// and resource. The engine reads the role's tags with its policies, so they
// are known.
func (d decider) baseRequest(role rolePolicies) iampolicy.Request {
	return iampolicy.Request{Principal: role.ARN, Context: d.requestContext(role), Now: d.now(), PrincipalTagsKnown: true}
}

// requestContext merges configured values with the role's tags, which the
// engine always reads with the role: a tag the role lacks is absent, not
// unknown. Configured values win: an operator who states a value knows
// better than a tag. Keys are lower-cased so the two cannot collide.
func (d decider) requestContext(role rolePolicies) map[string][]string {
	if len(d.context) == 0 && len(role.Tags) == 0 {
		return nil
	}
	ctx := make(map[string][]string, len(d.context)+len(role.Tags))
	for k, v := range role.Tags {
		ctx[strings.ToLower("aws:PrincipalTag/"+k)] = []string{v}
	}
	for k, v := range d.context {
		ctx[strings.ToLower(k)] = v
	}
	return ctx
}

// tokenFinding decides whether the role can get a registry token.
func (d decider) tokenFinding(rp rolePolicies, dec iampolicy.Decision) (Finding, bool) {
	switch dec.Decision {
	case iampolicy.Allow:
		return Finding{}, false
	case iampolicy.ExplicitDeny:
		r := firstReason(dec, "Deny")
		return tokenNotAllowed(rp, &r, false, ""), true
	case iampolicy.Undetermined:
		return undetermined(rp.ARN, ActionGetAuthorizationToken, "the registry", dec), true
	}
	if rp.Boundary != nil && !slices.Contains(dec.Missing, iampolicy.SourceIdentity) {
		return tokenNotAllowed(rp, nil, true, ""), true
	}
	// The token is not a resource: an Allow scoped to a repository ARN
	// does not grant it.
	scopedIn := ""
	if i := slices.IndexFunc(rp.Identity, func(p iampolicy.NamedPolicy) bool { return p.Policy.CoversAction(ActionGetAuthorizationToken) }); i >= 0 {
		scopedIn = rp.Identity[i].Name
	}
	return tokenNotAllowed(rp, nil, false, scopedIn), true
}

// resolvedPolicies are the resource policies of one evaluation: read ones,
// or stand-ins for unread ones. nil means none applies.
type resolvedPolicies struct {
	Repository, Registry *iampolicy.NamedPolicy
}

// repositoryFinding decides, from the decisions of the repository and
// registry sides, which finding (if any) stands against actions[0].
func (d decider) repositoryFinding(t target, rp rolePolicies, res resolvedPolicies, actions []string, repo iampolicy.Decision, registry *iampolicy.Decision) (Finding, bool) {
	if registry != nil && registry.Decision == iampolicy.ExplicitDeny {
		if r := firstReason(*registry, "Deny"); r.Policy == iampolicy.SourceResource {
			return resourcePolicyDenies(t, rp, actions, r, res.Registry, true), true
		}
	}
	if repo.Decision == iampolicy.ExplicitDeny {
		r := firstReason(repo, "Deny")
		if r.Policy == iampolicy.SourceResource {
			return resourcePolicyDenies(t, rp, actions, r, res.Repository, false), true
		}
		return identityPolicyDenies(t, rp, actions, r), true
	}
	if repo.Decision == iampolicy.Allow || (registry != nil && registry.Decision == iampolicy.Allow) {
		return Finding{}, false
	}
	if repo.Decision == iampolicy.Undetermined {
		return undetermined(rp.ARN, actions[0], "repository "+t.Name, repo), true
	}
	if registry != nil && registry.Decision == iampolicy.Undetermined {
		return undetermined(rp.ARN, actions[0], "repository "+t.Name, *registry), true
	}
	if rp.Role.Account != t.Account {
		var cf *iampolicy.ConditionFailure
		if c, ok := conditionFailure(repo, iampolicy.SourceResource); ok {
			cf = &c
		}
		identityMissing := slices.Contains(repo.Missing, iampolicy.SourceIdentity) || slices.Contains(repo.Missing, iampolicy.SourceBoundary)
		return crossAccountNotAllowed(t, rp, actions, slices.Contains(repo.Missing, iampolicy.SourceResource), identityMissing, cf), true
	}
	if rp.Boundary != nil && slices.Contains(repo.Missing, iampolicy.SourceBoundary) && !slices.Contains(repo.Missing, iampolicy.SourceIdentity) {
		return boundaryBlocksPull(t, rp, actions), true
	}
	if cf, ok := conditionFailure(repo, ""); ok {
		return grantConditionFails(t, rp, actions, cf), true
	}
	return pullNotAllowed(t, rp, actions), true
}

// conditionFailure returns the first Allow statement (of policy type src,
// or any when src is "") that was meant to grant the request but whose
// condition does not hold.
func conditionFailure(dec iampolicy.Decision, src iampolicy.Source) (iampolicy.ConditionFailure, bool) {
	for _, cf := range dec.ConditionFailures {
		if src == "" || cf.Policy == src {
			return cf, true
		}
	}
	return iampolicy.ConditionFailure{}, false
}

// identityShape finds the shape of an identity or boundary statement.
func identityShape(rp rolePolicies, r iampolicy.Reason) (iampolicy.StatementShape, bool) {
	if r.Policy == iampolicy.SourceBoundary && rp.Boundary != nil {
		return rp.Boundary.Policy.Shape(r.Statement)
	}
	for _, p := range rp.Identity {
		if p.Name == r.Name {
			return p.Policy.Shape(r.Statement)
		}
	}
	return iampolicy.StatementShape{}, false
}

// sameCause reports whether two findings about the same role would tell the
// user the same thing, so one finding can name both actions.
func sameCause(a, b Finding) bool {
	return a.Code == b.Code && a.Role == b.Role && a.Statement == b.Statement && a.Action != ActionGetAuthorizationToken && b.Action != ActionGetAuthorizationToken
}

// firstReason returns the first reason with the given effect, or the first
// reason at all, or a placeholder when the decision names none.
func firstReason(dec iampolicy.Decision, effect string) iampolicy.Reason {
	for _, r := range dec.Reasons {
		if r.Effect == effect {
			return r
		}
	}
	if len(dec.Reasons) > 0 {
		return dec.Reasons[0]
	}
	return iampolicy.Reason{Statement: "?", Name: "?"}
}
