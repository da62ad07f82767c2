// Package lifecycle parses Amazon ECR lifecycle policies and predicts what
// they will do to each image of a repository: which rule expires or archives
// it, and when (a date for the since* count types, a number of further pushes
// for imageCountMoreThan).
//
// Parse validates a policy the way PutLifecyclePolicy documents it, and
// Evaluate follows the "Lifecycle policy evaluation rules" of the Amazon ECR
// User Guide ("Automate the cleanup of images by using lifecycle policies in
// Amazon ECR", https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html):
//
//   - "All rules are evaluated at the same time, regardless of rule priority.
//     After all rules are evaluated, they are then applied based on rule
//     priority" (lowest rulePriority first).
//   - "An image is expired or archived by exactly one or zero rules."
//   - "An image that matches the tagging requirements of a rule cannot be
//     expired or archived by a rule with a lower priority."
//   - "Rules can never mark images that are marked by higher priority rules,
//     but can still identify them as if they haven't been expired or
//     archived": a lower rule's imageCountMoreThan still counts them.
//
// The property reference is "Lifecycle policy properties in Amazon ECR"
// (https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html)
// and the golden tests reproduce every policy of "Examples of lifecycle
// policies in Amazon ECR"
// (https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_examples.html).
//
// The package is pure Go with no I/O: the caller brings the policy text
// (GetLifecyclePolicy), the images (DescribeImages) and the clock.
package lifecycle
