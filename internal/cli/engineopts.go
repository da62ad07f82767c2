package cli

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/spf13/pflag"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// EngineOptions configure the preflight engine and its AWS clients. serve
// and check share them, so a check on a laptop and the webhook in a
// cluster reach the same verdict from the same flags.
type EngineOptions struct {
	// Region is the AWS region for STS and IAM calls; ECR calls go to the
	// image's own region. Empty: the SDK's usual environment lookup.
	Region string
	// Context holds the values of the request context that policy
	// conditions read (--context aws:SourceVpce=vpce-0abc), by key. Only a
	// multivalued key has several.
	Context conditionContext
	// AssumeRole holds the role ARN to assume to read a registry in another
	// account, by account (--assume-role ACCOUNT=ROLE_ARN).
	AssumeRole assumeRoles

	// Cache holds how long AWS answers are reused.
	Cache CacheOptions
	// CallTimeout bounds each AWS call, retries included.
	CallTimeout time.Duration
	// MaxConcurrentCalls bounds the AWS calls in flight across admissions.
	MaxConcurrentCalls int
	// MaxAttempts bounds each AWS call's tries (the first included).
	MaxAttempts int
	// CallsPerSecond paces AWS calls; zero leaves them unpaced.
	CallsPerSecond float64
	// LifecycleWarnDays is how many days ahead lifecycle expiry is
	// warned about; zero turns prediction off.
	LifecycleWarnDays int
	// LifecycleWarnPushes is how few further pushes before a count rule
	// expires an image are warned about.
	LifecycleWarnPushes int

	rejected rejectedValues
}

// CacheOptions say how long each kind of answer is reused, 0 turning that
// cache off. They trade freshness for speed and for staying under AWS's API
// rate limits.
type CacheOptions struct {
	ImageByDigest time.Duration
	ImageByTag    time.Duration
	NotFound      time.Duration
	Policy        time.Duration
	// Result is how long a whole "pullable" or "skipped" answer is reused.
	// Not-pullable answers are never reused: they are re-verified.
	Result time.Duration
	// Reverify is how old an answer a rejection's re-verification may
	// reuse: at most one fresh AWS call per deciding lookup per interval.
	Reverify time.Duration
}

// NewEngineOptions returns EngineOptions with the defaults.
func NewEngineOptions() EngineOptions {
	ttl := awsclient.DefaultTTLs()
	retry := awsclient.DefaultRetryOptions()
	return EngineOptions{
		Cache: CacheOptions{
			ImageByDigest: ttl.ImageByDigest, ImageByTag: ttl.ImageByTag, NotFound: ttl.NotFound, Policy: ttl.Policy,
			Result: preflight.DefaultResultTTL, Reverify: awsclient.DefaultFreshInterval,
		},
		MaxConcurrentCalls:  awsclient.DefaultMaxConcurrentCalls,
		CallTimeout:         awsclient.DefaultCallTimeout,
		MaxAttempts:         retry.MaxAttempts,
		LifecycleWarnDays:   int(preflight.DefaultLifecycleWarnWithin / (24 * time.Hour)),
		LifecycleWarnPushes: preflight.DefaultLifecycleWarnPushes,
	}
}

// cacheOff ends the help of the --cache-ttl-* flags.
const cacheOff = "; 0 turns the cache off"

// AddFlags adds the engine flags to fs.
func (o *EngineOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Region, "region", o.Region,
		"AWS region for STS and IAM calls (default: from the environment); ECR calls use each image's region")
	o.rejected.varP(fs, &o.Context, "context", "",
		"request context KEY=VALUE that policy conditions read, e.g. aws:SourceVpce=vpce-0abc (repeatable)")
	o.rejected.varP(fs, &o.AssumeRole, "assume-role", "",
		"ACCOUNT=ROLE_ARN to assume for reading registries in another account (repeatable)")
	fs.DurationVar(&o.Cache.ImageByDigest, "cache-ttl-image-digest", o.Cache.ImageByDigest,
		"reuse an image found by digest this long (digests are immutable; only deletion changes the answer)"+cacheOff)
	fs.DurationVar(&o.Cache.ImageByTag, "cache-ttl-image-tag", o.Cache.ImageByTag,
		"reuse an image found by tag this long (tags move)"+cacheOff)
	fs.DurationVar(&o.Cache.NotFound, "cache-ttl-not-found", o.Cache.NotFound,
		"reuse a not-found answer (image, repository, policy, role) this long"+cacheOff)
	fs.DurationVar(&o.Cache.Policy, "cache-ttl-policy", o.Cache.Policy,
		"reuse repository, registry and role policies this long"+cacheOff)
	fs.DurationVar(&o.Cache.Result, "cache-ttl-result", o.Cache.Result,
		"reuse a whole pullable or skipped answer this long (not-pullable answers are always re-verified)"+cacheOff)
	fs.DurationVar(&o.Cache.Reverify, "reverify-interval", o.Cache.Reverify,
		"re-verify a rejection with fresh AWS data at most this often per deciding lookup (a fix is seen on the first try after it); 0 re-verifies every rejection")
	fs.IntVar(&o.MaxConcurrentCalls, "aws-max-concurrent-calls", o.MaxConcurrentCalls,
		"AWS calls in flight at once, across all admissions (calls that outlive an admission finish to warm the cache)")
	fs.DurationVar(&o.CallTimeout, "aws-call-timeout", o.CallTimeout,
		"give up on one AWS call (retries included) after this long")
	fs.IntVar(&o.MaxAttempts, "aws-max-attempts", o.MaxAttempts,
		"tries per AWS call, the first included (fail fast: an admission cannot wait on backoff)")
	fs.Float64Var(&o.CallsPerSecond, "aws-calls-per-second", o.CallsPerSecond,
		"pace AWS calls to at most this many per second across everything (0: unpaced)")
	fs.IntVar(&o.LifecycleWarnDays, "lifecycle-warn-days", o.LifecycleWarnDays,
		"warn (ImageExpiring) when a repository's lifecycle rule will expire or archive an image within this many days; 0 turns lifecycle prediction off (ecr:GetLifecyclePolicy)")
	fs.IntVar(&o.LifecycleWarnPushes, "lifecycle-warn-pushes", o.LifecycleWarnPushes,
		"warn when an imageCountMoreThan rule will expire an image after this many more pushes or fewer")
}

var regionPattern = regexp.MustCompile(`^[a-z]{2,5}(-[a-z]+)+-\d+$`)

// Validate checks every engine flag and reports all problems at once.
func (o *EngineOptions) Validate() error {
	errs := slices.Clone(o.rejected)
	if o.Region != "" && !regionPattern.MatchString(o.Region) {
		errs = append(errs, fmt.Errorf("--region %q is not an AWS region (e.g. us-west-2)", o.Region))
	}
	for name, d := range map[string]time.Duration{
		"--cache-ttl-image-digest": o.Cache.ImageByDigest, "--cache-ttl-image-tag": o.Cache.ImageByTag,
		"--cache-ttl-not-found": o.Cache.NotFound, "--cache-ttl-policy": o.Cache.Policy, "--cache-ttl-result": o.Cache.Result,
		"--reverify-interval": o.Cache.Reverify,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %s: must not be negative (0 turns the cache off)", name, d))
		}
	}
	if o.MaxConcurrentCalls < 1 {
		errs = append(errs, fmt.Errorf("--aws-max-concurrent-calls %d: must be positive", o.MaxConcurrentCalls))
	}
	if o.CallTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--aws-call-timeout %s: must be positive", o.CallTimeout))
	}
	if o.LifecycleWarnDays < 0 || o.LifecycleWarnDays > 3650 {
		errs = append(errs, fmt.Errorf("--lifecycle-warn-days %d: want 0 to 3650", o.LifecycleWarnDays))
	}
	if o.LifecycleWarnPushes < 1 {
		errs = append(errs, fmt.Errorf("--lifecycle-warn-pushes %d: must be at least 1", o.LifecycleWarnPushes))
	}
	if o.CallsPerSecond < 0 {
		errs = append(errs, fmt.Errorf("--aws-calls-per-second %g: must not be negative", o.CallsPerSecond))
	}
	if o.MaxAttempts < 1 || o.MaxAttempts > 10 {
		errs = append(errs, fmt.Errorf("--aws-max-attempts %d: want 1 to 10", o.MaxAttempts))
	}
	return errors.Join(errs...)
}

// freshInterval translates --reverify-interval (0: re-verify every
// rejection) into awsclient's convention (negative: never reuse).
func (c CacheOptions) freshInterval() time.Duration {
	if c.Reverify == 0 {
		return -1
	}
	return c.Reverify
}

// ttls translates the cache flags, where 0 turns a cache off, into the
// convention of awsclient and preflight, where 0 takes the default and a
// negative TTL turns it off: the awsclient TTLs and the preflight result TTL.
func (c CacheOptions) ttls() (awsclient.TTLs, time.Duration) {
	off := func(d time.Duration) time.Duration {
		if d == 0 {
			return -1
		}
		return d
	}
	return awsclient.TTLs{ImageByDigest: off(c.ImageByDigest), ImageByTag: off(c.ImageByTag), NotFound: off(c.NotFound), Policy: off(c.Policy)},
		off(c.Result)
}
