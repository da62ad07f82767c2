// Package awsseed plants AWS state in an emulator (moto) through the real
// SDK: repositories, images, repository policies and node roles, and the
// seed scenario this project exists to prevent. Tests, the end-to-end suite
// and `make demo` share it, so they all replay the same scenario.
package awsseed

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// ReadOnlyPolicyARN is the AWS managed policy the seed's node role has.
const ReadOnlyPolicyARN = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"

// trustEC2 lets EC2 instances (the nodes) assume a role.
const trustEC2 = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// manifest is a minimal image manifest. moto assigns the digest itself (not
// the manifest's sha256): read it from PushImage, never compute it.
const manifest = `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}`

// Account is one AWS account with clients to seed it.
type Account struct {
	ID     string
	Region string
	ECR    *ecr.Client
	IAM    *iam.Client
	EC2    *ec2.Client
}

// NewAccount returns an Account whose clients use cfg (which must act as
// account id).
func NewAccount(cfg aws.Config, id string) *Account {
	return &Account{ID: id, Region: cfg.Region, ECR: ecr.NewFromConfig(cfg), IAM: iam.NewFromConfig(cfg), EC2: ec2.NewFromConfig(cfg)}
}

// PushImage creates the repository if needed and pushes a manifest under
// tag, returning the digest ECR assigned.
func (a *Account) PushImage(ctx context.Context, repo, tag string) (string, error) {
	if err := a.createRepository(ctx, repo); err != nil {
		return "", err
	}
	out, err := a.ECR.PutImage(ctx, &ecr.PutImageInput{
		RepositoryName: aws.String(repo), ImageTag: aws.String(tag), ImageManifest: aws.String(manifest),
	})
	if err != nil {
		return "", fmt.Errorf("pushing %s:%s: %w", repo, tag, err)
	}
	return aws.ToString(out.Image.ImageId.ImageDigest), nil
}

// createRepository creates repo unless it exists.
func (a *Account) createRepository(ctx context.Context, repo string) error {
	if _, err := a.ECR.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo)}); err != nil &&
		!strings.Contains(err.Error(), "RepositoryAlreadyExists") {
		return fmt.Errorf("creating repository %s: %w", repo, err)
	}
	return nil
}

// SetRepositoryPolicy replaces the repository's policy.
func (a *Account) SetRepositoryPolicy(ctx context.Context, repo, policy string) error {
	if _, err := a.ECR.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{
		RepositoryName: aws.String(repo), PolicyText: aws.String(policy),
	}); err != nil {
		return fmt.Errorf("setting the policy of %s: %w", repo, err)
	}
	return nil
}

// CreateRole creates a node role (trusted by EC2) with the managed policies
// attached and the inline policies (name -> document), returning its ARN.
func (a *Account) CreateRole(ctx context.Context, name string, managed []string, inline map[string]string) (string, error) {
	out, err := a.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trustEC2)})
	if err != nil {
		return "", fmt.Errorf("creating role %s: %w", name, err)
	}
	for _, arn := range managed {
		if _, err := a.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(arn)}); err != nil {
			return "", fmt.Errorf("attaching %s to %s: %w", arn, name, err)
		}
	}
	for pn, doc := range inline {
		if _, err := a.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn), PolicyDocument: aws.String(doc)}); err != nil {
			return "", fmt.Errorf("putting inline policy %s on %s: %w", pn, name, err)
		}
	}
	return aws.ToString(out.Role.Arn), nil
}

// Image is the reference of repo at ref (a tag, or a sha256: digest) in
// this account's registry.
func (a *Account) Image(repo, ref string) string {
	sep := ":"
	if strings.HasPrefix(ref, "sha256:") {
		sep = "@"
	}
	return fmt.Sprintf("%s.dkr.ecr.%s.amazonaws.com/%s%s%s", a.ID, a.Region, repo, sep, ref)
}
