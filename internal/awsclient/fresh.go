package awsclient

import (
	"context"
	"slices"
)

// Kind names a kind of answer: what the cache holds, what the observer
// reports hits and misses for, and what WithFresh can ask AWS for again.
type Kind string

// The kinds of answer Lookups gives.
const (
	KindImage                 Kind = "image" // images, and whether their repository exists
	KindRepositoryPolicy      Kind = "repository_policy"
	KindRegistryPolicy        Kind = "registry_policy"
	KindRegistryPolicyScope   Kind = "registry_policy_scope"
	KindPullThroughCacheRules Kind = "pull_through_cache_rules"
	KindRole                  Kind = "role" // a role with its tags, boundary and policies
	KindManagedPolicy         Kind = "managed_policy"
	KindCallerIdentity        Kind = "caller_identity"
	KindLifecyclePolicy       Kind = "lifecycle_policy"
	KindRepositoryImages      Kind = "repository_images" // every image of a repository, for lifecycle rules
)

type freshKey struct{}

// WithFresh returns a context under which lookups of the given kinds (every
// kind when none is given) skip cached answers older than
// Options.FreshInterval and ask AWS again, still de-duplicated and still
// refreshing the cache. The engine uses it before a rejection, naming only
// the lookups the rejection rests on, so that a user who just fixed a
// policy is never refused on a stale answer while repeated rejections cost
// at most one call per lookup per interval. KindRole includes the role's
// managed policies.
func WithFresh(ctx context.Context, kinds ...Kind) context.Context {
	if len(kinds) == 0 {
		kinds = []Kind{}
	}
	return context.WithValue(ctx, freshKey{}, kinds)
}

// isFresh reports whether ctx asks for answers of kind from AWS.
func isFresh(ctx context.Context, kind Kind) bool {
	kinds, ok := ctx.Value(freshKey{}).([]Kind)
	switch {
	case !ok:
		return false
	case len(kinds) == 0:
		return true
	case kind == KindManagedPolicy:
		return slices.Contains(kinds, KindRole) || slices.Contains(kinds, kind)
	}
	return slices.Contains(kinds, kind)
}
