package awsclient

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"golang.org/x/sync/errgroup"
)

// Policy is one IAM policy document.
type Policy struct {
	// Name is the policy name (managed) or the inline policy's name.
	Name string
	// ARN is the managed policy's ARN; empty for an inline policy.
	ARN string
	// VersionID is the managed policy's default version, e.g. "v3".
	VersionID string
	// Document is the policy JSON, URL-decoded.
	Document string
}

// RolePolicies is everything IAM says about a role's own permissions.
type RolePolicies struct {
	RoleARN string
	// Attached are the managed policies, each at its default version.
	Attached []Policy
	// Inline are the role's inline policies.
	Inline []Policy
	// Boundary is the permissions boundary, nil if none.
	Boundary *Policy
	// Tags are the role's tags (for aws:PrincipalTag conditions).
	Tags map[string]string
}

// maxPolicyFetches bounds concurrent IAM calls for one role: IAM's
// per-account request rate is low and shared with everything else.
const maxPolicyFetches = 4

// RolePolicies returns a role's managed (attached), inline and boundary
// policies and its tags. A role that does not exist gives an error wrapping
// ErrRoleNotFound. Managed policy documents are cached on their own, so the
// AWS managed policies shared by many roles are fetched once.
func (l *Lookups) RolePolicies(ctx context.Context, roleARN string) (RolePolicies, error) {
	what := fmt.Sprintf("reading the policies of role %s", roleARN)
	role, err := ParseIAMRoleARN(roleARN)
	if err != nil {
		return RolePolicies{}, &LookupError{What: what, Class: ClassOther, Err: err}
	}
	type answer struct {
		rp      RolePolicies
		missing bool
	}
	a, err := cached(ctx, l, KindRole, key("role", roleARN), what,
		func(a answer) time.Duration {
			if a.missing {
				return l.opts.TTL.NotFound
			}
			return l.opts.TTL.Policy
		},
		func(ctx context.Context) (answer, error) {
			client, err := l.clients.IAM(role.Account)
			if err != nil {
				return answer{}, fmt.Errorf("%s: %w", what, err)
			}
			rp, err := l.fetchRole(ctx, client, what, roleARN, role.Name)
			if errors.Is(err, ErrRoleNotFound) {
				return answer{missing: true}, nil
			}
			return answer{rp: rp}, err
		})
	if err != nil {
		return RolePolicies{}, err
	}
	if a.missing {
		return RolePolicies{}, &LookupError{What: what, Action: "iam:GetRole", Class: ClassNotFound, Err: ErrRoleNotFound}
	}
	return a.rp, nil
}

func (l *Lookups) fetchRole(ctx context.Context, client IAMAPI, what, roleARN, name string) (RolePolicies, error) {
	rp := RolePolicies{RoleARN: roleARN, Tags: map[string]string{}}
	role, err := call(ctx, l, "GetRole", func(ctx context.Context) (*iam.GetRoleOutput, error) {
		return client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	})
	var noEntity *iamtypes.NoSuchEntityException
	if errors.As(err, &noEntity) {
		return rp, ErrRoleNotFound
	}
	if err != nil {
		return rp, lookupError(what, "iam:GetRole", err)
	}

	var attached []iamtypes.AttachedPolicy
	err = eachPage(ctx, l, "ListAttachedRolePolicies",
		iam.NewListAttachedRolePoliciesPaginator(client, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)}),
		func(out *iam.ListAttachedRolePoliciesOutput) { attached = append(attached, out.AttachedPolicies...) })
	if err != nil {
		return rp, lookupError(what, "iam:ListAttachedRolePolicies", err)
	}
	var inlineNames []string
	err = eachPage(ctx, l, "ListRolePolicies",
		iam.NewListRolePoliciesPaginator(client, &iam.ListRolePoliciesInput{RoleName: aws.String(name)}),
		func(out *iam.ListRolePoliciesOutput) { inlineNames = append(inlineNames, out.PolicyNames...) })
	if err != nil {
		return rp, lookupError(what, "iam:ListRolePolicies", err)
	}
	err = eachPage(ctx, l, "ListRoleTags",
		iam.NewListRoleTagsPaginator(client, &iam.ListRoleTagsInput{RoleName: aws.String(name)}),
		func(out *iam.ListRoleTagsOutput) {
			for _, t := range out.Tags {
				rp.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
		})
	if err != nil {
		return rp, lookupError(what, "iam:ListRoleTags", err)
	}

	rp.Attached = make([]Policy, len(attached))
	rp.Inline = make([]Policy, len(inlineNames))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxPolicyFetches)
	for i, p := range attached {
		g.Go(func() error {
			doc, err := l.managedPolicy(gctx, client, aws.ToString(p.PolicyArn))
			rp.Attached[i] = doc
			return err
		})
	}
	for i, pname := range inlineNames {
		g.Go(func() error {
			doc, err := l.inlinePolicy(gctx, client, what, name, pname)
			rp.Inline[i] = doc
			return err
		})
	}
	var boundary Policy
	if b := role.Role.PermissionsBoundary; b != nil && aws.ToString(b.PermissionsBoundaryArn) != "" {
		g.Go(func() error {
			var err error
			boundary, err = l.managedPolicy(gctx, client, aws.ToString(b.PermissionsBoundaryArn))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return rp, err
	}
	if boundary.ARN != "" {
		rp.Boundary = &boundary
	}
	return rp, nil
}

// managedPolicy returns a managed policy's default version, cached by ARN.
func (l *Lookups) managedPolicy(ctx context.Context, client IAMAPI, arn string) (Policy, error) {
	what := fmt.Sprintf("reading managed policy %s", arn)
	return cached(ctx, l, KindManagedPolicy, key("managed", arn), what, fixed[Policy](l.opts.TTL.Policy),
		func(ctx context.Context) (Policy, error) {
			p, err := call(ctx, l, "GetPolicy", func(ctx context.Context) (*iam.GetPolicyOutput, error) {
				return client.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
			})
			if err != nil {
				return Policy{}, lookupError(what, "iam:GetPolicy", err)
			}
			version := aws.ToString(p.Policy.DefaultVersionId)
			v, err := call(ctx, l, "GetPolicyVersion", func(ctx context.Context) (*iam.GetPolicyVersionOutput, error) {
				return client.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: aws.String(version)})
			})
			if err != nil {
				return Policy{}, lookupError(what, "iam:GetPolicyVersion", err)
			}
			doc, err := decodeDocument(aws.ToString(v.PolicyVersion.Document))
			if err != nil {
				return Policy{}, &LookupError{What: what, Action: "iam:GetPolicyVersion", Class: ClassOther, Err: err}
			}
			return Policy{Name: aws.ToString(p.Policy.PolicyName), ARN: arn, VersionID: version, Document: doc}, nil
		})
}

func (l *Lookups) inlinePolicy(ctx context.Context, client IAMAPI, what, role, name string) (Policy, error) {
	out, err := call(ctx, l, "GetRolePolicy", func(ctx context.Context) (*iam.GetRolePolicyOutput, error) {
		return client.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name)})
	})
	if err != nil {
		return Policy{}, lookupError(fmt.Sprintf("%s: inline policy %s", what, name), "iam:GetRolePolicy", err)
	}
	doc, err := decodeDocument(aws.ToString(out.PolicyDocument))
	if err != nil {
		return Policy{}, &LookupError{What: what, Action: "iam:GetRolePolicy", Class: ClassOther, Err: err}
	}
	return Policy{Name: name, Document: doc}, nil
}

// decodeDocument undoes the URL encoding (RFC 3986) in which IAM returns
// policy documents. A document that is already plain JSON is returned as
// is: JSON never starts with '%', and unescaping plain JSON could corrupt a
// literal "+" or "%" inside it.
func decodeDocument(doc string) (string, error) {
	trimmed := strings.TrimSpace(doc)
	if strings.HasPrefix(trimmed, "{") || strings.HasPrefix(trimmed, "[") {
		return doc, nil
	}
	out, err := url.QueryUnescape(doc)
	if err != nil {
		return "", fmt.Errorf("URL-decoding policy document: %w", err)
	}
	return out, nil
}

// ParseIAMRoleARN is ParseRoleARN for a role itself, the only thing IAM
// answers about and the only thing that can be assumed: a role session's
// ARN names a role but is none.
func ParseIAMRoleARN(s string) (RoleARN, error) {
	r, err := ParseRoleARN(s)
	if err != nil {
		return RoleARN{}, err
	}
	if r.IsSession() {
		return RoleARN{}, fmt.Errorf("%q is not an IAM role ARN but a session of role %s: want arn:PARTITION:iam::ACCOUNT:role/NAME", s, r.Name)
	}
	return r, nil
}

// pager is an SDK paginator (iam.NewListRoleTagsPaginator, ...) whose pages
// are T and whose client options are O.
type pager[T, O any] interface {
	HasMorePages() bool
	NextPage(context.Context, ...func(*O)) (T, error)
}

// eachPage hands every page of p to visit. Each page is one call: under
// its own deadline and reported to the observer. The SDK's paginator keeps
// the marker or token.
func eachPage[T, O any](ctx context.Context, l *Lookups, operation string, p pager[T, O], visit func(T)) error {
	for p.HasMorePages() {
		out, err := call(ctx, l, operation, func(ctx context.Context) (T, error) { return p.NextPage(ctx) })
		if err != nil {
			return err
		}
		visit(out)
	}
	return nil
}
