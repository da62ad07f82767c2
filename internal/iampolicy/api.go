package iampolicy

import "time"

// This file is the package's public contract: the preflight engine, the
// `policy eval` CLI and the test corpus all build on these names.

// Outcome is the three-valued (plus explicit/implicit deny) result of an
// authorization decision.
type Outcome string

const (
	Allow        Outcome = "allow"
	ExplicitDeny Outcome = "explicit-deny"
	ImplicitDeny Outcome = "implicit-deny"
	// Undetermined: the outcome depends on condition keys whose values are
	// not known (Decision.UnknownKeys). Never a guess.
	Undetermined Outcome = "undetermined"
)

// Source names the kind of policy a statement came from.
type Source string

const (
	SourceResource Source = "resource"
	SourceIdentity Source = "identity"
	SourceBoundary Source = "boundary"
	SourceSCP      Source = "scp"
	SourceRCP      Source = "rcp"
)

// NamedPolicy is a parsed policy document with the name that explanations
// use for it (a managed policy's name or ARN, an inline policy's name,
// "repository policy of app", ...).
type NamedPolicy struct {
	Name   string
	Policy *Policy
}

// PolicySet holds every policy that takes part in one decision.
type PolicySet struct {
	// Identity policies attached to the principal (managed and inline).
	Identity []NamedPolicy
	// Boundary is the principal's permissions boundary, if any.
	Boundary *NamedPolicy
	// Resource is the resource-based policy (e.g. an ECR repository policy).
	Resource *NamedPolicy
	// SCPs are the service control policies that apply to the principal's
	// account, one slice per level of the organization (root, each OU,
	// account). Every level must allow. Nil means "not supplied".
	SCPs [][]NamedPolicy
	// RCPs are resource control policies for the resource's account, one
	// slice per level, like SCPs.
	RCPs [][]NamedPolicy
}

// Request is the question asked: may Principal perform Action on Resource?
type Request struct {
	// Principal is an IAM role ARN (arn:aws:iam::ACCT:role/path/NAME) or a
	// role session ARN (arn:aws:sts::ACCT:assumed-role/NAME/SESSION). Other
	// IAM ARNs (users, account roots) are accepted as well.
	Principal string
	// Action is service:Action, e.g. ecr:BatchGetImage.
	Action string
	// Resource is the resource ARN, or "*".
	Resource string
	// Context holds request context values supplied by the caller. Keys are
	// matched case-insensitively. A nil slice value means "known to be
	// absent". Keys the evaluator derives itself (principal and resource
	// keys) are filled in unless given here.
	Context map[string][]string
	// PrincipalTagsKnown says Context holds every aws:PrincipalTag/ key the
	// principal has (its role's tags were read), so any other is absent
	// rather than unknown.
	PrincipalTagsKnown bool
	// Now is the request time (aws:CurrentTime, aws:EpochTime). Zero means
	// unknown: date conditions on those keys are then undetermined.
	Now time.Time
}

// Reason is one statement that decided the outcome.
type Reason struct {
	Policy Source `json:"policy"`
	Name   string `json:"name"`
	// Statement is the statement's Sid, or "#N" (zero-based index) when it
	// has none.
	Statement string `json:"statement"`
	Effect    string `json:"effect"`
}

// Decision is the evaluator's answer with its explanation.
type Decision struct {
	Decision Outcome  `json:"decision"`
	Reasons  []Reason `json:"reasons"`
	// UnknownKeys are the condition keys (as spelled in the policy) whose
	// unknown values made the decision undetermined, sorted, de-duplicated.
	UnknownKeys []string `json:"unknownKeys"`
	// Missing names the policy types that would need a matching Allow for
	// an implicit deny to become an allow (e.g. "resource" when a
	// cross-account resource policy does not grant the principal).
	Missing []Source `json:"missing,omitempty"`
	// ConditionFailures are, for an implicit deny, the Allow statements
	// that match the request's action, resource and principal but whose
	// Condition does not hold: the grants that were meant to apply.
	ConditionFailures []ConditionFailure `json:"conditionFailures,omitempty"`
}

// ConditionFailure is an Allow statement kept from applying by one of its
// conditions.
type ConditionFailure struct {
	Reason
	// Key is the condition key (as spelled in the policy) of the first
	// condition that does not hold.
	Key string `json:"key"`
}
