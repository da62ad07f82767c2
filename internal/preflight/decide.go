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

// resourcePolicies are the policies attached on the registry side.
type resourcePolicies struct {
	// Repository is nil when the repository has no policy.
	Repository *iampolicy.NamedPolicy
	// Registry is set only when the registry policy's scope covers pulls
	// (REGISTRY_POLICY_SCOPE V2); under V1 it governs replication and
	// pull-through cache creation only.
	Registry *iampolicy.NamedPolicy
}

// decider turns policy decisions into findings. It holds no I/O: the engine
// fetches, the decider judges.
type decider struct {
	// context holds configured values for condition keys that are unknown at
	// admission time (--context KEY=VALUE).
	context map[string][]string
	now     func() time.Time
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
	// The engine reads the role's tags with its policies, so they are known.
	base := iampolicy.Request{Principal: role.ARN, Context: d.requestContext(role), Now: d.now(), PrincipalTagsKnown: true}
	var findings []Finding

	tokenReq := base
	tokenReq.Action, tokenReq.Resource = ActionGetAuthorizationToken, "*"
	token := iampolicy.Evaluate(tokenReq, iampolicy.PolicySet{Identity: role.Identity, Boundary: role.Boundary})
	if f, ok := d.tokenFinding(image, role, token); ok {
		findings = append(findings, f)
	}

	for _, action := range repositoryActions {
		req := base
		req.Action, req.Resource = action, t.RepositoryARN
		repo := iampolicy.Evaluate(req, iampolicy.PolicySet{Identity: role.Identity, Boundary: role.Boundary, Resource: res.Repository})
		var registry *iampolicy.Decision
		if res.Registry != nil {
			reg := iampolicy.Evaluate(req, iampolicy.PolicySet{Identity: role.Identity, Boundary: role.Boundary, Resource: res.Registry})
			registry = &reg
		}
		f, ok := d.repositoryFinding(image, t, role, res, action, repo, registry)
		if !ok {
			continue
		}
		if i := slices.IndexFunc(findings, func(g Finding) bool { return sameCause(f, g) }); i >= 0 {
			findings[i].Message = mentionAlso(findings[i].Message, action)
			continue
		}
		findings = append(findings, f)
	}
	return findings
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
		base.Fix = fmt.Sprintf("attach the AWS managed policy AmazonEC2ContainerRegistryPullOnly to role %s", role)
	}
	return base, true
}

func (d decider) repositoryFinding(image string, t target, rp rolePolicies, res resourcePolicies, action string, repo iampolicy.Decision, registry *iampolicy.Decision) (Finding, bool) {
	roleARN, role := rp.ARN, roleName(rp.ARN)
	f := Finding{Role: roleARN, Action: action, Severity: SeverityError}

	if registry != nil && registry.Decision == iampolicy.ExplicitDeny {
		r := firstReason(*registry, "Deny")
		if r.Policy == iampolicy.SourceResource {
			f.Code, f.Statement = CodeRegistryPolicyDenies, r.Statement
			f.Message = fmt.Sprintf("%s: statement %q of the registry policy of account %s denies %s to role %s",
				image, r.Statement, t.Account, action, role)
			change := fmt.Sprintf("remove role %s from statement %q or narrow its actions", role, r.Statement)
			f.Message, change = explainDeny(res.Registry, r.Statement, role, action, f.Message, change)
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
			f.Message, change = explainDeny(res.Repository, r.Statement, role, action, f.Message, change)
			f.Fix = fmt.Sprintf("edit the repository policy of %s: %s (aws ecr set-repository-policy --repository-name %s --region %s)",
				t.Repository, change, t.Repository, t.Region)
			return f, true
		}
		f.Code = CodeIdentityPolicyDenies
		f.Message = fmt.Sprintf("%s: statement %q of %s denies %s on repository %s",
			image, r.Statement, describePolicy(r, role), action, t.Repository)
		f.Fix = identityDenyFix(rp, r, action, action+" (or the repository)", ", or exclude the repository from it")
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
		if slices.Contains(repo.Missing, iampolicy.SourceResource) {
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
	if slices.Contains(repo.Missing, iampolicy.SourceBoundary) && !slices.Contains(repo.Missing, iampolicy.SourceIdentity) {
		f.Message = fmt.Sprintf("%s: the permissions boundary of role %s does not allow %s on repository %s", image, role, action, t.Repository)
		f.Fix = fmt.Sprintf("add %s on %s to the permissions boundary of role %s", action, t.RepositoryARN, role)
		return f, true
	}
	f.Fix = fmt.Sprintf("attach the AWS managed policy AmazonEC2ContainerRegistryPullOnly to role %s, or allow it in the repository policy of %s", role, t.Repository)
	return f, true
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
	if len(dec.Reasons) > 0 {
		r := dec.Reasons[0]
		f.Statement = r.Statement
		f.Message += fmt.Sprintf(" (statement %q of %s)", r.Statement, describePolicy(r, role))
	}
	return f
}

// explainDeny rewords a resource policy Deny's message and fix for statements
// that do not name the role: a NotAction list, or "*" with a condition.
func explainDeny(p *iampolicy.NamedPolicy, statement, role, action, msg, change string) (string, string) {
	if p == nil {
		return msg, change
	}
	shape, ok := p.Policy.Shape(statement)
	switch {
	case !ok:
	case shape.NotAction:
		change = notActionFix(action, fmt.Sprintf("statement %q", statement))
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
