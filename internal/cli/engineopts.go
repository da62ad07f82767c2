package cli

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
	"github.com/ecr-preflight/ecr-preflight/internal/imageref"
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

	// Cache holds how long AWS answers are reused.
	Cache CacheOptions
	// CallTimeout bounds each AWS call, retries included.
	CallTimeout time.Duration
	// MaxAttempts bounds each AWS call's tries (the first included).
	MaxAttempts int
}

// CacheOptions say how long each kind of answer is reused. They trade
// freshness for speed and for staying under AWS's API rate limits.
type CacheOptions struct {
	ImageByDigest time.Duration
	ImageByTag    time.Duration
	NotFound      time.Duration
	Policy        time.Duration
	// Result is how long a whole "pullable" or "skipped" answer is reused.
	// Not-pullable answers are never reused: they are re-verified.
	Result time.Duration
}

// NewEngineOptions returns EngineOptions with the defaults.
func NewEngineOptions() EngineOptions {
	ttl := awsclient.DefaultTTLs()
	retry := awsclient.DefaultRetryOptions()
	return EngineOptions{
		Cache: CacheOptions{
			ImageByDigest: ttl.ImageByDigest, ImageByTag: ttl.ImageByTag, NotFound: ttl.NotFound, Policy: ttl.Policy,
			Result: 30 * time.Second,
		},
		CallTimeout: 2 * time.Second,
		MaxAttempts: retry.MaxAttempts,
	}
}

// AddFlags adds the engine flags to fs.
func (o *EngineOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Region, "region", o.Region,
		"AWS region for STS and IAM calls (default: from the environment); ECR calls use each image's region")
	fs.StringArrayVar(&o.Context, "context", o.Context,
		"request context KEY=VALUE that policy conditions read, e.g. aws:SourceVpce=vpce-0abc (repeatable)")
	fs.StringArrayVar(&o.AssumeRole, "assume-role", o.AssumeRole,
		"ACCOUNT=ROLE_ARN to assume for reading registries in another account (repeatable)")
	fs.DurationVar(&o.Cache.ImageByDigest, "cache-ttl-image-digest", o.Cache.ImageByDigest,
		"reuse an image found by digest this long (digests are immutable; only deletion changes the answer)")
	fs.DurationVar(&o.Cache.ImageByTag, "cache-ttl-image-tag", o.Cache.ImageByTag,
		"reuse an image found by tag this long (tags move)")
	fs.DurationVar(&o.Cache.NotFound, "cache-ttl-not-found", o.Cache.NotFound,
		"reuse a not-found answer (image, repository, policy, role) this long")
	fs.DurationVar(&o.Cache.Policy, "cache-ttl-policy", o.Cache.Policy,
		"reuse repository, registry and role policies this long")
	fs.DurationVar(&o.Cache.Result, "cache-ttl-result", o.Cache.Result,
		"reuse a whole pullable or skipped answer this long (not-pullable answers are always re-verified)")
	fs.DurationVar(&o.CallTimeout, "aws-call-timeout", o.CallTimeout,
		"give up on one AWS call (retries included) after this long")
	fs.IntVar(&o.MaxAttempts, "aws-max-attempts", o.MaxAttempts,
		"tries per AWS call, the first included (fail fast: an admission cannot wait on backoff)")
}

var (
	// roleARNPattern matches IAM role ARNs in every partition, paths
	// included (arn:aws:iam::123456789012:role/path/Name). Accounts of 1-12
	// digits pass, as everywhere in ecr-preflight (the seed's 1234567890).
	roleARNPattern = regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::\d{1,12}:role/([\x21-\x7e]+/)*[\w+=,.@-]{1,64}$`)
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
	contextKeys := map[string]bool{}
	for _, kv := range o.Context {
		k, _, ok := strings.Cut(kv, "=")
		switch lower := strings.ToLower(k); {
		case !ok || !contextKeyPattern.MatchString(k):
			errs = append(errs, fmt.Errorf("--context %q: want KEY=VALUE with a condition key such as aws:SourceVpce", kv))
		case contextKeys[lower] && !iampolicy.IsMultivaluedKey(k):
			// A request carries one value of a single-valued key; two would
			// make conditions on it hold when either value does.
			errs = append(errs, fmt.Errorf("--context %s given twice: it is single-valued (only multivalued keys such as aws:PrincipalOrgPaths repeat)", k))
		default:
			contextKeys[lower] = true
		}
	}
	seen := map[string]bool{}
	for _, kv := range o.AssumeRole {
		account, arn, ok := strings.Cut(kv, "=")
		switch {
		case !ok || !imageref.IsAccountID(account):
			errs = append(errs, fmt.Errorf("--assume-role %q: want ACCOUNT=ROLE_ARN with an account ID", kv))
		case seen[account]:
			errs = append(errs, fmt.Errorf("--assume-role: account %s given twice", account))
		default:
			if err := validRoleARN(arn); err != nil {
				errs = append(errs, fmt.Errorf("--assume-role %s: %w", account, err))
			} else if roleAccount := strings.Split(arn, ":")[4]; roleAccount != account {
				// The registry's own policy and settings are readable only
				// from inside its account.
				errs = append(errs, fmt.Errorf("--assume-role %s: role %s is in account %s, want a role in the registry's account", account, arn, roleAccount))
			}
		}
		seen[account] = true
	}
	for name, d := range map[string]time.Duration{
		"--cache-ttl-image-digest": o.Cache.ImageByDigest, "--cache-ttl-image-tag": o.Cache.ImageByTag,
		"--cache-ttl-not-found": o.Cache.NotFound, "--cache-ttl-policy": o.Cache.Policy, "--cache-ttl-result": o.Cache.Result,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %s: must not be negative (0 turns the cache off)", name, d))
		}
	}
	if o.CallTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--aws-call-timeout %s: must be positive", o.CallTimeout))
	}
	if o.MaxAttempts < 1 || o.MaxAttempts > 10 {
		errs = append(errs, fmt.Errorf("--aws-max-attempts %d: want 1 to 10", o.MaxAttempts))
	}
	return errors.Join(errs...)
}

// ttls turns the flags into awsclient TTLs; 0 means "off", which awsclient
// spells as a negative TTL.
func (c CacheOptions) ttls() awsclient.TTLs {
	off := func(d time.Duration) time.Duration {
		if d == 0 {
			return -1
		}
		return d
	}
	return awsclient.TTLs{ImageByDigest: off(c.ImageByDigest), ImageByTag: off(c.ImageByTag), NotFound: off(c.NotFound), Policy: off(c.Policy)}
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
