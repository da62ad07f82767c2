// Package iampolicy parses AWS IAM policy documents and evaluates
// authorization requests against them following AWS's documented policy
// evaluation logic: explicit deny first, then organization policies,
// resource, identity and boundary policies, with same-account and
// cross-account rules. Evaluation is three-valued: a statement whose outcome
// depends on a condition key that is unknown at evaluation time makes the
// decision Undetermined instead of guessing.
//
// The package is pure Go with no I/O; it knows nothing of ECR beyond strings.
package iampolicy
