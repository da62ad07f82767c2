package awsclient

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// ECRAPI is the part of the ECR API the preflight reads. Its methods have the
// exact signatures of *ecr.Client.
//
// DescribeImages is used to check existence rather than BatchGetImage, which
// is the pull itself and may update the image's last-recorded pull time that
// lifecycle rules read. BatchGetImage and GetDownloadUrlForLayer serve only
// the platform check, which needs an index's entries or a config blob.
type ECRAPI interface {
	DescribeImages(ctx context.Context, params *ecr.DescribeImagesInput, optFns ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
	BatchGetImage(ctx context.Context, params *ecr.BatchGetImageInput, optFns ...func(*ecr.Options)) (*ecr.BatchGetImageOutput, error)
	GetDownloadUrlForLayer(ctx context.Context, params *ecr.GetDownloadUrlForLayerInput, optFns ...func(*ecr.Options)) (*ecr.GetDownloadUrlForLayerOutput, error)
	GetRepositoryPolicy(ctx context.Context, params *ecr.GetRepositoryPolicyInput, optFns ...func(*ecr.Options)) (*ecr.GetRepositoryPolicyOutput, error)
	GetRegistryPolicy(ctx context.Context, params *ecr.GetRegistryPolicyInput, optFns ...func(*ecr.Options)) (*ecr.GetRegistryPolicyOutput, error)
	GetAccountSetting(ctx context.Context, params *ecr.GetAccountSettingInput, optFns ...func(*ecr.Options)) (*ecr.GetAccountSettingOutput, error)
	DescribePullThroughCacheRules(ctx context.Context, params *ecr.DescribePullThroughCacheRulesInput, optFns ...func(*ecr.Options)) (*ecr.DescribePullThroughCacheRulesOutput, error)
	GetLifecyclePolicy(ctx context.Context, params *ecr.GetLifecyclePolicyInput, optFns ...func(*ecr.Options)) (*ecr.GetLifecyclePolicyOutput, error)
}

// IAMAPI is the part of the IAM API needed to read a role's policies. Its
// methods have the exact signatures of *iam.Client.
type IAMAPI interface {
	GetRole(ctx context.Context, params *iam.GetRoleInput, optFns ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	ListAttachedRolePolicies(ctx context.Context, params *iam.ListAttachedRolePoliciesInput, optFns ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	GetPolicy(ctx context.Context, params *iam.GetPolicyInput, optFns ...func(*iam.Options)) (*iam.GetPolicyOutput, error)
	GetPolicyVersion(ctx context.Context, params *iam.GetPolicyVersionInput, optFns ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error)
	ListRolePolicies(ctx context.Context, params *iam.ListRolePoliciesInput, optFns ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	GetRolePolicy(ctx context.Context, params *iam.GetRolePolicyInput, optFns ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	ListRoleTags(ctx context.Context, params *iam.ListRoleTagsInput, optFns ...func(*iam.Options)) (*iam.ListRoleTagsOutput, error)
}

// STSAPI is the part of the STS API used for cross-account credentials and
// to learn which account a set of credentials acts as. Its methods have the
// exact signatures of *sts.Client.
type STSAPI interface {
	AssumeRole(ctx context.Context, params *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
	GetCallerIdentity(ctx context.Context, params *sts.GetCallerIdentityInput, optFns ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// The real SDK clients must satisfy the interfaces: if an SDK upgrade changes
// a signature, the build breaks here rather than in the wiring.
var (
	_ ECRAPI = (*ecr.Client)(nil)
	_ IAMAPI = (*iam.Client)(nil)
	_ STSAPI = (*sts.Client)(nil)
)

// Clients hands out the client to use for a region and an account. Account
// is the account that owns the resource (the registry ID, or the account in
// a role ARN): when credentials for that account are configured (an assumed
// role), its clients use them; otherwise the default credentials.
// Implementations must be safe for concurrent use and should return the same
// client for the same arguments. Factory is the real implementation.
type Clients interface {
	ECR(region, account string) (ECRAPI, error)
	IAM(account string) (IAMAPI, error)
	STS(account string) (STSAPI, error)
}
