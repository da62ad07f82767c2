package imageref

import "strings"

// PullThroughCache describes how a private ECR repository maps to an
// upstream registry through a pull-through-cache rule: the repository is
// named Prefix/UpstreamRepository.
type PullThroughCache struct {
	// Prefix is the rule's ECR repository prefix (EcrRepositoryPrefix).
	Prefix string
	// UpstreamRepository is the repository path in the upstream registry.
	UpstreamRepository string
	// UpstreamRegistry is the upstream registry host when the prefix is a
	// well-known default; empty when only the registry's rules can tell.
	UpstreamRegistry string
}

// rootPrefix is the EcrRepositoryPrefix of a rule without a prefix.
const rootPrefix = "ROOT"

// wellKnownPullThroughCachePrefixes are the prefixes the ECR console and
// documentation suggest for each upstream. The prefix is free-form registry
// configuration, so these are only hints.
var wellKnownPullThroughCachePrefixes = map[string]string{
	"docker-hub": "registry-1.docker.io",
	"ecr-public": "public.ecr.aws",
	"quay":       "quay.io",
	"k8s":        "registry.k8s.io",
	"ghcr":       "ghcr.io",
	"github":     "ghcr.io",
	"gitlab":     "registry.gitlab.com",
	"azure":      "",
	"chainguard": "cgr.dev",
}

// LikelyPullThroughCache guesses, from the repository's first path segment
// alone, that the repository is created by a pull-through-cache rule with a
// well-known default prefix. It is a hint for messages ("the repository may
// not exist yet because it is created on first pull"), never a fact: a
// registry may use any prefix, and a plain repository may be named
// docker-hub/x. Confirm with the registry's rules
// (ecr:DescribePullThroughCacheRules) and MatchPullThroughCachePrefix.
func (i Image) LikelyPullThroughCache() (PullThroughCache, bool) {
	if i.Kind != ECRPrivate {
		return PullThroughCache{}, false
	}
	prefix, upstream, ok := strings.Cut(i.Repository, "/")
	if !ok {
		return PullThroughCache{}, false
	}
	host, known := wellKnownPullThroughCachePrefixes[prefix]
	if !known {
		return PullThroughCache{}, false
	}
	return PullThroughCache{Prefix: prefix, UpstreamRepository: upstream, UpstreamRegistry: host}, true
}

// MatchPullThroughCachePrefix returns the pull-through cache mapping for the
// longest of the given ECR repository prefixes (the EcrRepositoryPrefix of
// each of the registry's pull-through-cache rules) that the repository is
// under. A prefix matches whole path segments only: "quay" matches
// "quay/coreos/etcd" but not "quayside/app". UpstreamRegistry is left empty:
// the rule itself names the upstream. The prefix "ROOT", which ECR uses for
// a rule that caches a whole upstream ECR registry, matches every repository
// but loses to any real prefix.
func (i Image) MatchPullThroughCachePrefix(prefixes []string) (PullThroughCache, bool) {
	if i.Kind != ECRPrivate {
		return PullThroughCache{}, false
	}
	best, root := "", false
	for _, p := range prefixes {
		if p == rootPrefix {
			root = true
			continue
		}
		p = strings.Trim(p, "/")
		if p == "" || len(p) <= len(best) {
			continue
		}
		if strings.HasPrefix(i.Repository, p+"/") {
			best = p
		}
	}
	if best == "" {
		if root {
			return PullThroughCache{Prefix: rootPrefix, UpstreamRepository: i.Repository}, true
		}
		return PullThroughCache{}, false
	}
	return PullThroughCache{Prefix: best, UpstreamRepository: strings.TrimPrefix(i.Repository, best+"/")}, true
}
