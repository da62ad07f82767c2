package awsclient

import (
	"context"
	"fmt"
	"time"

	gocache "github.com/patrickmn/go-cache"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/ecr-preflight/ecr-preflight/internal/flight"
)

// TTLs say how long each kind of answer is reused. A zero field takes the
// default; a negative one turns caching of that kind off.
type TTLs struct {
	// ImageByDigest: an image looked up by digest. A digest names immutable
	// content, so only deletion can change the answer. Default 24h.
	ImageByDigest time.Duration
	// ImageByTag: an image looked up by tag. Tags move (a push of :latest),
	// so the answer is kept briefly. Default 1m.
	ImageByTag time.Duration
	// NotFound: a missing repository, image, policy or role. Short, so that a
	// workload admitted right after its image is pushed is not refused for
	// long. Default 30s.
	NotFound time.Duration
	// Policy: repository and registry policies, the policy scope,
	// pull-through-cache rules, roles with their policies, and caller
	// identities. They change by deliberate administration; a few minutes of
	// staleness is the usual price of IAM's own eventual consistency. Default 5m.
	Policy time.Duration
}

// DefaultTTLs returns the default TTLs.
func DefaultTTLs() TTLs {
	return TTLs{ImageByDigest: 24 * time.Hour, ImageByTag: time.Minute, NotFound: 30 * time.Second, Policy: 5 * time.Minute}
}

// DefaultCallTimeout bounds each AWS call, retries included: well below the
// webhook's own budget, so a cold admission can wait for a short chain of
// calls and still answer in time.
const DefaultCallTimeout = 2 * time.Second

// DefaultFreshInterval is how long an answer counts as fresh for a
// re-verification: short enough that a fix is seen on the next try, long
// enough that a CI loop re-applying a rejected object every second costs
// IAM (whose quotas are account-wide) one call per lookup every 5 seconds.
const DefaultFreshInterval = 5 * time.Second

// DefaultMaxConcurrentCalls bounds the AWS calls in flight: enough for a
// cold burst of admissions, far below the SDK's connection limits and AWS's
// per-account request rates.
const DefaultMaxConcurrentCalls = 64

// Options configure Lookups. The zero value gives the defaults.
type Options struct {
	TTL TTLs
	// CallTimeout bounds each AWS call (its SDK retries included). It should
	// leave room below the webhook's timeoutSeconds for several sequential
	// calls. Default 2s.
	CallTimeout time.Duration
	// FreshInterval: a WithFresh lookup reuses an answer fetched less than
	// this long ago, so re-verifying repeated rejections costs at most one
	// AWS call per lookup per interval. Zero means DefaultFreshInterval;
	// negative asks AWS every time.
	FreshInterval time.Duration
	// MaxConcurrentCalls bounds the AWS calls in flight at once, across all
	// callers: work that outlives the admissions that asked for it (calls
	// finish to warm the cache) cannot grow without bound. Callers queue
	// first in, first out; as the engine keeps only a few lookups of one
	// check in flight at a time, one huge object cannot starve the others.
	// Zero means DefaultMaxConcurrentCalls.
	MaxConcurrentCalls int
	// CallsPerSecond bounds the rate of AWS calls across all callers (a
	// token bucket with a burst of one second's calls), for audits that
	// would otherwise ask for everything at once. Zero: no bound.
	CallsPerSecond float64
	// Observer receives call and cache reports; default NopObserver.
	Observer Observer
	// Clock measures TTLs and call durations; default RealClock.
	Clock Clock
}

func (o Options) withDefaults() Options {
	d := DefaultTTLs()
	o.TTL.ImageByDigest = orDefault(o.TTL.ImageByDigest, d.ImageByDigest)
	o.TTL.ImageByTag = orDefault(o.TTL.ImageByTag, d.ImageByTag)
	o.TTL.NotFound = orDefault(o.TTL.NotFound, d.NotFound)
	o.TTL.Policy = orDefault(o.TTL.Policy, d.Policy)
	o.CallTimeout = orDefault(o.CallTimeout, DefaultCallTimeout)
	o.FreshInterval = orDefault(o.FreshInterval, DefaultFreshInterval)
	if o.MaxConcurrentCalls <= 0 {
		o.MaxConcurrentCalls = DefaultMaxConcurrentCalls
	}
	if o.Observer == nil {
		o.Observer = NopObserver{}
	}
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	return o
}

func orDefault(v, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return v
}

// Lookups answers the preflight engine's questions about ECR and IAM,
// caching the answers and collapsing concurrent identical lookups into one
// AWS call. It is safe for concurrent use.
//
// Errors (access denied, throttling, timeouts, service failures) are never
// cached: the next request asks AWS again. Concurrent requests still share
// one in-flight call, so a burst during an outage costs one call, not one
// per request. Definite absences (ErrRepositoryNotFound, ErrRoleNotFound,
// missing images and policies) are answers and cached for TTLs.NotFound.
// A context from WithFresh bypasses the cache for reads (answers still
// refresh it), for a second look before a rejection.
type Lookups struct {
	clients Clients
	opts    Options
	cache   *gocache.Cache
	flights singleflight.Group
	// calls holds one slot per AWS call in flight (Options.MaxConcurrentCalls).
	calls *semaphore.Weighted
	// rate paces calls (Options.CallsPerSecond); nil: unpaced.
	rate *rate.Limiter
}

// NewLookups returns Lookups over clients.
func NewLookups(clients Clients, o Options) *Lookups {
	o = o.withDefaults()
	l := &Lookups{
		clients: clients,
		opts:    o,
		// Expiry is judged against the injected clock (see entry); go-cache's
		// own expiry, a little later, only frees memory.
		cache: gocache.New(gocache.NoExpiration, 10*time.Minute),
		calls: semaphore.NewWeighted(int64(o.MaxConcurrentCalls)),
	}
	if o.CallsPerSecond > 0 {
		l.rate = rate.NewLimiter(rate.Limit(o.CallsPerSecond), max(1, int(o.CallsPerSecond)))
	}
	return l
}

// entry is a cached answer with when it was fetched and when it expires,
// on the injected clock.
type entry struct {
	val     any
	fetched time.Time
	expires time.Time
}

// get returns a live cached value and reports the hit or miss for kind.
func (l *Lookups) get(ctx context.Context, kind Kind, key string) (any, bool) {
	if v, ok := l.peek(ctx, kind, key); ok {
		l.opts.Observer.CacheHit(string(kind))
		return v, true
	}
	l.opts.Observer.CacheMiss(string(kind))
	return nil, false
}

// peek is get without the report, for the re-check inside a flight. Under
// WithFresh for kind only an answer younger than FreshInterval counts.
func (l *Lookups) peek(ctx context.Context, kind Kind, key string) (any, bool) {
	v, ok := l.cache.Get(key)
	if !ok {
		return nil, false
	}
	e := v.(entry)
	now := l.opts.Clock.Now()
	switch {
	case !now.Before(e.expires):
		return nil, false
	case isFresh(ctx, kind) && now.Sub(e.fetched) >= l.opts.FreshInterval:
		return nil, false
	}
	return e.val, true
}

func (l *Lookups) put(key string, val any, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	now := l.opts.Clock.Now()
	l.cache.Set(key, entry{val: val, fetched: now, expires: now.Add(ttl)}, ttl+time.Minute)
}

// cached returns the cached answer under key or computes it with fetch,
// once for all concurrent callers (see shared). ttl says how long a result
// is kept; errors are not kept.
func cached[T any](ctx context.Context, l *Lookups, kind Kind, key, what string, ttl func(T) time.Duration, fetch func(context.Context) (T, error)) (T, error) {
	if v, ok := l.get(ctx, kind, key); ok {
		return v.(T), nil
	}
	return shared(ctx, l, kind, key, what, func(ctx context.Context) (T, error) {
		// A flight that ended between our miss and this one may have filled it.
		if v, ok := l.peek(ctx, kind, key); ok {
			return v.(T), nil
		}
		v, err := fetch(ctx)
		if err != nil {
			return v, err
		}
		l.put(key, v, ttl(v))
		return v, nil
	})
}

// shared runs fetch once for all concurrent callers with the same key
// (flight.Do). fetch runs detached from the first caller's cancellation
// (each AWS call has its own deadline), so one caller giving up does not
// fail the others; each caller still returns as soon as its own context
// ends, with a ClassTimeout error about what. A WithFresh caller never
// joins a flight of ordinary callers, which may be answered from the cache.
// A caller whose context has ended starts nothing: no lookup begins after
// the admission that wanted it has answered.
func shared[T any](ctx context.Context, l *Lookups, kind Kind, key, what string, fetch func(context.Context) (T, error)) (T, error) {
	if isFresh(ctx, kind) {
		key += "|fresh"
	}
	// fetch gets ctx's values, WithFresh included.
	return flight.Do(ctx, &l.flights, key, fetch, func(err error) error {
		return &LookupError{What: what, Class: ClassTimeout, Err: err}
	})
}

// call runs one AWS call under the per-call deadline, which includes the
// wait for a slot among MaxConcurrentCalls, and reports it. The wait for
// its turn under CallsPerSecond comes first, bounded by ctx alone: a
// paced audit queues, it does not time out.
func call[T any](ctx context.Context, l *Lookups, operation string, f func(context.Context) (T, error)) (T, error) {
	if l.rate != nil {
		if err := l.rate.Wait(ctx); err != nil {
			// Its turn would come after ctx ends: as good as timed out.
			var zero T
			return zero, fmt.Errorf("%s: waiting for a turn under the call rate: %w", operation, context.DeadlineExceeded)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, l.opts.CallTimeout)
	defer cancel()
	if err := l.calls.Acquire(ctx, 1); err != nil {
		var zero T
		return zero, err
	}
	defer l.calls.Release(1)
	start := l.opts.Clock.Now()
	v, err := f(ctx)
	l.opts.Observer.ObserveCall(operation, string(ClassOf(err)), l.opts.Clock.Now().Sub(start))
	return v, err
}

// fixed returns a ttl function that ignores the value.
func fixed[T any](d time.Duration) func(T) time.Duration {
	return func(T) time.Duration { return d }
}
