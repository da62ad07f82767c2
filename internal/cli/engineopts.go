package cli

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/pflag"
)

// EngineOptions configure the preflight engine and its AWS clients. serve
// and check share them, so a check on a laptop and the webhook in a
// cluster reach the same verdict from the same flags.
type EngineOptions struct {
	// Region is the AWS region for STS and IAM calls; ECR calls go to the
	// image's own region. Empty: the SDK's usual environment lookup.
	Region string
	// Context holds KEY=VALUE values for the request context that policy
	// conditions read (aws:SourceVpce=vpce-0abc, aws:SourceVpc=vpc-1). A
	// key given twice has several values.
	Context []string
	// AssumeRole holds ACCOUNT=ROLE_ARN: the role to assume to read a
	// registry in another account.
	AssumeRole []string
}

// AddFlags adds the engine flags to fs.
func (o *EngineOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Region, "region", o.Region,
		"AWS region for STS and IAM calls (default: from the environment); ECR calls use each image's region")
	fs.StringArrayVar(&o.Context, "context", o.Context,
		"request context KEY=VALUE that policy conditions read, e.g. aws:SourceVpce=vpce-0abc (repeatable)")
	fs.StringArrayVar(&o.AssumeRole, "assume-role", o.AssumeRole,
		"ACCOUNT=ROLE_ARN to assume for reading registries in another account (repeatable)")
}

var (
	// roleARNPattern matches IAM role ARNs in every partition, paths
	// included (arn:aws:iam::123456789012:role/path/Name). Accounts of 1-12
	// digits pass, as everywhere in ecr-preflight (the seed's 1234567890).
	roleARNPattern = regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::\d{1,12}:role/([\x21-\x7e]+/)*[\w+=,.@-]{1,64}$`)
	accountPattern = regexp.MustCompile(`^\d{1,12}$`)
	regionPattern  = regexp.MustCompile(`^[a-z]{2,5}(-[a-z]+)+-\d+$`)
	// contextKeyPattern is a condition key: service prefix, colon, name
	// (which may carry a tag key after a slash).
	contextKeyPattern = regexp.MustCompile(`^[a-zA-Z0-9-]+:[\x21-\x7e]+$`)
)

// validRoleARN reports whether s is an IAM role ARN.
func validRoleARN(s string) error {
	if !roleARNPattern.MatchString(s) {
		return fmt.Errorf("%q is not an IAM role ARN (want arn:aws:iam::123456789012:role/Name)", s)
	}
	return nil
}

// Validate checks every engine flag and reports all problems at once.
func (o *EngineOptions) Validate() error {
	var errs []error
	if o.Region != "" && !regionPattern.MatchString(o.Region) {
		errs = append(errs, fmt.Errorf("--region %q is not an AWS region (e.g. us-west-2)", o.Region))
	}
	for _, kv := range o.Context {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || !contextKeyPattern.MatchString(k) {
			errs = append(errs, fmt.Errorf("--context %q: want KEY=VALUE with a condition key such as aws:SourceVpce", kv))
		}
	}
	seen := map[string]bool{}
	for _, kv := range o.AssumeRole {
		account, arn, ok := strings.Cut(kv, "=")
		switch {
		case !ok || !accountPattern.MatchString(account):
			errs = append(errs, fmt.Errorf("--assume-role %q: want ACCOUNT=ROLE_ARN with an account ID", kv))
		case seen[account]:
			errs = append(errs, fmt.Errorf("--assume-role: account %s given twice", account))
		default:
			if err := validRoleARN(arn); err != nil {
				errs = append(errs, fmt.Errorf("--assume-role %s: %w", account, err))
			}
		}
		seen[account] = true
	}
	return errors.Join(errs...)
}

// ConditionContext returns the --context values by key. Call after
// Validate; malformed entries are skipped.
func (o *EngineOptions) ConditionContext() map[string][]string {
	out := map[string][]string{}
	for _, kv := range o.Context {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = append(out[k], v)
		}
	}
	return out
}

// AssumeRoles returns the --assume-role values, role ARN by account. Call
// after Validate; malformed entries are skipped.
func (o *EngineOptions) AssumeRoles() map[string]string {
	out := map[string]string{}
	for _, kv := range o.AssumeRole {
		if account, arn, ok := strings.Cut(kv, "="); ok {
			out[account] = arn
		}
	}
	return out
}
