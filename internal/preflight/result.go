package preflight

import "time"

// Verdict is the engine's answer for one image: will a kubelet running as
// one of the candidate roles pull it?
type Verdict string

const (
	// VerdictPullable: the image exists and every candidate role may pull it.
	VerdictPullable Verdict = "pullable"
	// VerdictNotPullable: something definite stands against the pull
	// (missing image or repository, an explicit or implicit deny).
	VerdictNotPullable Verdict = "not-pullable"
	// VerdictUnknown: nothing definite against the pull, but something could
	// not be looked up or decided. "Could not check" is never "cannot pull".
	VerdictUnknown Verdict = "unknown"
	// VerdictSkipped: the image is not in a private ECR registry.
	VerdictSkipped Verdict = "skipped"
	// VerdictPartlyPullable: some candidate node pools can pull the image
	// and some cannot, so pods pull or fail depending on where they are
	// scheduled. Only answers about node pools (Engine.CheckPools) have it.
	VerdictPartlyPullable Verdict = "partly-pullable"
)

// Code is a stable, machine-readable finding identifier.
type Code string

// Finding codes. They are part of the CLI's JSON output and the webhook's
// messages: never rename one.
const (
	CodeImageNotFound          Code = "ImageNotFound"
	CodeRepositoryNotFound     Code = "RepositoryNotFound"
	CodeRepositoryPolicyDenies Code = "RepositoryPolicyDenies"
	CodeRegistryPolicyDenies   Code = "RegistryPolicyDenies"
	CodeIdentityPolicyDenies   Code = "IdentityPolicyDenies"
	CodePullNotAllowed         Code = "PullNotAllowed"
	CodeAuthTokenNotAllowed    Code = "AuthTokenNotAllowed"
	CodeCrossAccountNotAllowed Code = "CrossAccountNotAllowed"
	CodeUndetermined           Code = "Undetermined"
	CodeLookupFailed           Code = "LookupFailed"
	CodeInvalidImageReference  Code = "InvalidImageReference"
	// CodeImageArchived: the image is in ECR's archive tier (error), or
	// being restored from it (warning); it cannot be pulled until ACTIVE.
	CodeImageArchived Code = "ImageArchived"
	// CodeImageImportedOnPull: the image is not in a pull-through cache
	// repository yet and ECR imports it from the upstream on the first pull
	// (a warning: the upstream is not checked).
	CodeImageImportedOnPull Code = "ImageImportedOnPull"
	// CodePullThroughCacheNotAllowed: the node role may not have ECR import
	// the image from the upstream (ecr:BatchImportUpstreamImage) or create
	// the cache repository (ecr:CreateRepository).
	CodePullThroughCacheNotAllowed Code = "PullThroughCacheNotAllowed"
	// CodePlatformNotAvailable: the image has no variant for a candidate
	// node pool's platform (os, architecture, variant, Windows build):
	// containerd fails with "no match for platform in manifest", or a
	// single-platform image of the wrong architecture with "exec format
	// error". An error when the pool runs none of the image's platforms, a
	// warning when only some of its nodes cannot run it.
	CodePlatformNotAvailable Code = "PlatformNotAvailable"
	// CodeImageExpiring: a lifecycle rule of the repository will expire
	// or archive the image soon: on a date within the warning window
	// (sinceImagePushed, sinceImagePulled, sinceImageTransitioned), or
	// after a few more pushes (imageCountMoreThan). A warning that does not
	// change the verdict: the image pulls today.
	CodeImageExpiring Code = "ImageExpiring"
	// CodeImageExpired: a lifecycle rule already selects the image; ECR
	// expires or archives it shortly (typically within 24 hours). A warning
	// that does not change the verdict: the image still pulls now.
	CodeImageExpired Code = "ImageExpired"
	// CodeSkipped explains why an image was not checked (not a private ECR
	// image). Its severity is always info.
	CodeSkipped Code = "Skipped"
)

// Severity says whether a finding stands against the pull (error) or only
// leaves it undecided (warning).
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

// Finding is one reason behind a verdict: what happened, as data, with the
// engine's own words for it. Renderers (the CLI's text and JSON, the
// webhook's warnings and denial, reports) compose from the fields; none
// needs to parse Message.
type Finding struct {
	Code     Code     `json:"code"`
	Severity Severity `json:"severity"`
	// Role is the candidate node role ARN the finding is about, if any.
	Role string `json:"role,omitempty"`
	// Action is the ECR action in question, e.g. ecr:BatchGetImage: the
	// first of Actions.
	Action string `json:"action,omitempty"`
	// Actions are all the actions that fail for the same cause, when there
	// are several (ecr:BatchGetImage and ecr:GetDownloadUrlForLayer denied by
	// one statement).
	Actions []string `json:"actions,omitempty"`
	// Statement is the deciding policy statement: its Sid, or "#index"
	// (zero-based) when it has none.
	Statement string `json:"statement,omitempty"`
	// Policy is the policy that decided, when one did.
	Policy *PolicyRef `json:"policy,omitempty"`
	// ConditionKeys are the keys of the condition that kept a grant from
	// applying (e.g. aws:PrincipalOrgID).
	ConditionKeys []string `json:"conditionKeys,omitempty"`
	// Repository is the repository the finding is about, if any.
	Repository *RepositoryRef `json:"repository,omitempty"`
	// Platforms are the platforms (as "linux/arm64") the image has no
	// variant for (PlatformNotAvailable).
	Platforms []string `json:"platforms,omitempty"`
	// Lifecycle is the lifecycle rule an ImageExpiring or ImageExpired
	// finding is about.
	Lifecycle *LifecycleRef `json:"lifecycle,omitempty"`
	// Pool is the node pool the finding is about, when the check was made
	// for node pools and the pool is more than a bare --node-role-arn.
	Pool *PoolRef `json:"pool,omitempty"`
	// Message is one line saying what happened. It names the role, the
	// statement and the action(s) whenever those fields are set, and never
	// the image: the Result it belongs to names that.
	Message string `json:"message"`
	// Fix is a concrete next step for the user.
	Fix string `json:"fix,omitempty"`
	// Command is the AWS CLI command (program and arguments) of the fix or
	// of its check, when it has one.
	Command []string `json:"command,omitempty"`
	// UnknownKeys lists the condition keys that left the decision open.
	UnknownKeys []string `json:"unknownKeys,omitempty"`
}

// PolicyKind says which kind of policy decided.
type PolicyKind string

// Policy kinds, as findings name them.
const (
	PolicyIdentity   PolicyKind = "identity"
	PolicyBoundary   PolicyKind = "permissions-boundary"
	PolicyRepository PolicyKind = "repository"
	PolicyRegistry   PolicyKind = "registry"
	PolicySCP        PolicyKind = "service-control"
	PolicyRCP        PolicyKind = "resource-control"
)

// PolicyRef names a policy: an identity policy's name (managed or inline),
// "the repository policy of NAME", "the registry policy of account N".
type PolicyRef struct {
	Kind PolicyKind `json:"kind"`
	Name string     `json:"name"`
}

// RepositoryRef names an ECR repository.
type RepositoryRef struct {
	Name    string `json:"name"`
	Account string `json:"account"`
	Region  string `json:"region"`
}

// LifecycleRef says which lifecycle rule will act on an image, and when.
type LifecycleRef struct {
	// Priority is the rule's rulePriority.
	Priority int `json:"rulePriority"`
	// Action is the rule's action: "expire", or "transition" (to archive).
	Action string `json:"action"`
	// At is when an age rule (sinceImagePushed, sinceImagePulled,
	// sinceImageTransitioned) selects the image; absent when it already
	// does or for a count rule.
	At *time.Time `json:"at,omitempty"`
	// AfterPushes is how many more pushes an imageCountMoreThan rule
	// matches until it selects the image.
	AfterPushes int `json:"afterPushes,omitempty"`
}

// PoolRef names a node pool: its name and kind (nodepools.Kind, e.g.
// "managed-node-group", "karpenter-nodepool", "fargate-profile").
type PoolRef struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// PoolVerdict is the answer for one candidate node pool.
type PoolVerdict struct {
	PoolRef
	// Role is the IAM role the pool pulls as.
	Role string `json:"role,omitempty"`
	// Platforms are the pool's platforms the pod template can run on
	// ("linux/arm64"); empty when unknown.
	Platforms []string `json:"platforms,omitempty"`
	Verdict   Verdict  `json:"verdict"`
}

// Result is the engine's answer for one image reference.
type Result struct {
	Image    string    `json:"image"`
	Verdict  Verdict   `json:"verdict"`
	Findings []Finding `json:"findings"`
	// Pools are the answers per candidate node pool, for a check made for
	// node pools (Engine.CheckPools).
	Pools []PoolVerdict `json:"pools,omitempty"`
}
