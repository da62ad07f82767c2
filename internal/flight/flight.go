package flight

import (
	"context"

	"golang.org/x/sync/singleflight"
)

// Do runs fetch once for all concurrent callers of g with the same key and
// gives each of them its result: the value, or the zero T and fetch's
// error. Every caller of one key must ask for the same T.
//
// fetch runs detached from the cancellation of the caller that started it
// (context.WithoutCancel: ctx's values, not its deadline), so one caller
// giving up does not fail the others; fetch must bound its own work. Each
// caller still returns as soon as its own ctx ends, with ended(ctx.Err())
// (ctx.Err() itself when ended is nil), and a caller whose ctx has already
// ended returns that error and starts nothing: no fetch begins for an
// answer nobody waits for.
func Do[T any](ctx context.Context, g *singleflight.Group, key string, fetch func(context.Context) (T, error), ended func(error) error) (T, error) {
	var zero T
	stopped := func() error {
		if ended == nil {
			return ctx.Err()
		}
		return ended(ctx.Err())
	}
	if ctx.Err() != nil {
		return zero, stopped()
	}
	detached := context.WithoutCancel(ctx)
	ch := g.DoChan(key, func() (any, error) {
		return fetch(detached)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return zero, r.Err
		}
		return r.Val.(T), nil
	case <-ctx.Done():
		return zero, stopped()
	}
}
