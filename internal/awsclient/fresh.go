package awsclient

import "context"

type freshKey struct{}

// WithFresh returns a context under which lookups skip cached answers and
// ask AWS again (still de-duplicated, and still refreshing the cache). The
// engine uses it before a rejection, so that a user who just fixed a policy
// is never refused on a stale answer.
func WithFresh(ctx context.Context) context.Context {
	return context.WithValue(ctx, freshKey{}, true)
}

// isFresh reports whether ctx asks for answers from AWS, not the cache.
func isFresh(ctx context.Context) bool {
	v, _ := ctx.Value(freshKey{}).(bool)
	return v
}
