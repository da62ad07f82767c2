package preflight

import (
	"context"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/imageplatform"
	"github.com/ecr-preflight/ecr-preflight/internal/imageref"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

// Platforms says which platforms an image provides
// (*imageplatform.Resolver implements it). digest and mediaType are
// DescribeImages' answer for the image.
type Platforms interface {
	Platforms(ctx context.Context, repo awsclient.Repository, digest, mediaType string) (imageplatform.Image, error)
}

// poolsKeyPrefix keeps CheckPools' cached answers apart from Check's.
const poolsKeyPrefix = "\x02pools\x00"

// CheckPools answers for each image (in order, one Result each) whether
// pods of a template placed as pl will pull it: the pull is checked once
// per distinct role of pl's candidate pools (as Check does), and, with
// Options.Platforms, each candidate's platforms against the image's.
//
// The answer for an image is the pools': not-pullable when no candidate
// pool can pull it (a missing image fails on all), partly-pullable when
// some can and some cannot (the findings of those that cannot are kept,
// each naming its pool), unknown when none is definite. When discovery
// was incomplete (pl.Incomplete) a pool that could pull may be missing:
// "no candidate can pull" then stays definite only for what fails
// everywhere. With no candidates only existence is checked. Results are
// shared with the engine's cache: treat them as read-only.
func (e *Engine) CheckPools(ctx context.Context, images []string, pl nodepools.Placement) []Result {
	key := poolsKeyPrefix + pl.Key()
	out, todo := e.fromCache(images, key)
	if len(todo) == 0 {
		return out
	}
	base := e.Check(ctx, todo, candidateRoles(pl.Candidates))
	placed := make(map[string]Result, len(todo))
	for j, img := range todo {
		r := e.place(ctx, base[j], pl)
		if e.resultTTL > 0 && cacheable(r) {
			e.results.SetDefault(resultKey(img, key), r)
		}
		placed[img] = r
	}
	for i, img := range images {
		if r, ok := placed[img]; ok {
			out[i] = r
		}
	}
	return out
}

// CachedPools is Cached for CheckPools: every image's answer from memory,
// or ok false.
func (e *Engine) CachedPools(images []string, pl nodepools.Placement) (results []Result, ok bool) {
	return e.allCached(images, poolsKeyPrefix+pl.Key())
}

// candidateRoles are the distinct roles of pools, those known.
func candidateRoles(pools []nodepools.Pool) []string {
	var roles []string
	for _, p := range pools {
		if p.RoleARN != "" && !slices.Contains(roles, p.RoleARN) {
			roles = append(roles, p.RoleARN)
		}
	}
	return roles
}

// place turns r, the answer for the candidates' roles, into the answer
// for the candidate pools.
func (e *Engine) place(ctx context.Context, r Result, pl nodepools.Placement) Result {
	if r.Verdict == VerdictSkipped || isInvalid(r) {
		return r
	}
	if len(pl.Candidates) == 0 {
		if len(pl.Incomplete) == 0 || r.Verdict == VerdictNotPullable {
			return r // existence only: the webhook says why there are no pools
		}
		// Discovery is not ready or failed: the roles that will pull are
		// not known, so neither is the answer.
		out := r
		out.Findings = append(slices.Clone(r.Findings), discoveryIncomplete(pl.Incomplete))
		out.Verdict = VerdictUnknown
		return out
	}
	var shared []Finding
	byRole := map[string][]Finding{}
	for _, f := range r.Findings {
		if f.Role == "" {
			shared = append(shared, f)
		} else {
			byRole[f.Role] = append(byRole[f.Role], f)
		}
	}
	platform := e.platformFindings(ctx, r.Image, shared, pl.Candidates)

	out := Result{Image: r.Image, Findings: slices.Clone(shared)}
	named := false
	for _, p := range pl.Candidates {
		named = named || !p.Anonymous()
	}
	if !named {
		// Bare --node-role-arn pools: the findings already name each role.
		out.Findings = slices.Clone(r.Findings)
	}
	worst := map[Verdict]int{}
	for i, p := range pl.Candidates {
		own := byRole[p.RoleARN]
		if p.RoleARN == "" {
			own = []Finding{poolRoleUnknown()}
		}
		own = append(slices.Clone(own), platform[i]...)
		v := verdictOf(slices.Concat(shared, own))
		worst[v]++
		out.Pools = append(out.Pools, poolVerdict(p, v))
		if named {
			for _, f := range own {
				out.Findings = append(out.Findings, inPool(f, p))
			}
		}
	}
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	n := len(pl.Candidates)
	switch {
	case worst[VerdictNotPullable] == n && len(pl.Incomplete) > 0 && verdictOf(shared) != VerdictNotPullable:
		// A pool that could pull it may not have been discovered.
		out.Verdict = VerdictUnknown
		out.Findings = append(out.Findings, discoveryIncomplete(pl.Incomplete))
	case worst[VerdictNotPullable] == n:
		out.Verdict = VerdictNotPullable
	case worst[VerdictNotPullable] > 0 && worst[VerdictPullable] > 0:
		out.Verdict = VerdictPartlyPullable
	case worst[VerdictUnknown] > 0:
		out.Verdict = VerdictUnknown
	default:
		out.Verdict = VerdictPullable
	}
	return out
}

func isInvalid(r Result) bool {
	return len(r.Findings) > 0 && r.Findings[0].Code == CodeInvalidImageReference
}

func poolVerdict(p nodepools.Pool, v Verdict) PoolVerdict {
	pv := PoolVerdict{PoolRef: PoolRef{Name: p.Name, Kind: string(p.Kind)}, Role: p.RoleARN, Verdict: v}
	for _, pf := range p.Platforms {
		pv.Platforms = append(pv.Platforms, nodepools.FormatPlatform(pf))
	}
	return pv
}

// inPool is f about pool p: tagged with it, its message naming it.
func inPool(f Finding, p nodepools.Pool) Finding {
	f.Pool = &PoolRef{Name: p.Name, Kind: string(p.Kind)}
	if f.Code == CodePlatformNotAvailable {
		return f // its own message names the pool
	}
	who := p.String()
	if p.RoleARN != "" {
		who += " (role " + RoleName(p.RoleARN) + ")"
	}
	if f.Severity == SeverityError {
		f.Message = who + " cannot pull: " + f.Message
	} else {
		f.Message = who + ": " + f.Message
	}
	return f
}

// platformFindings checks the image's platforms against each candidate's
// (by index of pools). shared are the image's findings about every pool:
// an image that is missing or archived has no platforms to look at.
func (e *Engine) platformFindings(ctx context.Context, image string, shared []Finding, pools []nodepools.Pool) [][]Finding {
	out := make([][]Finding, len(pools))
	if e.platforms == nil || verdictOf(shared) == VerdictNotPullable {
		return out
	}
	if !slices.ContainsFunc(pools, func(p nodepools.Pool) bool { return len(p.Platforms) > 0 }) {
		return out
	}
	img, err := imageref.Parse(image)
	if err != nil || !img.IsECR() {
		return out
	}
	provided, err := e.imagePlatforms(ctx, img)
	if err == nil && provided.Known && someMissing(provided, pools) {
		// A rejection never rests on a stale tag: the tag may have been
		// pushed again as a multi-platform image.
		provided, err = e.imagePlatforms(awsclient.WithFresh(ctx, awsclient.KindImage), img)
	}
	for i, p := range pools {
		if len(p.Platforms) == 0 {
			continue
		}
		switch {
		case err != nil:
			out[i] = []Finding{platformUnread(p, err)}
		case !provided.Known:
		default:
			if missing := imageplatform.Missing(provided.Platforms, p.Platforms); len(missing) > 0 {
				out[i] = []Finding{platformNotAvailable(p, missing, provided.Platforms, len(missing) < len(p.Platforms))}
			}
		}
	}
	return out
}

func someMissing(provided imageplatform.Image, pools []nodepools.Pool) bool {
	return slices.ContainsFunc(pools, func(p nodepools.Pool) bool {
		return len(imageplatform.Missing(provided.Platforms, p.Platforms)) > 0
	})
}

// imagePlatforms reads what platforms img provides: DescribeImages (from
// the lookups' cache, usually) for its digest and media type, then the
// resolver.
func (e *Engine) imagePlatforms(ctx context.Context, img imageref.Image) (imageplatform.Image, error) {
	t := targetOf(img)
	id := awsclient.ImageID{Tag: img.Tag, Digest: img.Digest}
	if img.Digest != "" {
		id.Tag = ""
	}
	found, _, err := e.lookups.DescribeImages(ctx, t.Repository, []awsclient.ImageID{id})
	if err != nil {
		return imageplatform.Image{}, err
	}
	d, ok := detailOf(found, id)
	if !ok {
		return imageplatform.Image{}, nil // missing: the existence check says so
	}
	return e.platforms.Platforms(ctx, t.Repository, d.Digest, d.ManifestMediaType)
}

// formatPlatforms is "linux/amd64, linux/arm64".
func formatPlatforms(ps []ocispec.Platform) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = nodepools.FormatPlatform(p)
	}
	return strings.Join(out, ", ")
}
