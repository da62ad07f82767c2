// Package imageref parses container image references and recognises the
// ones served by a private Amazon ECR registry.
//
// A reference is parsed exactly as the kubelet and container runtimes read
// it (github.com/distribution/reference, with Docker Hub normalisation), then
// its registry host is matched against the ECR registry host forms of every
// AWS partition: IPv4 (ACCOUNT.dkr.ecr.REGION.SUFFIX), FIPS
// (ACCOUNT.dkr.ecr-fips.REGION.SUFFIX), dual-stack
// (ACCOUNT.dkr-ecr.REGION.on.SUFFIX) and dual-stack FIPS, with an optional
// :443 port. The partition comes from the region's prefix and must agree with
// the host's DNS suffix.
//
// Images that are not in a private ECR registry (Docker Hub, ECR Public,
// GHCR, a private mirror, ...) are not an error: they come back with
// Kind NotECR and a SkipReason, because the preflight has nothing to check
// for them. Parse fails only for references the kubelet could not pull
// either: unparsable text, or an ECR-shaped host that is malformed.
// A string longer than the grammar allows (MaxReferenceLength, from the
// name, tag, digest and host bounds) is rejected by its length before
// anything scans it, so a hostile megabyte costs a comparison.
//
// The package is pure: no I/O, no AWS calls. Whether a repository is a
// pull-through-cache repository is registry configuration; this package only
// matches a repository against prefixes the caller supplies (see
// Image.MatchPullThroughCachePrefix).
package imageref
