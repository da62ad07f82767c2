package webhook

import (
	"errors"
	"fmt"
	"time"
)

// Defaults for Options fields left zero.
const (
	// DefaultTimeout keeps the whole admission well under the API server's
	// webhook timeout (10s by default, often set to a few seconds), so a
	// slow AWS never turns into a failed or hung kubectl apply.
	DefaultTimeout = 2 * time.Second
	// DefaultMaxConcurrent bounds admissions checking at once; beyond it,
	// requests wait briefly and are then allowed unverified.
	DefaultMaxConcurrent = 64
	// DefaultMaxImages bounds the distinct images checked in one object:
	// far above any real pod template, far below what an adversarial
	// object could ask of AWS.
	DefaultMaxImages = 100
	// maxQueueWait caps how long a request waits for a concurrency slot.
	maxQueueWait = 250 * time.Millisecond
)

// Options configure the validators. Checker and Pools are required.
type Options struct {
	// Checker answers for images; the webhook bounds it in time and
	// recovers its panics.
	Checker Checker
	// Pools says which node pools a pod template can run on.
	Pools PoolProvider
	// DenyOnAnyPool rejects (in deny mode) an image that some candidate
	// node pool cannot pull, even when others can.
	DenyOnAnyPool bool
	// Mode applies where no namespace label overrides it. Default warn.
	Mode Mode
	// NamespaceModes reads per-namespace overrides. Nil ignores the label,
	// as in standalone serving where there is no API server to read from.
	NamespaceModes NamespaceModes
	// AllowSkip says whether the skip annotation is honoured. Nil honours
	// it only where the effective mode is warn: a team may opt out of
	// advice, but not out of enforcement, unless the operator says so.
	AllowSkip *bool
	// Timeout is the budget of one admission, lookups included.
	Timeout time.Duration
	// MaxConcurrent bounds admissions checking at once.
	MaxConcurrent int
	// QueueWait is how long a request waits for a concurrency slot before
	// it is allowed unverified. Default: a quarter of Timeout, at most
	// 250ms.
	QueueWait time.Duration
	// MaxImages bounds the distinct images checked in one object; beyond
	// it, a warning names how many were not checked.
	MaxImages int
	// Metrics receives observations; nil records nothing.
	Metrics Metrics
}

// withDefaults validates o and fills in defaults.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.Checker == nil {
		errs = append(errs, errors.New("a Checker is required"))
	}
	if o.Pools == nil {
		errs = append(errs, errors.New("a PoolProvider is required"))
	}
	if o.Mode == "" {
		o.Mode = ModeWarn
	}
	if _, err := ParseMode(string(o.Mode)); err != nil {
		errs = append(errs, err)
	}
	if o.Timeout < 0 || o.MaxConcurrent < 0 || o.QueueWait < 0 || o.MaxImages < 0 {
		errs = append(errs, errors.New("timeout, concurrency and queue wait must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("invalid webhook options: %w", err)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxConcurrent == 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.MaxImages == 0 {
		o.MaxImages = DefaultMaxImages
	}
	if o.QueueWait == 0 {
		o.QueueWait = min(o.Timeout/4, maxQueueWait)
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
	return o, nil
}

// skipAllowed says whether the skip annotation counts under mode.
func (o Options) skipAllowed(mode Mode) bool {
	if o.AllowSkip != nil {
		return *o.AllowSkip
	}
	return mode == ModeWarn
}
