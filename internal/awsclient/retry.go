package awsclient

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// RetryOptions bound the SDK's retries. The SDK default (3 attempts, a
// throttled retry waiting up to 20 s, and retry-quota tokens) suits batch
// jobs; an admission webhook has a few seconds in total, so it must fail fast
// and let the answer be "could not check".
type RetryOptions struct {
	// MaxAttempts counts the first try: 2 means one retry.
	MaxAttempts int
	// MaxBackoff caps the wait before a retry.
	MaxBackoff time.Duration
}

// DefaultRetryOptions: one retry after at most 100 ms. One retry absorbs a
// dropped connection or a single throttle; more would only spend the
// webhook's deadline.
func DefaultRetryOptions() RetryOptions {
	return RetryOptions{MaxAttempts: 2, MaxBackoff: 100 * time.Millisecond}
}

// NewRetryer returns a retryer constructor for aws.Config.Retryer built from
// the SDK's standard retryer with o's bounds. Zero fields take the defaults.
// The client-side retry quota (token bucket) is disabled: with one retry per
// call it adds nothing but a way to fail healthy calls after an outage.
func NewRetryer(o RetryOptions) func() aws.Retryer {
	d := DefaultRetryOptions()
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = d.MaxAttempts
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = d.MaxBackoff
	}
	return func() aws.Retryer {
		return retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = o.MaxAttempts
			so.MaxBackoff = o.MaxBackoff
			so.RateLimiter = ratelimit.None
		})
	}
}
