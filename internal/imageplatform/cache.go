package imageplatform

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/singleflight"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/flight"
)

// DefaultCacheEntries bounds the manifests and configs kept. An entry is
// a few hundred bytes (an index's entries without their annotations, or a
// platform), so the default holds a large cluster's images in about a
// megabyte.
const DefaultCacheEntries = 4096

// Cache kinds, as the Observer is told them.
const (
	kindManifestCache = "image_manifest"
	kindConfigCache   = "image_config"
)

// cache keeps answers by content digest, with no expiry: the content a
// digest names never changes. When full it drops an arbitrary entry (Go's
// map order), which costs at most one more fetch of that digest. Errors are
// never kept. Concurrent loads of one key share one fetch.
type cache struct {
	limit    int
	observer awsclient.Observer

	mu      sync.Mutex
	entries map[string]any
	flights singleflight.Group
}

func newCache(limit int, o awsclient.Observer) *cache {
	return &cache{limit: limit, observer: o, entries: map[string]any{}}
}

func (c *cache) get(key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.entries[key]
	return v, ok
}

func (c *cache) put(key string, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.limit {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = v
}

// load returns the value under key, fetching it once for all concurrent
// callers with the same flightName (flight.Do). The fetch runs detached
// from the first caller's cancellation (the Fetcher bounds each call), so
// one caller giving up does not fail the others; each caller still returns
// when its own context ends. what names the fetch in that error.
func load[T any](ctx context.Context, c *cache, kind, key, flightName, what string, fetch func(context.Context) (T, error)) (T, error) {
	if v, ok := c.get(key); ok {
		c.observer.CacheHit(kind)
		return v.(T), nil
	}
	c.observer.CacheMiss(kind)
	return flight.Do(ctx, &c.flights, flightName, func(ctx context.Context) (T, error) {
		// A flight that ended between our miss and this one may have filled it.
		if v, ok := c.get(key); ok {
			return v.(T), nil
		}
		v, err := fetch(ctx)
		if err != nil {
			return v, err
		}
		c.put(key, v)
		return v, nil
	}, func(err error) error {
		return fmt.Errorf("%s: %w", what, err)
	})
}
