package harness

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/ecr-preflight/ecr-preflight/internal/testutil/awsseed"
)

// RepositoryPolicy reads the seed repository's policy from moto, as
// `aws ecr get-repository-policy` would.
func (e *Env) RepositoryPolicy(ctx context.Context) (string, error) {
	out, err := e.Seed.Account.ECR.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{
		RepositoryName: aws.String(awsseed.SeedRepository),
	})
	if err != nil {
		return "", fmt.Errorf("getting the policy of %s: %w", awsseed.SeedRepository, err)
	}
	return aws.ToString(out.PolicyText), nil
}
