package preflight

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
	"github.com/ecr-preflight/ecr-preflight/internal/imageref"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

// This file holds every finding the engine makes and all of its wording:
// the other files decide which finding applies, these constructors fill in
// its data and put it into words. Messages never name the image (the
// Result does) and always name the role, statement and action(s) they
// carry.

// reportFix is the fix for a policy document AWS accepted and we cannot read.
const reportFix = "report this policy document: AWS accepted it, so ecr-preflight should too"

// ---- images and repositories ----

func invalidReference(ref string, cause error) Finding {
	return Finding{
		Code: CodeInvalidImageReference, Severity: SeverityError,
		Message: fmt.Sprintf("%s is not a valid image reference: %v", imageref.QuoteShort(ref), cause),
		Fix:     "write it as REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]: a lower-case repository, a tag of at most 128 characters, a digest of 64 hex digits",
	}
}

func skipped(reason string) Finding {
	return Finding{Code: CodeSkipped, Severity: SeverityInfo, Message: reason}
}

// describeImagesCommand is the AWS CLI command that shows the image.
func describeImagesCommand(t target, id string, extra ...string) []string {
	return append([]string{"aws", "ecr", "describe-images", "--registry-id", t.Account, "--repository-name", t.Name,
		"--region", t.Region, "--image-ids", id}, extra...)
}

// imageID is how the AWS CLI names img: imageTag=T or imageDigest=D.
func imageID(img imageref.Image) (what, id string) {
	if img.Digest != "" {
		return "digest " + img.Digest, "imageDigest=" + img.Digest
	}
	return "tag " + img.Tag, "imageTag=" + img.Tag
}

func imageNotFound(img imageref.Image, t target) Finding {
	what, id := imageID(img)
	cmd := describeImagesCommand(t, id)
	return Finding{
		Code: CodeImageNotFound, Severity: SeverityError, Repository: t.ref(),
		Message: fmt.Sprintf("%s does not exist in repository %s", what, t.Name),
		Fix:     fmt.Sprintf("push the image, or fix the reference (%s)", strings.Join(cmd[0:], " ")),
		Command: cmd,
	}
}

// imageMaybeImported: missing, but a pull-through cache rule we could not
// read might import it on the first pull.
func imageMaybeImported(img imageref.Image, t target, cause string) Finding {
	f := imageNotFound(img, t)
	f.Severity = SeverityWarning
	f.Message += fmt.Sprintf("; if it is under a pull-through cache rule it is imported on the first pull (the rules could not be read: %s)", cause)
	return f
}

func imageImportedOnPull(img imageref.Image, t target, upstream string, rolesChecked bool) Finding {
	what, _ := imageID(img)
	f := Finding{
		Code: CodeImageImportedOnPull, Severity: SeverityWarning, Repository: t.ref(),
		Message: fmt.Sprintf("%s is not in pull-through cache repository %s yet; ECR imports it from %s on the first pull (whether %s has it was not checked)",
			what, t.Name, upstream, upstream),
		Fix: fmt.Sprintf("make sure %s has the image", upstream),
	}
	if !rolesChecked {
		f.Fix += fmt.Sprintf(", and that the node role may %s (no node role was given, so that was not checked)", ActionBatchImportUpstreamImage)
	}
	return f
}

// imageArchived: the image is in ECR's archive tier (ARCHIVED), or on its
// way back (ACTIVATING); either way it cannot be pulled yet.
func imageArchived(t target, digest string, restoring bool) Finding {
	if restoring {
		cmd := describeImagesCommand(t, "imageDigest="+digest, "--filter", "imageStatus=ANY")
		return Finding{
			Code: CodeImageArchived, Severity: SeverityWarning, Repository: t.ref(),
			Message: fmt.Sprintf("image %s in repository %s is being restored from the archive; it cannot be pulled until the restore completes", digest, t.Name),
			Fix:     fmt.Sprintf("wait until it is ACTIVE (%s)", strings.Join(cmd, " ")),
			Command: cmd,
		}
	}
	cmd := []string{"aws", "ecr", "update-image-storage-class", "--registry-id", t.Account, "--repository-name", t.Name,
		"--region", t.Region, "--image-id", "imageDigest=" + digest, "--target-storage-class", "STANDARD"}
	return Finding{
		Code: CodeImageArchived, Severity: SeverityError, Repository: t.ref(),
		Message: fmt.Sprintf("image %s in repository %s is archived (by a lifecycle rule or by hand) and cannot be pulled until it is restored", digest, t.Name),
		Fix:     "restore it to the standard storage class, then wait until it is ACTIVE: " + strings.Join(cmd, " "),
		Command: cmd,
	}
}

func repositoryNotFound(t target) Finding {
	cmd := []string{"aws", "ecr", "create-repository", "--repository-name", t.Name, "--region", t.Region}
	return Finding{
		Code: CodeRepositoryNotFound, Severity: SeverityError, Repository: t.ref(),
		Message: fmt.Sprintf("repository %s does not exist in registry %s (%s)", t.Name, t.Account, t.Region),
		Fix:     fmt.Sprintf("check the repository name, or create it in account %s: %s", t.Account, strings.Join(cmd, " ")),
		Command: cmd,
	}
}

// repositoryMaybeCached: missing, but a pull-through cache rule we could not
// read might create it on the first pull.
func repositoryMaybeCached(t target, cause string) Finding {
	f := repositoryNotFound(t)
	prefix, _, _ := strings.Cut(t.Name, "/")
	f.Severity = SeverityWarning
	f.Message = fmt.Sprintf("repository %s does not exist; if it is under a pull-through cache prefix such as %q it is created on the first pull (the rules could not be read: %s)",
		t.Name, prefix, cause)
	return f
}

func repositoryCreatedOnPull(t target, prefix, upstream string, rolesChecked bool) Finding {
	f := Finding{
		Code: CodeRepositoryNotFound, Severity: SeverityWarning, Repository: t.ref(),
		Message: fmt.Sprintf("repository %s does not exist yet; the pull-through cache rule for prefix %q creates it and imports the image from %s on the first pull",
			t.Name, prefix, upstream),
		Fix: fmt.Sprintf("make sure %s has the image", upstream),
	}
	if !rolesChecked {
		f.Fix = fmt.Sprintf("make sure the node role may %s and %s under that prefix (no node role was given, so that was not checked)",
			ActionCreateRepository, ActionBatchImportUpstreamImage)
	}
	return f
}

// ---- roles and lookups ----

func roleNotFound(role string) Finding {
	return Finding{
		Code: CodeLookupFailed, Severity: SeverityWarning, Role: role,
		Message: fmt.Sprintf("node role %s does not exist (or our credentials cannot see it)", role),
		Fix:     "check the configured node role ARN (--node-role-arn)",
	}
}

func roleUnreadable(role string, broken []string) Finding {
	return Finding{
		Code: CodeLookupFailed, Severity: SeverityWarning, Role: role,
		Message: fmt.Sprintf("could not read policies of role %s: %s", RoleName(role), strings.Join(broken, "; ")),
		Fix:     reportFix,
	}
}

func brokenPolicy(what string, err error) Finding {
	return Finding{
		Code: CodeLookupFailed, Severity: SeverityWarning,
		Message: fmt.Sprintf("%s could not be parsed: %v", what, err),
		Fix:     reportFix,
	}
}

// lookupFailed turns an AWS failure into a warning: "could not check" is
// never "cannot pull". The words for each class of failure live here only.
// They are ours, with AWS's error code (awsclient.CauseOf), never the text
// of AWS's error, which can name internal hosts or endpoints: that goes to
// the log (Engine.logLookupFailure).
func lookupFailed(what string, err error) Finding {
	f := Finding{Code: CodeLookupFailed, Severity: SeverityWarning}
	le, isLookup := errors.AsType[*awsclient.LookupError](err)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		f.Message = what + ": could not verify in time"
		f.Fix = "retry; if it persists, check the network path to AWS (and --aws-call-timeout)"
	case !isLookup:
		f.Message = fmt.Sprintf("%s failed: %s", what, awsclient.CauseOf(err))
		f.Fix = "retry; check ecr-preflight's AWS credentials and network (its log has the details)"
	case le.Class == awsclient.ClassAccessDenied:
		f.Action = le.Action
		f.Message = fmt.Sprintf("%s: our credentials are not allowed %s (%s)", what, le.Action, le.Cause())
		f.Fix = fmt.Sprintf("grant %s to ecr-preflight's own IAM role", le.Action)
	case le.Class == awsclient.ClassNoCredentials:
		f.Message = what + ": ecr-preflight has no AWS credentials"
		f.Fix = "give ecr-preflight credentials: IRSA or EKS Pod Identity in a cluster; AWS_PROFILE or AWS_ACCESS_KEY_ID locally"
	case le.Class == awsclient.ClassThrottled:
		f.Message = fmt.Sprintf("%s: AWS throttled the lookup (%s)", what, le.Cause())
		f.Fix = "retry; raise the cache TTLs if this is frequent"
	default:
		f.Message = what + ": " + le.Brief()
		f.Fix = "retry; check ecr-preflight's AWS credentials and network (its log has the details)"
	}
	return f
}

// refusedElsewhere rewords an AccessDenied about registry t for when our
// credentials act in another account (caller), or may (caller unknown):
// the grant is on t's side, or an assumed role there; more permissions
// for our role at home cannot help.
func refusedElsewhere(f Finding, what string, t target, caller string, known bool) Finding {
	assume := fmt.Sprintf("pass --assume-role %s=ROLE_ARN with a role in account %s that may %s", t.Account, t.Account, f.Action)
	grant := fmt.Sprintf("have account %s grant %s to our role (in the policy of %s)", t.Account, f.Action, t.Name)
	switch {
	case !known:
		f.Fix = fmt.Sprintf("grant %s to ecr-preflight's own IAM role; if registry %s is in another account, %s, or %s", f.Action, t.Account, assume, grant)
	case caller != t.Account:
		f.Message = fmt.Sprintf("%s: our credentials (account %s) are not allowed %s in account %s", what, caller, f.Action, t.Account)
		f.Fix = fmt.Sprintf("%s, or %s", assume, grant)
	}
	return f
}

// ---- pulls ----

// withActions records the actions a finding covers; the ones after the
// first are named at the end of its message.
func withActions(f Finding, actions []string) Finding {
	if len(actions) > 1 {
		f.Actions = actions
		f.Message += " (and " + strings.Join(actions[1:], ", ") + ")"
	}
	return f
}

func partitionMismatch(role awsclient.RoleARN, t target) Finding {
	return Finding{
		Code: CodePullNotAllowed, Severity: SeverityError, Role: role.String(), Action: ActionBatchGetImage, Repository: t.ref(),
		Message: fmt.Sprintf("role %s is in partition %s and the registry in partition %s; no role can pull across partitions",
			role.Name, role.Partition, t.Partition),
		Fix: fmt.Sprintf("use a node role in partition %s, or copy the image to a registry in partition %s", t.Partition, role.Partition),
	}
}

// tokenNotAllowed: the role cannot get a registry token. deny is the
// deciding Deny statement, if one decides; scopedIn names the identity
// policy that grants the token on a repository ARN only, if one does.
func tokenNotAllowed(rp rolePolicies, deny *iampolicy.Reason, boundaryBlocks bool, scopedIn string) Finding {
	role := RoleName(rp.ARN)
	f := Finding{Code: CodeAuthTokenNotAllowed, Severity: SeverityError, Role: rp.ARN, Action: ActionGetAuthorizationToken}
	switch {
	case deny != nil:
		f.Statement, f.Policy = deny.Statement, policyRef(*deny)
		f.Message = fmt.Sprintf("statement %q of %s denies %s to role %s, so no registry token can be had",
			deny.Statement, describePolicy(*deny, role), ActionGetAuthorizationToken, role)
		f.Fix = identityDenyFix(rp, *deny, ActionGetAuthorizationToken, ActionGetAuthorizationToken, "")
	case boundaryBlocks:
		f.Policy = &PolicyRef{Kind: PolicyBoundary, Name: rp.Boundary.Name}
		f.Message = fmt.Sprintf("the permissions boundary %s of role %s does not allow %s, so no registry token can be had",
			rp.Boundary.Name, role, ActionGetAuthorizationToken)
		f.Fix = fmt.Sprintf("allow %s on Resource \"*\" in the permissions boundary %s", ActionGetAuthorizationToken, rp.Boundary.Name)
	case scopedIn != "":
		// A deliberately scoped role: ask for the one statement it lacks,
		// not for a broad managed policy.
		f.Policy = &PolicyRef{Kind: PolicyIdentity, Name: scopedIn}
		f.Message = fmt.Sprintf("no identity policy of role %s allows %s on Resource \"*\", so no registry token can be had"+
			" (a grant scoped to a repository ARN does not give the token, which is not a repository resource)", role, ActionGetAuthorizationToken)
		f.Fix = fmt.Sprintf(`give the token its own statement in policy %s of role %s: {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}`,
			scopedIn, role)
	default:
		f.Message = fmt.Sprintf("no identity policy of role %s allows %s on Resource \"*\", so no registry token can be had", role, ActionGetAuthorizationToken)
		f.Fix = fmt.Sprintf(`attach the AWS managed policy AmazonEC2ContainerRegistryPullOnly to role %s, or allow it {"Action": "ecr:GetAuthorizationToken", "Resource": "*"} in its own statement`, role)
	}
	return f
}

// resourcePolicyDenies: a Deny statement of the repository or registry
// policy p matches the role's pull.
func resourcePolicyDenies(t target, rp rolePolicies, actions []string, r iampolicy.Reason, p *iampolicy.NamedPolicy, registry bool) Finding {
	role, all := RoleName(rp.ARN), strings.Join(actions, " and ")
	f := Finding{Severity: SeverityError, Role: rp.ARN, Action: actions[0], Statement: r.Statement, Repository: t.ref()}
	var change string
	if registry {
		f.Code, f.Policy = CodeRegistryPolicyDenies, &PolicyRef{Kind: PolicyRegistry, Name: r.Name}
		f.Message = fmt.Sprintf("statement %q of the registry policy of account %s denies %s to role %s", r.Statement, t.Account, actions[0], role)
		change = fmt.Sprintf("remove role %s from statement %q or narrow its actions", role, r.Statement)
	} else {
		f.Code, f.Policy = CodeRepositoryPolicyDenies, &PolicyRef{Kind: PolicyRepository, Name: r.Name}
		f.Message = fmt.Sprintf("statement %q of the repository policy of %s denies %s to role %s", r.Statement, t.Name, actions[0], role)
		change = fmt.Sprintf("remove role %s from statement %q, narrow its actions, or change its Effect to Allow", role, r.Statement)
	}
	f.Message, change = explainDeny(p, r.Statement, rp.ARN, all, f.Message, change)
	if registry {
		f.Command = []string{"aws", "ecr", "put-registry-policy", "--region", t.Region}
		f.Fix = fmt.Sprintf("edit the registry policy of account %s in %s (aws ecr put-registry-policy): %s", t.Account, t.Region, change)
	} else {
		f.Command = []string{"aws", "ecr", "set-repository-policy", "--repository-name", t.Name, "--region", t.Region}
		f.Fix = fmt.Sprintf("edit the repository policy of %s: %s (%s)", t.Name, change, strings.Join(f.Command, " "))
	}
	return withActions(f, actions)
}

func identityPolicyDenies(t target, rp rolePolicies, actions []string, r iampolicy.Reason) Finding {
	all := strings.Join(actions, " and ")
	f := Finding{
		Code: CodeIdentityPolicyDenies, Severity: SeverityError, Role: rp.ARN, Action: actions[0], Statement: r.Statement,
		Policy: policyRef(r), Repository: t.ref(),
		Message: fmt.Sprintf("statement %q of %s denies %s on repository %s", r.Statement, describePolicy(r, RoleName(rp.ARN)), actions[0], t.Name),
		Fix:     identityDenyFix(rp, r, all, all+" (or the repository)", ", or exclude the repository from it"),
	}
	return withActions(f, actions)
}

// crossAccountNotAllowed: a pull from another account needs both sides.
// cf is the registry-side grant whose condition failed, if any.
func crossAccountNotAllowed(t target, rp rolePolicies, actions []string, resourceMissing, identityMissing bool, cf *iampolicy.ConditionFailure) Finding {
	role, roleAccount := RoleName(rp.ARN), rp.Role.Account
	f := Finding{Code: CodeCrossAccountNotAllowed, Severity: SeverityError, Role: rp.ARN, Action: actions[0], Repository: t.ref()}
	var missing, fixes []string
	switch {
	case resourceMissing && cf != nil:
		f.Statement, f.Policy, f.ConditionKeys = cf.Statement, policyRef(cf.Reason), []string{cf.Key}
		missing = append(missing, fmt.Sprintf("statement %q of %s would grant it, but its condition on %s does not hold for this pull", cf.Statement, cf.Name, cf.Key))
		fixes = append(fixes, conditionFix(*cf, role))
	case resourceMissing:
		missing = append(missing, fmt.Sprintf("the repository policy of %s does not grant role %s or account %s", t.Name, role, roleAccount))
		fixes = append(fixes, fmt.Sprintf("allow %s to %s in the repository policy of %s (account %s)",
			rp.ARN, strings.Join(repositoryActions, ", "), t.Name, t.Account))
	}
	if identityMissing {
		missing = append(missing, fmt.Sprintf("no identity policy of role %s allows it", role))
		fixes = append(fixes, fmt.Sprintf("attach AmazonEC2ContainerRegistryPullOnly to role %s (within its permissions boundary, if any)", role))
	}
	if len(missing) == 0 {
		missing = append(missing, "both accounts must allow it")
		fixes = append(fixes, "allow the pull in both the repository policy and the role's identity policies")
	}
	f.Message = fmt.Sprintf("role %s (account %s) may not %s from account %s: %s", role, roleAccount, actions[0], t.Account, strings.Join(missing, "; "))
	f.Fix = "cross-account pulls need both sides: " + strings.Join(fixes, ", and ")
	return withActions(f, actions)
}

func boundaryBlocksPull(t target, rp rolePolicies, actions []string) Finding {
	role, all := RoleName(rp.ARN), strings.Join(actions, " and ")
	f := Finding{
		Code: CodePullNotAllowed, Severity: SeverityError, Role: rp.ARN, Action: actions[0], Repository: t.ref(),
		Policy:  &PolicyRef{Kind: PolicyBoundary, Name: rp.Boundary.Name},
		Message: fmt.Sprintf("the permissions boundary %s of role %s does not allow %s on repository %s", rp.Boundary.Name, role, all, t.Name),
		Fix:     fmt.Sprintf("allow %s on %s in the permissions boundary %s of role %s", all, t.ARN, rp.Boundary.Name, role),
	}
	if len(actions) > 1 {
		f.Actions = actions // the message names them all already
	}
	return f
}

// grantConditionFails: an Allow meant for the pull does not apply because
// its condition does not hold.
func grantConditionFails(t target, rp rolePolicies, actions []string, cf iampolicy.ConditionFailure) Finding {
	role := RoleName(rp.ARN)
	f := Finding{
		Code: CodePullNotAllowed, Severity: SeverityError, Role: rp.ARN, Action: actions[0], Repository: t.ref(),
		Statement: cf.Statement, Policy: policyRef(cf.Reason), ConditionKeys: []string{cf.Key},
		Message: fmt.Sprintf("statement %q of %s would allow role %s to %s on repository %s, but its condition on %s does not hold for this pull",
			cf.Statement, describePolicy(cf.Reason, role), role, actions[0], t.Name, cf.Key),
		Fix: conditionFix(cf, role),
	}
	return withActions(f, actions)
}

func pullNotAllowed(t target, rp rolePolicies, actions []string) Finding {
	role := RoleName(rp.ARN)
	f := Finding{
		Code: CodePullNotAllowed, Severity: SeverityError, Role: rp.ARN, Action: actions[0], Repository: t.ref(),
		Message: fmt.Sprintf("no policy allows role %s to %s on repository %s", role, actions[0], t.Name),
		Fix:     fmt.Sprintf("attach the AWS managed policy AmazonEC2ContainerRegistryPullOnly to role %s, or allow it in the repository policy of %s", role, t.Name),
	}
	return withActions(f, actions)
}

// undetermined: the decision depends on condition keys unknown at
// admission time (or that no one can know for a fleet of nodes).
func undetermined(roleARN, action, what string, dec iampolicy.Decision) Finding {
	role := RoleName(roleARN)
	keys := strings.Join(dec.UnknownKeys, ", ")
	f := Finding{
		Code: CodeUndetermined, Severity: SeverityWarning, Role: roleARN, Action: action,
		UnknownKeys: dec.UnknownKeys,
		Message:     fmt.Sprintf("whether role %s may %s on %s depends on %s, unknown at admission time", role, action, what, keys),
		Fix:         fmt.Sprintf("if you know the value, configure it (--context %s=VALUE)", firstOr(dec.UnknownKeys, "KEY")),
	}
	statement := "the statement"
	if len(dec.Reasons) > 0 {
		r := dec.Reasons[0]
		f.Statement, f.Policy = r.Statement, policyRef(r)
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

// ---- pull-through cache ----

// cacheDenied: a Deny statement stops ECR from creating the cache
// repository or importing into it for the role.
func cacheDenied(t target, rp rolePolicies, action string, r iampolicy.Reason, consequence string) Finding {
	role := RoleName(rp.ARN)
	f := Finding{
		Code: CodePullThroughCacheNotAllowed, Severity: SeverityError, Role: rp.ARN, Action: action, Repository: t.ref(),
		Statement: r.Statement, Policy: policyRef(r),
		Message: fmt.Sprintf("statement %q of %s denies %s to role %s, %s", r.Statement, describePolicy(r, role), action, role, consequence),
	}
	if r.Policy == iampolicy.SourceResource {
		f.Fix = fmt.Sprintf("edit %s: exempt role %s from statement %q or narrow its actions", r.Name, role, r.Statement)
	} else {
		f.Fix = identityDenyFix(rp, r, action, action, "")
	}
	return f
}

// cacheNotAllowed: nothing grants the role what a pull-through cache pull
// needs. scope is the ARN pattern the grant should cover.
func cacheNotAllowed(t target, rp rolePolicies, action, scope, consequence string, boundary bool) Finding {
	role := RoleName(rp.ARN)
	f := Finding{Code: CodePullThroughCacheNotAllowed, Severity: SeverityError, Role: rp.ARN, Action: action, Repository: t.ref()}
	switch {
	case boundary:
		f.Policy = &PolicyRef{Kind: PolicyBoundary, Name: rp.Boundary.Name}
		f.Message = fmt.Sprintf("the permissions boundary %s of role %s does not allow %s on repository %s, %s",
			rp.Boundary.Name, role, action, t.Name, consequence)
		f.Fix = fmt.Sprintf("allow %s on %s in the permissions boundary %s", action, t.ARN, rp.Boundary.Name)
		return f
	case action == ActionCreateRepository:
		f.Fix = fmt.Sprintf("allow %s on %s to role %s in an identity policy or the registry policy of account %s (neither AmazonEC2ContainerRegistryReadOnly nor AmazonEC2ContainerRegistryPullOnly grants it)",
			action, scope, role, t.Account)
	default:
		f.Fix = fmt.Sprintf("attach AmazonEC2ContainerRegistryPullOnly to role %s (it grants %s), or allow %s on %s to the role in the registry policy of account %s",
			role, action, action, scope, t.Account)
	}
	f.Message = fmt.Sprintf("no policy allows role %s to %s on repository %s, %s", role, action, t.Name, consequence)
	return f
}

// cacheUnreadRegistry: whether the role may have ECR import depends on a
// registry policy of another account that could not be read.
func cacheUnreadRegistry(t target, rp rolePolicies, action string) Finding {
	return Finding{
		Code: CodeUndetermined, Severity: SeverityWarning, Role: rp.ARN, Action: action, Repository: t.ref(),
		Message: fmt.Sprintf("whether role %s may %s on repository %s depends on the registry policy of account %s, which could not be read",
			RoleName(rp.ARN), action, t.Name, t.Account),
		Fix: fmt.Sprintf("let ecr-preflight read it: --assume-role %s=ROLE_ARN with a role in account %s that may ecr:GetRegistryPolicy", t.Account, t.Account),
	}
}

// ---- wording helpers ----

// explainDeny rewords a resource policy Deny's message and fix for statements
// that do not name the role: a NotAction list, "*" with a condition, or a
// NotPrincipal list. actions are the denied actions, as words.
func explainDeny(p *iampolicy.NamedPolicy, statement, roleARN, actions, msg, change string) (string, string) {
	if p == nil {
		return msg, change
	}
	role := RoleName(roleARN)
	shape, ok := p.Policy.Shape(statement)
	switch {
	case !ok:
	case shape.NotAction:
		change = notActionFix(actions, fmt.Sprintf("statement %q", statement))
	case len(shape.NotPrincipal) > 0:
		// The kubelet calls as a session of the role, which a NotPrincipal
		// listing only the role does not exempt (AWS's NotPrincipal page).
		r, _ := awsclient.ParseRoleARN(roleARN)
		msg += fmt.Sprintf(" (its NotPrincipal exempts %s, but the kubelet calls as an assumed-role session of role %s, arn:%s:sts::%s:assumed-role/%s/SESSION, which it does not list)",
			strings.Join(shape.NotPrincipal, ", "), role, r.Partition, r.Account, role)
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
	where := fmt.Sprintf("the Deny statement %q of %s", r.Statement, describePolicy(r, RoleName(rp.ARN)))
	if shape, ok := identityShape(rp, r); ok && shape.NotAction {
		return notActionFix(action, where) + orElse
	}
	return fmt.Sprintf("remove %s from %s", remove, where)
}

func notActionFix(action, statement string) string {
	return fmt.Sprintf("add %s to the NotAction list of %s (the actions it does not deny)", action, statement)
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

// describePolicy names the policy a reason came from, for messages.
func describePolicy(r iampolicy.Reason, role string) string {
	switch r.Policy {
	case iampolicy.SourceIdentity:
		return fmt.Sprintf("policy %s of role %s", r.Name, role)
	case iampolicy.SourceBoundary:
		return fmt.Sprintf("the permissions boundary %s of role %s", r.Name, role)
	case iampolicy.SourceSCP:
		return "service control policy " + r.Name
	case iampolicy.SourceRCP:
		return "resource control policy " + r.Name
	}
	return r.Name
}

// policyRef is the data form of describePolicy. A resource policy's kind
// comes from its name, which the engine gives it.
func policyRef(r iampolicy.Reason) *PolicyRef {
	kind := map[iampolicy.Source]PolicyKind{
		iampolicy.SourceIdentity: PolicyIdentity, iampolicy.SourceBoundary: PolicyBoundary,
		iampolicy.SourceSCP: PolicySCP, iampolicy.SourceRCP: PolicyRCP,
	}[r.Policy]
	if r.Policy == iampolicy.SourceResource {
		kind = PolicyRepository
		if strings.HasPrefix(r.Name, registryPolicyName) {
			kind = PolicyRegistry
		}
	}
	return &PolicyRef{Kind: kind, Name: r.Name}
}

// Names the engine gives the resource policies it reads.
const (
	repositoryPolicyName = "the repository policy of "
	registryPolicyName   = "the registry policy of account "
)

// RoleName is the name of the role an ARN names: the last element of a
// role's path, or the role of an assumed-role session. A string that is
// not a role ARN is returned as it is.
func RoleName(roleARN string) string {
	if r, err := awsclient.ParseRoleARN(roleARN); err == nil {
		return r.Name
	}
	return roleARN
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// ---- node pools ----

// poolRoleUnknown: discovery found the pool but not the role it pulls as.
func poolRoleUnknown() Finding {
	return Finding{
		Code: CodeLookupFailed, Severity: SeverityWarning,
		Message: "the IAM role its nodes pull as is not known",
		Fix:     "run `ecr-preflight pools` to see what discovery found; check ecr-preflight's ec2:DescribeInstances and iam:GetInstanceProfile permissions",
	}
}

// discoveryIncomplete: no candidate pool found can pull it (or none was
// found), but a source of pools could not be read, so one that would pull
// may be missing. The sources' own words stay in the log.
func discoveryIncomplete(sources []string) Finding {
	return Finding{
		Code: CodeLookupFailed, Severity: SeverityWarning,
		Message: fmt.Sprintf("not every node pool that may pull it is known: node pool discovery is incomplete (%s)", plural(len(sources), "problem")),
		Fix:     "run `ecr-preflight pools` (or read the webhook's log) and grant what discovery lacks (see the chart's IAM policy and RBAC)",
	}
}

// plural is "1 problem" or "3 problems".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// platformUnread: the image's manifest (or config) could not be read, so
// its platforms are not known for pool p.
func platformUnread(p nodepools.Pool, err error) Finding {
	f := lookupFailed("reading the image's platforms for "+p.String(), err)
	f.Pool = &PoolRef{Name: p.Name, Kind: string(p.Kind)}
	return f
}

// platformNotAvailable: the image has no variant for the missing platforms
// of pool p. some: the pool also runs platforms the image has, so only
// pods placed on some of its nodes fail (a warning).
func platformNotAvailable(p nodepools.Pool, missing, provided []ocispec.Platform, some bool) Finding {
	f := Finding{
		Code: CodePlatformNotAvailable, Severity: SeverityError,
		Pool: &PoolRef{Name: p.Name, Kind: string(p.Kind)},
	}
	for _, m := range missing {
		f.Platforms = append(f.Platforms, nodepools.FormatPlatform(m))
	}
	has := "no platform it names"
	if len(provided) > 0 {
		has = formatPlatforms(provided)
	}
	f.Message = fmt.Sprintf("%s runs %s, and the image has no variant for it (it has %s)", p, formatPlatforms(missing), has)
	if some {
		f.Severity = SeverityWarning
		f.Message = fmt.Sprintf("pods placed on %s nodes of %s will not start: the image has no variant for it (it has %s)", formatPlatforms(missing), p, has)
	}
	want := slices.Concat(provided, missing)
	f.Fix = fmt.Sprintf("push a multi-platform image that includes %s (docker buildx build --platform %s --push), or keep the workload off those nodes (nodeSelector %s)",
		formatPlatforms(missing), buildxPlatforms(want), archSelector(provided))
	return f
}

// buildxPlatforms is "linux/amd64,linux/arm64" for buildx's --platform.
func buildxPlatforms(ps []ocispec.Platform) string {
	var out []string
	for _, p := range ps {
		s := p.OS + "/" + p.Architecture
		if p.Variant != "" {
			s += "/" + p.Variant
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, ",")
}

// archSelector is the nodeSelector that keeps pods on what the image has.
func archSelector(provided []ocispec.Platform) string {
	if len(provided) == 0 {
		return "kubernetes.io/arch"
	}
	return "kubernetes.io/arch: " + provided[0].Architecture
}
