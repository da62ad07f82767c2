package fake

import (
	"context"
	"net/url"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
)

// Role is a fake IAM role.
type Role struct {
	ARN string
	// Attached are the ARNs of attached managed policies.
	Attached []string
	// Inline maps an inline policy name to its JSON.
	Inline map[string]string
	// Boundary is the ARN of the permissions boundary, "" for none.
	Boundary string
	Tags     map[string]string
}

// ManagedPolicy is a fake managed policy.
type ManagedPolicy struct {
	Name           string
	DefaultVersion string
	// Versions maps a version ID to its JSON.
	Versions map[string]string
}

// IAM is an in-memory IAM with roles and managed policies. It returns
// policy documents URL-encoded, as IAM does.
type IAM struct {
	awsclient.IAMAPI
	recorder

	// Roles by name.
	Roles map[string]*Role
	// Policies by ARN.
	Policies map[string]*ManagedPolicy
	// PageSize, if set, limits list answers per page, to exercise
	// pagination.
	PageSize int
}

var _ awsclient.IAMAPI = (*IAM)(nil)

func (f *IAM) role(name *string) (*Role, error) {
	r, ok := f.Roles[aws.ToString(name)]
	if !ok {
		return nil, &types.NoSuchEntityException{Message: aws.String("role " + aws.ToString(name) + " not found")}
	}
	return r, nil
}

// page returns one page of items from marker and the next marker.
func page[T any](items []T, marker *string, size int) ([]T, *string, bool) {
	start := 0
	if marker != nil {
		start = int(aws.ToString(marker)[0] - 'a')
	}
	if size <= 0 || start+size >= len(items) {
		return items[start:], nil, false
	}
	next := string(rune('a' + start + size))
	return items[start : start+size], &next, true
}

// GetRole implements awsclient.IAMAPI.
func (f *IAM) GetRole(_ context.Context, in *iam.GetRoleInput, _ ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	if err := f.begin("GetRole"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.role(in.RoleName)
	if err != nil {
		return nil, err
	}
	out := &iam.GetRoleOutput{Role: &types.Role{Arn: aws.String(r.ARN), RoleName: in.RoleName}}
	if r.Boundary != "" {
		out.Role.PermissionsBoundary = &types.AttachedPermissionsBoundary{PermissionsBoundaryArn: aws.String(r.Boundary)}
	}
	return out, nil
}

// ListAttachedRolePolicies implements awsclient.IAMAPI.
func (f *IAM) ListAttachedRolePolicies(_ context.Context, in *iam.ListAttachedRolePoliciesInput, _ ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error) {
	if err := f.begin("ListAttachedRolePolicies"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.role(in.RoleName)
	if err != nil {
		return nil, err
	}
	var all []types.AttachedPolicy
	for _, arn := range r.Attached {
		name := ""
		if p, ok := f.Policies[arn]; ok {
			name = p.Name
		}
		all = append(all, types.AttachedPolicy{PolicyArn: aws.String(arn), PolicyName: aws.String(name)})
	}
	items, next, more := page(all, in.Marker, f.PageSize)
	return &iam.ListAttachedRolePoliciesOutput{AttachedPolicies: items, Marker: next, IsTruncated: more}, nil
}

// ListRolePolicies implements awsclient.IAMAPI.
func (f *IAM) ListRolePolicies(_ context.Context, in *iam.ListRolePoliciesInput, _ ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error) {
	if err := f.begin("ListRolePolicies"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.role(in.RoleName)
	if err != nil {
		return nil, err
	}
	var names []string
	for n := range r.Inline {
		names = append(names, n)
	}
	slices.Sort(names)
	items, next, more := page(names, in.Marker, f.PageSize)
	return &iam.ListRolePoliciesOutput{PolicyNames: items, Marker: next, IsTruncated: more}, nil
}

// GetRolePolicy implements awsclient.IAMAPI.
func (f *IAM) GetRolePolicy(_ context.Context, in *iam.GetRolePolicyInput, _ ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error) {
	if err := f.begin("GetRolePolicy"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.role(in.RoleName)
	if err != nil {
		return nil, err
	}
	doc, ok := r.Inline[aws.ToString(in.PolicyName)]
	if !ok {
		return nil, &types.NoSuchEntityException{Message: aws.String("no such inline policy")}
	}
	return &iam.GetRolePolicyOutput{RoleName: in.RoleName, PolicyName: in.PolicyName, PolicyDocument: aws.String(url.QueryEscape(doc))}, nil
}

// ListRoleTags implements awsclient.IAMAPI.
func (f *IAM) ListRoleTags(_ context.Context, in *iam.ListRoleTagsInput, _ ...func(*iam.Options)) (*iam.ListRoleTagsOutput, error) {
	if err := f.begin("ListRoleTags"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.role(in.RoleName)
	if err != nil {
		return nil, err
	}
	var tags []types.Tag
	for k, v := range r.Tags {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	slices.SortFunc(tags, func(a, b types.Tag) int {
		if *a.Key < *b.Key {
			return -1
		}
		return 1
	})
	items, next, more := page(tags, in.Marker, f.PageSize)
	return &iam.ListRoleTagsOutput{Tags: items, Marker: next, IsTruncated: more}, nil
}

// GetPolicy implements awsclient.IAMAPI.
func (f *IAM) GetPolicy(_ context.Context, in *iam.GetPolicyInput, _ ...func(*iam.Options)) (*iam.GetPolicyOutput, error) {
	if err := f.begin("GetPolicy"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.Policies[aws.ToString(in.PolicyArn)]
	if !ok {
		return nil, &types.NoSuchEntityException{Message: aws.String("policy not found")}
	}
	return &iam.GetPolicyOutput{Policy: &types.Policy{Arn: in.PolicyArn, PolicyName: aws.String(p.Name), DefaultVersionId: aws.String(p.DefaultVersion)}}, nil
}

// GetPolicyVersion implements awsclient.IAMAPI.
func (f *IAM) GetPolicyVersion(_ context.Context, in *iam.GetPolicyVersionInput, _ ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error) {
	if err := f.begin("GetPolicyVersion"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.Policies[aws.ToString(in.PolicyArn)]
	if !ok {
		return nil, &types.NoSuchEntityException{Message: aws.String("policy not found")}
	}
	doc, ok := p.Versions[aws.ToString(in.VersionId)]
	if !ok {
		return nil, &types.NoSuchEntityException{Message: aws.String("policy version not found")}
	}
	return &iam.GetPolicyVersionOutput{PolicyVersion: &types.PolicyVersion{
		VersionId: in.VersionId, Document: aws.String(url.QueryEscape(doc)),
		IsDefaultVersion: aws.ToString(in.VersionId) == p.DefaultVersion,
	}}, nil
}
