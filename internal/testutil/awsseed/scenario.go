package awsseed

import (
	"context"
	"strings"
)

// The seed scenario (shared/seed): names as the EKS troubleshooting workshop
// has them.
const (
	SeedAccount    = "1234567890"
	SeedRepository = "retail-sample-app-ui"
	SeedTag        = "1.2.1"
	SeedRoleName   = "EksNodeGroupRole"
	// SeedStatement is the Sid of the repository policy statement that
	// denies the node role.
	SeedStatement = "new policy"
)

// seedActions are the statement's actions, as the workshop lists them.
const seedActions = `["ecr:UploadLayerPart","ecr:SetRepositoryPolicy","ecr:PutImage","ecr:ListImages","ecr:InitiateLayerUpload","ecr:GetRepositoryPolicy","ecr:GetDownloadUrlForLayer","ecr:DescribeRepositories","ecr:DeleteRepositoryPolicy","ecr:DeleteRepository","ecr:CompleteLayerUpload","ecr:BatchGetImage","ecr:BatchDeleteImage","ecr:BatchCheckLayerAvailability"]`

// SeedPolicy is the workshop's repository policy with the given effect:
// "Deny" is the bug, "Allow" the fix.
func SeedPolicy(roleARN, effect string) string {
	return `{"Version":"2012-10-17","Statement":[{"Sid":"` + SeedStatement + `","Effect":"` + effect +
		`","Principal":{"AWS":"` + roleARN + `"},"Action":` + seedActions + `}]}`
}

// Seed is the planted scenario.
type Seed struct {
	Account *Account
	// Image is ACCOUNT.dkr.ecr.REGION.amazonaws.com/retail-sample-app-ui:1.2.1.
	Image   string
	RoleARN string
}

// PlantSeed creates the scenario in a: the image exists, the node role has
// AmazonEC2ContainerRegistryReadOnly, and the repository policy's statement
// "new policy" denies the role.
func PlantSeed(ctx context.Context, a *Account) (*Seed, error) {
	if _, err := a.PushImage(ctx, SeedRepository, SeedTag); err != nil {
		return nil, err
	}
	role, err := a.CreateRole(ctx, SeedRoleName, []string{ReadOnlyPolicyARN}, nil)
	if err != nil {
		return nil, err
	}
	s := &Seed{Account: a, Image: a.Image(SeedRepository, SeedTag), RoleARN: role}
	return s, s.Break(ctx)
}

// Break sets the Deny policy (the bug).
func (s *Seed) Break(ctx context.Context) error {
	return s.Account.SetRepositoryPolicy(ctx, SeedRepository, SeedPolicy(s.RoleARN, "Deny"))
}

// Fix sets the workshop's fix: the same statement with Effect Allow.
func (s *Seed) Fix(ctx context.Context) error {
	return s.Account.SetRepositoryPolicy(ctx, SeedRepository, SeedPolicy(s.RoleARN, "Allow"))
}

// MissingTagImage is the seed's repository at a tag that does not exist.
func (s *Seed) MissingTagImage() string {
	return strings.TrimSuffix(s.Image, ":"+SeedTag) + ":9.9.9"
}
