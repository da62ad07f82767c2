package awsclient

import "time"

// Observer receives one report per AWS call and per cache read. The webhook
// implements it with Prometheus; implementations must be safe for concurrent
// use and fast, since they run on the admission path.
type Observer interface {
	// ObserveCall reports one AWS API call: operation is the API name
	// ("DescribeImages"), outcome one of the Class names ("ok",
	// "access_denied", ...), d its duration including SDK retries.
	ObserveCall(operation, outcome string, d time.Duration)
	// CacheHit and CacheMiss report a cache read for a kind of answer
	// ("image", "repository_policy", "role", ...).
	CacheHit(kind string)
	CacheMiss(kind string)
}

// NopObserver discards every report. It is the default.
type NopObserver struct{}

// ObserveCall implements Observer.
func (NopObserver) ObserveCall(string, string, time.Duration) {}

// CacheHit implements Observer.
func (NopObserver) CacheHit(string) {}

// CacheMiss implements Observer.
func (NopObserver) CacheMiss(string) {}

// Clock tells the time. TTLs and call durations are measured with it so that
// tests can move time forward instead of sleeping.
type Clock interface {
	Now() time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

// Now implements Clock.
func (RealClock) Now() time.Time { return time.Now() }
