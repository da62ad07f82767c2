package preflight

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
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

// target is the repository a pull reads from.
type target struct {
	Repository    string // repository name, e.g. team/app
	RepositoryARN string
	Account       string // the registry's account
	Region        string
}

// rolePolicies is what IAM says about one candidate node role.
type rolePolicies struct {
	ARN      string
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
	scopeV1      = "V1"
	scopeV2      = "V2"
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
// findings means the pull is allowed.
func (d decider) evaluatePull(image string, t target, role rolePolicies, res resourcePolicies) []Finding {
	if rp, ip := arnField(role.ARN, arnPartition), arnField(t.RepositoryARN, arnPartition); rp != ip {
		// Partitions share no identities: no policy can grant this.
		return []Finding{{
			Code: CodePullNotAllowed, Severity: SeverityError, Role: role.ARN, Action: ActionBatchGetImage,
			Message: fmt.Sprintf("%s: role %s is in partition %s and the registry in partition %s; no role can pull across partitions",
				image, roleName(role.ARN), rp, ip),
			Fix: fmt.Sprintf("use a node role in partition %s, or copy the image to a registry in partition %s", ip, rp),
		}}
	}
	base := d.baseRequest(role)
	var findings []Finding

	tokenReq := base
	tokenReq.Action, tokenReq.Resource = ActionGetAuthorizationToken, "*"
	token := iampolicy.Evaluate(tokenReq, iampolicy.PolicySet{Identity: role.Identity, Boundary: role.Boundary})
	if f, ok := d.tokenFinding(image, role, token); ok {
		findings = append(findings, f)
	}

	repos, registries := d.repositoryCandidates(res), d.registryCandidatesForPulls(res)
	// judge decides actions[0]; the wording of its fix covers all actions,
	// which share its cause.
	judge := func(actions []string) (Finding, bool) {
		req := base
		req.Action, req.Resource = actions[0], t.RepositoryARN
		// Unsettled answers need no finding of their own: the failed read
		// behind them is a LookupFailed warning already.
		f, ok, _ := agreed(repos, registries, func(repoPolicy, registryPolicy *iampolicy.NamedPolicy) (Finding, bool) {
			repo := iampolicy.Evaluate(req, iampolicy.PolicySet{Identity: role.Identity, Boundary: role.Boundary, Resource: repoPolicy})
			var registry *iampolicy.Decision
			if registryPolicy != nil {
				reg := iampolicy.Evaluate(req, iampolicy.PolicySet{Identity: role.Identity, Boundary: role.Boundary, Resource: registryPolicy})
				registry = &reg
			}
			return d.repositoryFinding(image, t, role, resolvedPolicies{repoPolicy, registryPolicy}, actions, repo, registry)
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
			f, _ := judge(actions)
			for _, a := range actions[1:] {
				f.Message = mentionAlso(f.Message, a)
			}
			findings[first+i] = f
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

func (d decider) tokenFinding(image string, rp rolePolicies, dec iampolicy.Decision) (Finding, bool) {
	roleARN, role := rp.ARN, roleName(rp.ARN)
	base := Finding{Role: roleARN, Action: ActionGetAuthorizationToken, Severity: SeverityError, Code: CodeAuthTokenNotAllowed}
	switch dec.Decision {
	case iampolicy.Allow:
		return Finding{}, false
	case iampolicy.ExplicitDeny:
		r := firstReason(dec, "Deny")
		base.Statement = r.Statement
		base.Message = fmt.Sprintf("%s: statement %q of %s denies %s to role %s, so no registry token can be had",
			image, r.Statement, describePolicy(r, role), ActionGetAuthorizationToken, role)
		base.Fix = identityDenyFix(rp, r, ActionGetAuthorizationToken, ActionGetAuthorizationToken, "")
	case iampolicy.Undetermined:
		return d.undetermined(image, roleARN, ActionGetAuthorizationToken, "the registry", dec), true
	case iampolicy.ImplicitDeny:
		if rp.Boundary != nil && !slices.Contains(dec.Missing, iampolicy.SourceIdentity) {
			base.Message = fmt.Sprintf("%s: the permissions boundary %s of role %s does not allow %s, so no registry token can be had",
				image, rp.Boundary.Name, role, ActionGetAuthorizationToken)
			base.Fix = fmt.Sprintf("allow %s on Resource \"*\" in the permissions boundary %s", ActionGetAuthorizationToken, rp.Boundary.Name)
			break
		}
		// The token is not a resource: an Allow scoped to a repository
		// ARN does not grant it.
		base.Message = fmt.Sprintf("%s: no identity policy of role %s allows %s on Resource \"*\", so no registry token can be had",
			image, role, ActionGetAuthorizationToken)
		if i := slices.IndexFunc(rp.Identity, func(p iampolicy.NamedPolicy) bool { return p.Policy.CoversAction(ActionGetAuthorizationToken) }); i >= 0 {
			// A deliberately scoped role: ask for the one statement it
			// lacks, not for a broad managed policy.
			base.Message += " (a grant scoped to a repository ARN does not give the token, which is not a repository resource)"
			base.Fix = fmt.Sprintf(`give the token its own statement in policy %s of role %s: {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}`,
				rp.Identity[i].Name, role)
			break
		}
		base.Fix = fmt.Sprintf(`attach the AWS managed policy AmazonEC2ContainerRegistryPullOnly to role %s, or allow it {"Action": "ecr:GetAuthorizationToken", "Resource": "*"} in its own statement`, role)
	}
	return base, true
}

// resolvedPolicies are the resource policies of one evaluation: read ones,
// or stand-ins for unread ones. nil means none applies.
type resolvedPolicies struct {
	Repository, Registry *iampolicy.NamedPolicy
}

func (d decider) repositoryFinding(image string, t target, rp rolePolicies, res resolvedPolicies, actions []string, repo iampolicy.Decision, registry *iampolicy.Decision) (Finding, bool) {
	roleARN, role := rp.ARN, roleName(rp.ARN)
	action, all := actions[0], strings.Join(actions, " and ")
	f := Finding{Role: roleARN, Action: action, Severity: SeverityError}

	if registry != nil && registry.Decision == iampolicy.ExplicitDeny {
		r := firstReason(*registry, "Deny")
		if r.Policy == iampolicy.SourceResource {
			f.Code, f.Statement = CodeRegistryPolicyDenies, r.Statement
			f.Message = fmt.Sprintf("%s: statement %q of the registry policy of account %s denies %s to role %s",
				image, r.Statement, t.Account, action, role)
			change := fmt.Sprintf("remove role %s from statement %q or narrow its actions", role, r.Statement)
			f.Message, change = explainDeny(res.Registry, r.Statement, rp.ARN, all, f.Message, change)
			f.Fix = fmt.Sprintf("edit the registry policy of account %s in %s (aws ecr put-registry-policy): %s", t.Account, t.Region, change)
			return f, true
		}
	}
	if repo.Decision == iampolicy.ExplicitDeny {
		r := firstReason(repo, "Deny")
		f.Statement = r.Statement
		if r.Policy == iampolicy.SourceResource {
			f.Code = CodeRepositoryPolicyDenies
			f.Message = fmt.Sprintf("%s: statement %q of the repository policy of %s denies %s to role %s",
				image, r.Statement, t.Repository, action, role)
			change := fmt.Sprintf("remove role %s from statement %q, narrow its actions, or change its Effect to Allow", role, r.Statement)
			f.Message, change = explainDeny(res.Repository, r.Statement, rp.ARN, all, f.Message, change)
			f.Fix = fmt.Sprintf("edit the repository policy of %s: %s (aws ecr set-repository-policy --repository-name %s --region %s)",
				t.Repository, change, t.Repository, t.Region)
			return f, true
		}
		f.Code = CodeIdentityPolicyDenies
		f.Message = fmt.Sprintf("%s: statement %q of %s denies %s on repository %s",
			image, r.Statement, describePolicy(r, role), action, t.Repository)
		f.Fix = identityDenyFix(rp, r, all, all+" (or the repository)", ", or exclude the repository from it")
		return f, true
	}
	if repo.Decision == iampolicy.Allow || (registry != nil && registry.Decision == iampolicy.Allow) {
		return Finding{}, false
	}
	if repo.Decision == iampolicy.Undetermined {
		return d.undetermined(image, roleARN, action, "repository "+t.Repository, repo), true
	}
	if registry != nil && registry.Decision == iampolicy.Undetermined {
		return d.undetermined(image, roleARN, action, "repository "+t.Repository, *registry), true
	}

	roleAccount := arnField(roleARN, arnAccount)
	if roleAccount != "" && roleAccount != t.Account {
		f.Code = CodeCrossAccountNotAllowed
		var missing, fixes []string
		if cf, ok := conditionFailure(repo, iampolicy.SourceResource); ok && slices.Contains(repo.Missing, iampolicy.SourceResource) {
			f.Statement = cf.Statement
			missing = append(missing, fmt.Sprintf("statement %q of %s would grant it, but its condition on %s does not hold for this pull", cf.Statement, cf.Name, cf.Key))
			fixes = append(fixes, conditionFix(cf, role))
		} else if slices.Contains(repo.Missing, iampolicy.SourceResource) {
			missing = append(missing, fmt.Sprintf("the repository policy of %s does not grant role %s or account %s", t.Repository, role, roleAccount))
			fixes = append(fixes, fmt.Sprintf("allow %s to %s in the repository policy of %s (account %s)",
				roleARN, strings.Join(repositoryActions, ", "), t.Repository, t.Account))
		}
		if slices.Contains(repo.Missing, iampolicy.SourceIdentity) || slices.Contains(repo.Missing, iampolicy.SourceBoundary) {
			missing = append(missing, fmt.Sprintf("no identity policy of role %s allows it", role))
			fixes = append(fixes, fmt.Sprintf("attach AmazonEC2ContainerRegistryPullOnly to role %s (within its permissions boundary, if any)", role))
		}
		if len(missing) == 0 {
			missing = append(missing, "both accounts must allow it")
			fixes = append(fixes, "allow the pull in both the repository policy and the role's identity policies")
		}
		f.Message = fmt.Sprintf("%s: role %s (account %s) may not %s from account %s: %s",
			image, role, roleAccount, action, t.Account, strings.Join(missing, "; "))
		f.Fix = "cross-account pulls need both sides: " + strings.Join(fixes, ", and ")
		return f, true
	}
	f.Code = CodePullNotAllowed
	f.Message = fmt.Sprintf("%s: no policy allows role %s to %s on repository %s", image, role, action, t.Repository)
	if rp.Boundary != nil && slices.Contains(repo.Missing, iampolicy.SourceBoundary) && !slices.Contains(repo.Missing, iampolicy.SourceIdentity) {
		f.Message = fmt.Sprintf("%s: the permissions boundary %s of role %s does not allow %s on repository %s",
			image, rp.Boundary.Name, role, all, t.Repository)
		f.Fix = fmt.Sprintf("allow %s on %s in the permissions boundary %s of role %s", all, t.RepositoryARN, rp.Boundary.Name, role)
		return f, true
	}
	if cf, ok := conditionFailure(repo, ""); ok {
		f.Statement = cf.Statement
		f.Message = fmt.Sprintf("%s: statement %q of %s would allow role %s to %s on repository %s, but its condition on %s does not hold for this pull",
			image, cf.Statement, describePolicy(cf.Reason, role), role, action, t.Repository, cf.Key)
		f.Fix = conditionFix(cf, role)
		return f, true
	}
	f.Fix = fmt.Sprintf("attach the AWS managed policy AmazonEC2ContainerRegistryPullOnly to role %s, or allow it in the repository policy of %s", role, t.Repository)
	return f, true
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

// conditionFix asks to correct a grant's failing condition, or to state the
// value the pull really comes with when one value can be stated.
func conditionFix(cf iampolicy.ConditionFailure, role string) string {
	fix := fmt.Sprintf("correct the condition on %s in statement %q of %s", cf.Key, cf.Statement, describePolicy(cf.Reason, role))
	if !perSessionKey(cf.Key) {
		fix += fmt.Sprintf("; if the pull really comes with another value, configure it (--context %s=VALUE)", cf.Key)
	}
	return fix
}

func (d decider) undetermined(image, roleARN, action, what string, dec iampolicy.Decision) Finding {
	role := roleName(roleARN)
	keys := strings.Join(dec.UnknownKeys, ", ")
	f := Finding{
		Code: CodeUndetermined, Severity: SeverityWarning, Role: roleARN, Action: action,
		UnknownKeys: dec.UnknownKeys,
		Message: fmt.Sprintf("%s: whether role %s may %s on %s depends on %s, unknown at admission time",
			image, role, action, what, keys),
		Fix: fmt.Sprintf("if you know the value, configure it (--context %s=VALUE)", firstOr(dec.UnknownKeys, "KEY")),
	}
	statement := "the statement"
	if len(dec.Reasons) > 0 {
		r := dec.Reasons[0]
		f.Statement = r.Statement
		statement = fmt.Sprintf("statement %q of %s", r.Statement, describePolicy(r, role))
		f.Message += " (" + statement + ")"
	}
	if perSession := slices.DeleteFunc(slices.Clone(dec.UnknownKeys), func(k string) bool { return !perSessionKey(k) }); len(perSession) > 0 {
		// No one can configure one value for a node fleet's sessions.
		f.Fix = fmt.Sprintf("%s depends on %s, which differs for every node's session of role %s, so no single value can be configured; "+
			"to single out the role, test aws:PrincipalArn instead (e.g. ArnEquals %q)", statement, strings.Join(perSession, ", "), role, roleARN)
	}
	return f
}

// perSessionKey reports whether a condition key takes a value of its own in
// each role session (the session ID, its issue time, its instance), so a
// node fleet has no one value for it.
func perSessionKey(key string) bool {
	switch strings.ToLower(key) {
	case "aws:userid", "aws:tokenissuetime", "aws:multifactorauthage", "aws:sourceidentity",
		"ec2:sourceinstancearn", "aws:ec2instancesourceprivateipv4", "aws:ec2instancesourcevpc", "ec2:roledelivery":
		return true
	}
	return false
}

// explainDeny rewords a resource policy Deny's message and fix for statements
// that do not name the role: a NotAction list, "*" with a condition, or a
// NotPrincipal list. actions are the denied actions, as words.
func explainDeny(p *iampolicy.NamedPolicy, statement, roleARN, actions, msg, change string) (string, string) {
	if p == nil {
		return msg, change
	}
	role := roleName(roleARN)
	shape, ok := p.Policy.Shape(statement)
	switch {
	case !ok:
	case shape.NotAction:
		change = notActionFix(actions, fmt.Sprintf("statement %q", statement))
	case len(shape.NotPrincipal) > 0:
		// The kubelet calls as a session of the role, which a NotPrincipal
		// listing only the role does not exempt (AWS's NotPrincipal page).
		msg += fmt.Sprintf(" (its NotPrincipal exempts %s, but the kubelet calls as an assumed-role session of role %s, arn:%s:sts::%s:assumed-role/%s/SESSION, which it does not list)",
			strings.Join(shape.NotPrincipal, ", "), role, arnField(roleARN, arnPartition), arnField(roleARN, arnAccount), role)
		change = fmt.Sprintf(`replace NotPrincipal in statement %q with "Principal": "*" and a condition that exempts the role, as AWS recommends: "Condition": {"ArnNotEquals": {"aws:PrincipalArn": %q}}`,
			statement, roleARN)
	case shape.AnyPrincipal && len(shape.ConditionKeys) > 0:
		keys := strings.Join(shape.ConditionKeys, ", ")
		msg += fmt.Sprintf(" (it applies to every principal, and its condition on %s holds for this pull)", keys)
		change = fmt.Sprintf("exempt role %s from statement %q (e.g. ArnNotEquals on aws:PrincipalArn) or correct its condition on %s; "+
			"if the pull really comes with other values, configure them (--context)", role, statement, keys)
	case shape.AnyPrincipal:
		msg += " (it applies to every principal)"
		change = fmt.Sprintf("narrow the actions of statement %q or exempt role %s from it with a condition on aws:PrincipalArn", statement, role)
	}
	return msg, change
}

// identityDenyFix is the fix for an explicit Deny in the role's own policies:
// remove what it denies, or, for a NotAction statement, list the action
// among its exceptions (then add orElse).
func identityDenyFix(rp rolePolicies, r iampolicy.Reason, action, remove, orElse string) string {
	where := fmt.Sprintf("the Deny statement %q of %s", r.Statement, describePolicy(r, roleName(rp.ARN)))
	if shape, ok := identityShape(rp, r); ok && shape.NotAction {
		return notActionFix(action, where) + orElse
	}
	return fmt.Sprintf("remove %s from %s", remove, where)
}

func notActionFix(action, statement string) string {
	return fmt.Sprintf("add %s to the NotAction list of %s (the actions it does not deny)", action, statement)
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

func mentionAlso(msg, action string) string {
	if strings.Contains(msg, action) {
		return msg
	}
	return msg + " (and " + action + ")"
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

// describePolicy names the policy a reason came from, for messages.
func describePolicy(r iampolicy.Reason, role string) string {
	switch r.Policy {
	case iampolicy.SourceIdentity:
		return fmt.Sprintf("policy %s of role %s", r.Name, role)
	case iampolicy.SourceBoundary:
		return fmt.Sprintf("the permissions boundary %s of role %s", r.Name, role)
	case iampolicy.SourceResource:
		return r.Name
	case iampolicy.SourceSCP:
		return "service control policy " + r.Name
	case iampolicy.SourceRCP:
		return "resource control policy " + r.Name
	}
	return r.Name
}

// roleName is the last path element of a role ARN (or a session's role).
func roleName(arn string) string {
	rest := arn
	if i := strings.LastIndex(arn, ":"); i >= 0 {
		rest = arn[i+1:]
	}
	rest = strings.TrimPrefix(rest, "role/")
	if after, ok := strings.CutPrefix(rest, "assumed-role/"); ok {
		name, _, _ := strings.Cut(after, "/")
		return name
	}
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		return rest[i+1:]
	}
	return rest
}

// Fields of arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE.
const (
	arnPartition = 1
	arnAccount   = 4
)

// arnField returns field i of an ARN, or "" when it has too few.
func arnField(arn string, i int) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[i]
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}
