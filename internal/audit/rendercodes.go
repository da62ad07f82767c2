package audit

import "github.com/ecr-preflight/ecr-preflight/internal/preflight"

// codeText is what a finding code means in general, for Markdown sections
// and SARIF rules; each finding's own Message and Fix say it for one image.
type codeText struct {
	// Short is one sentence: what is wrong.
	Short string
	// Help is one or two sentences: what to do about it in general.
	Help string
}

// codeTexts covers every code preflight makes; ruleFor has words for
// codes added later.
var codeTexts = map[preflight.Code]codeText{
	preflight.CodeImageNotFound: {
		"The image's tag or digest does not exist in its ECR repository.",
		"Push the image, or correct the tag or digest in the workload's pod template.",
	},
	preflight.CodeRepositoryNotFound: {
		"The image's ECR repository does not exist (or is created only by a pull-through cache rule on the first pull).",
		"Correct the repository in the image reference, or create the repository; for a pull-through cache, make sure the upstream has the image.",
	},
	preflight.CodeRepositoryPolicyDenies: {
		"A Deny statement of the repository policy matches the node role's pull.",
		"Remove the node role from the statement, or narrow the statement's actions.",
	},
	preflight.CodeRegistryPolicyDenies: {
		"A Deny statement of the ECR registry policy matches the node role's pull.",
		"Remove the node role from the statement, or narrow the statement's actions.",
	},
	preflight.CodeIdentityPolicyDenies: {
		"A Deny statement of a policy that applies to the node role (an identity policy, its permissions boundary, a service or resource control policy) matches the pull.",
		"Change the statement so that it does not match the pull, or exclude the repository from it.",
	},
	preflight.CodePullNotAllowed: {
		"No policy allows the node role to pull from the repository.",
		"Attach the AWS managed policy AmazonEC2ContainerRegistryPullOnly to the node role, or allow the role in the repository policy.",
	},
	preflight.CodeAuthTokenNotAllowed: {
		"The node role may not get an ECR authorization token (ecr:GetAuthorizationToken), so it cannot pull from any repository.",
		"Allow ecr:GetAuthorizationToken on Resource \"*\" to the node role, as AmazonEC2ContainerRegistryPullOnly does.",
	},
	preflight.CodeCrossAccountNotAllowed: {
		"The repository is in another account and the pull is not granted on both sides.",
		"Allow the node role in the repository policy of the registry's account, and allow the pull in an identity policy of the role.",
	},
	preflight.CodeUndetermined: {
		"Whether the node role may pull depends on values not known when the image was checked.",
		"Configure the missing condition values (--context KEY=VALUE), or check the policy by hand.",
	},
	preflight.CodeLookupFailed: {
		"ecr-preflight could not look something up, so the pull was not fully checked.",
		"Retry; if it persists, grant ecr-preflight the permissions its lookups need (its log has the details).",
	},
	preflight.CodeImageExpiring: {
		"A lifecycle rule of the repository will expire or archive the image soon (on a date, or after a few more pushes).",
		"Pin the workload to an image the rule keeps, or change the rule so that it keeps this one.",
	},
	preflight.CodeImageExpired: {
		"A lifecycle rule of the repository already selects the image: ECR expires or archives it shortly.",
		"Pin the workload to an image the rule keeps, or change the rule so that it keeps this one, before the next pull fails.",
	},
	preflight.CodeInvalidImageReference: {
		"The image reference is not valid.",
		"Write it as REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST].",
	},
	preflight.CodeImageArchived: {
		"The image is in ECR's archive storage class, or being restored from it, and cannot be pulled until it is ACTIVE.",
		"Restore it to the standard storage class (aws ecr update-image-storage-class) and wait until it is ACTIVE.",
	},
	preflight.CodeImageImportedOnPull: {
		"The image is not in its pull-through cache repository yet; ECR imports it from the upstream registry on the first pull.",
		"Make sure the upstream registry has the image.",
	},
	preflight.CodePullThroughCacheNotAllowed: {
		"The node role may not have ECR import the image from the pull-through cache's upstream registry.",
		"Allow the node role ecr:BatchImportUpstreamImage, and ecr:CreateRepository when the cache repository does not exist yet.",
	},
	preflight.CodePlatformNotAvailable: {
		"The image has no variant for the platform (OS, architecture) of a node pool its pods can run on.",
		"Build and push the image for the pool's platforms, or keep the workload's pods off that pool.",
	},
	preflight.CodeSkipped: {
		"The image is not in a private ECR registry, so it was not checked.",
		"Nothing to do: ecr-preflight checks images in private ECR registries only.",
	},
}

// ruleFor is what code means; a code this file does not know yet gets
// generic words.
func ruleFor(code preflight.Code) codeText {
	if t, ok := codeTexts[code]; ok {
		return t
	}
	return codeText{
		Short: "ecr-preflight finding " + string(code) + ".",
		Help:  "Each result's message says what was found and how to fix it.",
	}
}
