package awsclient

import (
	"context"
	"time"

	gocache "github.com/patrickmn/go-cache"
	"golang.org/x/sync/singleflight"
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

// Options configure Lookups. The zero value gives the defaults.
type Options struct {
	TTL TTLs
	// CallTimeout bounds each AWS call (its SDK retries included). It should
	// leave room below the webhook's timeoutSeconds for several sequential
	// calls. Default 2s.
	CallTimeout time.Duration
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
}

// NewLookups returns Lookups over clients.
func NewLookups(clients Clients, o Options) *Lookups {
	o = o.withDefaults()
	return &Lookups{
		clients: clients,
		opts:    o,
		// Expiry is judged against the injected clock (see entry); go-cache's
		// own expiry, a little later, only frees memory.
		cache: gocache.New(gocache.NoExpiration, 10*time.Minute),
	}
}

// entry is a cached answer with its expiry on the injected clock.
type entry struct {
	val     any
	expires time.Time
}

// get returns a live cached value and reports the hit or miss for kind.
// Under WithFresh every read is a miss.
func (l *Lookups) get(ctx context.Context, kind, key string) (any, bool) {
	if v, ok := l.peek(ctx, key); ok {
		l.opts.Observer.CacheHit(kind)
		return v, true
	}
	l.opts.Observer.CacheMiss(kind)
	return nil, false
}

// peek is get without the report, for the re-check inside a flight.
func (l *Lookups) peek(ctx context.Context, key string) (any, bool) {
	if isFresh(ctx) {
		return nil, false
	}
	if v, ok := l.cache.Get(key); ok {
		if e := v.(entry); l.opts.Clock.Now().Before(e.expires) {
			return e.val, true
		}
	}
	return nil, false
}

func (l *Lookups) put(key string, val any, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	l.cache.Set(key, entry{val: val, expires: l.opts.Clock.Now().Add(ttl)}, ttl+time.Minute)
}

// cached returns the cached answer under key or computes it with fetch,
// once for all concurrent callers (see shared). ttl says how long a result
// is kept; errors are not kept.
func cached[T any](ctx context.Context, l *Lookups, kind, key, what string, ttl func(T) time.Duration, fetch func(context.Context) (T, error)) (T, error) {
	if v, ok := l.get(ctx, kind, key); ok {
		return v.(T), nil
	}
	return shared(ctx, l, key, what, func(ctx context.Context) (T, error) {
		// A flight that ended between our miss and this one may have filled it.
		if v, ok := l.peek(ctx, key); ok {
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

// shared runs fetch once for all concurrent callers with the same key.
// fetch runs detached from the first caller's cancellation (each AWS call
// has its own deadline), so one caller giving up does not fail the others;
// each caller still returns as soon as its own context ends, with a
// ClassTimeout error about what. A WithFresh caller never joins a flight of
// ordinary callers, which may be answered from the cache.
func shared[T any](ctx context.Context, l *Lookups, key, what string, fetch func(context.Context) (T, error)) (T, error) {
	var zero T
	detached := context.WithoutCancel(ctx) // keeps values, WithFresh included
	if isFresh(ctx) {
		key += "|fresh"
	}
	ch := l.flights.DoChan(key, func() (any, error) {
		return fetch(detached)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return zero, r.Err
		}
		return r.Val.(T), nil
	case <-ctx.Done():
		return zero, &LookupError{What: what, Class: ClassTimeout, Err: ctx.Err()}
	}
}

// call runs one AWS call under the per-call deadline and reports it.
func call[T any](ctx context.Context, l *Lookups, operation string, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, l.opts.CallTimeout)
	defer cancel()
	start := l.opts.Clock.Now()
	v, err := f(ctx)
	l.opts.Observer.ObserveCall(operation, string(ClassOf(err)), l.opts.Clock.Now().Sub(start))
	return v, err
}

// fixed returns a ttl function that ignores the value.
func fixed[T any](d time.Duration) func(T) time.Duration {
	return func(T) time.Duration { return d }
}
