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
}

// rootPrefix is the EcrRepositoryPrefix of a rule without a prefix.
const rootPrefix = "ROOT"

// MatchPullThroughCachePrefix returns the pull-through cache mapping for the
// longest of the given ECR repository prefixes (the EcrRepositoryPrefix of
// each of the registry's pull-through-cache rules) that the repository is
// under. A prefix matches whole path segments only: "quay" matches
// "quay/coreos/etcd" but not "quayside/app". The prefix "ROOT", which ECR uses for
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
