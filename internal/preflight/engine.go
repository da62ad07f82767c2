package preflight

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	gocache "github.com/patrickmn/go-cache"
	"golang.org/x/sync/errgroup"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/imageref"
)

// Lookups is what the engine asks AWS, answered from cache when possible.
// *awsclient.Lookups implements it; tests use fakes.
type Lookups interface {
	DescribeImages(ctx context.Context, repo awsclient.Repository, ids []awsclient.ImageID) (found []awsclient.ImageDetail, missing []awsclient.ImageID, err error)
	RepositoryPolicy(ctx context.Context, repo awsclient.Repository) (text string, found bool, err error)
	RegistryPolicy(ctx context.Context, reg awsclient.Registry) (text string, found bool, err error)
	RegistryPolicyScope(ctx context.Context, reg awsclient.Registry) (string, error)
	PullThroughCacheRules(ctx context.Context, reg awsclient.Registry) ([]awsclient.PullThroughCacheRule, error)
	RolePolicies(ctx context.Context, roleARN string) (awsclient.RolePolicies, error)
	// CallerAccount is the account our credentials act as for account's
	// resources, to tell a refusal at home from one in another account.
	CallerAccount(ctx context.Context, account string) (string, error)
}

// DefaultResultTTL is how long a whole pullable or skipped answer is reused
// without asking the lookups: short, because it also hides a new Deny.
const DefaultResultTTL = 30 * time.Second

// Options configure an Engine.
type Options struct {
	// Lookups answers AWS questions. Required.
	Lookups Lookups
	// Context holds values for condition keys that are unknown at admission
	// time (aws:SourceVpce, aws:PrincipalOrgID, ...), as --context gives them.
	Context map[string][]string
	// Now is the clock for aws:CurrentTime. Default time.Now.
	Now func() time.Time
	// ResultTTL is how long a "pullable" or "skipped" answer is reused
	// without asking the lookups at all. Zero means DefaultResultTTL;
	// negative disables.
	ResultTTL time.Duration
	// Concurrency bounds the repositories checked at once. Default 8.
	Concurrency int
	// Logger receives per-check debug logs. Default: discard.
	Logger *slog.Logger
	// Platforms reads the platforms an image provides, for CheckPools to
	// match against node pools'. Nil: no platform check.
	Platforms Platforms
	// Lifecycle turns on lifecycle expiry prediction (ImageExpiring,
	// ImageExpired).
	Lifecycle LifecycleOptions
}

// Engine answers whether images will pull for candidate node roles. It is
// safe for concurrent use.
type Engine struct {
	lookups     Lookups
	decider     decider
	log         *slog.Logger
	concurrency int
	resultTTL   time.Duration

	// results holds whole answers that may be reused (pullable, skipped,
	// invalid references), so a warm admission costs a map lookup.
	results  *gocache.Cache
	policies *policyCache
	// platforms is nil when platforms are not checked.
	platforms Platforms
	// lifecycle is nil when expiry is not predicted.
	lifecycle *lifecycles
}

// New builds an Engine.
func New(o Options) (*Engine, error) {
	if o.Lookups == nil {
		return nil, errors.New("preflight: Options.Lookups is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ResultTTL == 0 {
		o.ResultTTL = DefaultResultTTL
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d, err := newDecider(o.Context, o.Now)
	if err != nil {
		return nil, err
	}
	return &Engine{
		lookups:     o.Lookups,
		decider:     d,
		log:         o.Logger,
		concurrency: o.Concurrency,
		resultTTL:   o.ResultTTL,
		results:     gocache.New(max(o.ResultTTL, time.Second), time.Minute),
		policies:    newPolicyCache(),
		platforms:   o.Platforms,
		lifecycle:   newLifecycles(o.Lifecycle),
	}, nil
}

// Check answers for each image (in order, one Result each) whether a
// kubelet running as any of roles (IAM role ARNs) will pull it. With no
// roles only existence is checked. Results are shared with the engine's
// cache: treat them as read-only.
//
// Cached answers are reused; the rest are checked; answers that would
// reject are checked again with fresh AWS data, so a rejection never rests
// on a stale cache; answers no AWS change can turn into a rejection are
// stored.
func (e *Engine) Check(ctx context.Context, images []string, roles []string) []Result {
	roles = normalizeRoles(roles)
	rolesKey := strings.Join(roles, ",")

	out, todo := e.fromCache(images, rolesKey)
	if len(todo) == 0 {
		return out
	}
	fresh := e.check(ctx, todo, roles)
	if again, kinds := rejected(fresh); len(again) > 0 && ctx.Err() == nil {
		maps.Copy(fresh, e.check(awsclient.WithFresh(ctx, kinds...), again, roles))
	}
	for img, r := range fresh {
		if e.resultTTL > 0 && cacheable(r) {
			e.results.SetDefault(resultKey(img, rolesKey), r)
		}
	}
	for i, img := range images {
		if r, ok := fresh[img]; ok {
			out[i] = r
		}
	}
	return out
}

// Cached answers for images from the result cache alone, as Check would
// (in order, one Result each, shared with the cache: read-only), when
// every image has a cached answer; ok is false otherwise. It makes no AWS
// call and never blocks, so a caller that bounds Check in time and
// concurrency can skip all of that for a warm answer.
func (e *Engine) Cached(images []string, roles []string) (results []Result, ok bool) {
	return e.allCached(images, strings.Join(normalizeRoles(roles), ","))
}

// allCached is every image's answer under key, or ok false.
func (e *Engine) allCached(images []string, key string) (results []Result, ok bool) {
	out := make([]Result, len(images))
	for i, img := range images {
		if out[i], ok = e.cached(img, key); !ok {
			return nil, false
		}
	}
	return out, true
}

// fromCache answers images from the result cache under key (in order,
// zero Results where there is none) and lists the distinct images still
// to check.
func (e *Engine) fromCache(images []string, key string) (out []Result, todo []string) {
	out = make([]Result, len(images))
	for i, img := range images {
		if r, ok := e.cached(img, key); ok {
			out[i] = r
		} else if !slices.Contains(todo, img) {
			todo = append(todo, img)
		}
	}
	return out, todo
}

// cached is the result cache's answer for img under rolesKey.
func (e *Engine) cached(img, rolesKey string) (Result, bool) {
	if len(img) > imageref.MaxReferenceLength {
		// Never stored (see cacheable): not worth a key as long as itself.
		return Result{}, false
	}
	r, ok := e.results.Get(resultKey(img, rolesKey))
	if !ok {
		return Result{}, false
	}
	return r.(Result), true
}

// resultKey is the result cache's key for img under the normalized roles
// joined as rolesKey.
func resultKey(img, rolesKey string) string { return img + "\x00" + rolesKey }

// rejected lists the images whose answer is not-pullable, and the kinds
// of lookup their rejections rest on: only those are re-verified.
func rejected(answers map[string]Result) (images []string, kinds []awsclient.Kind) {
	for img, r := range answers {
		if r.Verdict != VerdictNotPullable {
			continue
		}
		images = append(images, img)
		for _, f := range r.Findings {
			if f.Severity == SeverityError {
				kinds = append(kinds, restsOn(f.Code)...)
			}
		}
	}
	slices.Sort(images)
	slices.Sort(kinds)
	return images, slices.Compact(kinds)
}

// restsOn names the lookups a definite finding is drawn from: what a fix
// changes, so what a second look must see fresh.
func restsOn(c Code) []awsclient.Kind {
	switch c {
	case CodeImageNotFound, CodeImageArchived:
		return []awsclient.Kind{awsclient.KindImage, awsclient.KindPullThroughCacheRules}
	case CodeRepositoryNotFound:
		return []awsclient.Kind{awsclient.KindImage, awsclient.KindRepositoryPolicy, awsclient.KindPullThroughCacheRules}
	case CodeRepositoryPolicyDenies:
		return []awsclient.Kind{awsclient.KindRepositoryPolicy}
	case CodeRegistryPolicyDenies:
		return []awsclient.Kind{awsclient.KindRegistryPolicy, awsclient.KindRegistryPolicyScope}
	case CodeIdentityPolicyDenies, CodeAuthTokenNotAllowed:
		return []awsclient.Kind{awsclient.KindRole}
	case CodeCrossAccountNotAllowed:
		return []awsclient.Kind{awsclient.KindRole, awsclient.KindRepositoryPolicy}
	case CodePullNotAllowed:
		return []awsclient.Kind{awsclient.KindRole, awsclient.KindRepositoryPolicy, awsclient.KindRegistryPolicy, awsclient.KindRegistryPolicyScope}
	case CodePullThroughCacheNotAllowed:
		return []awsclient.Kind{awsclient.KindRole, awsclient.KindRepositoryPolicy, awsclient.KindRegistryPolicy, awsclient.KindPullThroughCacheRules}
	}
	return nil // an invalid reference rests on no lookup
}

// cacheable: answers that no later AWS change can turn into a rejection
// the user should see at once. Not-pullable answers are always re-derived.
func cacheable(r Result) bool {
	switch r.Verdict {
	case VerdictPullable, VerdictSkipped:
		return true
	case VerdictNotPullable:
		// A hostile reference longer than any real one is not worth its
		// memory: it is rejected in a microsecond anyway.
		return len(r.Findings) > 0 && r.Findings[0].Code == CodeInvalidImageReference && len(r.Image) <= imageref.MaxReferenceLength
	}
	return false
}

// repoGroup is the images of one repository: one DescribeImages call and
// one evaluation per role serve them all.
type repoGroup struct {
	target target
	images []imageref.Image
}

// check answers for each distinct image of images.
func (e *Engine) check(ctx context.Context, images []string, roles []string) map[string]Result {
	out := make(map[string]Result, len(images))
	groups := map[target]*repoGroup{}
	var order []*repoGroup
	for _, s := range images {
		img, err := imageref.Parse(s)
		switch {
		case err != nil:
			cause := err
			if invalid, ok := errors.AsType[*imageref.InvalidReferenceError](err); ok {
				cause = invalid.Cause
			}
			out[s] = Result{Image: s, Verdict: VerdictNotPullable, Findings: []Finding{invalidReference(s, cause)}}
			continue
		case !img.IsECR():
			out[s] = Result{Image: s, Verdict: VerdictSkipped, Findings: []Finding{skipped(img.SkipReason)}}
			continue
		}
		t := targetOf(img)
		g, ok := groups[t]
		if !ok {
			g = &repoGroup{target: t}
			groups[t] = g
			order = append(order, g)
		}
		g.images = append(g.images, img)
	}
	if len(order) == 0 {
		return out
	}
	// Role policies are looked up once per check, shared by every
	// repository, while the repositories' own lookups run: a cold admission
	// waits for the slowest chain, not for the sum of them.
	var roleInfo []roleAnswer
	rolesDone := make(chan struct{})
	go func() {
		defer close(rolesDone)
		roleInfo = e.lookupRoles(ctx, roles)
	}()
	awaitRoles := func() []roleAnswer {
		<-rolesDone
		return roleInfo
	}

	results := make([][]Result, len(order))
	eg := errgroup.Group{}
	eg.SetLimit(e.concurrency)
	for i, g := range order {
		if ctx.Err() != nil {
			// Out of time: the rest is answered at once, with no lookup.
			results[i] = outOfTime(g, ctx.Err())
			continue
		}
		eg.Go(func() error {
			results[i] = e.checkRepository(ctx, g, len(roles) > 0, awaitRoles)
			return nil
		})
	}
	_ = eg.Wait() // the goroutines never fail: errors are findings
	for _, rs := range results {
		for _, r := range rs {
			out[r.Image] = r
		}
	}
	return out
}

// outOfTime answers for g's images when the check's time ran out before
// they were looked at.
func outOfTime(g *repoGroup, err error) []Result {
	ans := &repoAnswer{images: g.images, perImage: make([][]Finding, len(g.images))}
	ans.addAll(lookupFailed("checking "+g.target.Name, err))
	return ans.results()
}

// roleAnswer is a role's policies, or why they are not known.
type roleAnswer struct {
	policies rolePolicies
	problem  *Finding // a LookupFailed finding, when the role could not be read
}

func (e *Engine) lookupRoles(ctx context.Context, roles []string) []roleAnswer {
	out := make([]roleAnswer, len(roles))
	eg := errgroup.Group{}
	for i, arn := range roles {
		eg.Go(func() error {
			out[i] = e.lookupRole(ctx, arn)
			return nil
		})
	}
	_ = eg.Wait()
	return out
}

func (e *Engine) lookupRole(ctx context.Context, arn string) roleAnswer {
	role, err := awsclient.ParseRoleARN(arn)
	if err != nil {
		f := roleNotFound(arn)
		return roleAnswer{problem: &f}
	}
	rp, err := e.lookups.RolePolicies(ctx, arn)
	if err != nil {
		what := "reading the policies of role " + role.Name
		e.logLookupFailure(ctx, what, err)
		f := lookupFailed(what, err)
		if errors.Is(err, awsclient.ErrRoleNotFound) {
			f = roleNotFound(arn)
		}
		f.Role = arn
		return roleAnswer{problem: &f}
	}
	ans := roleAnswer{policies: rolePolicies{ARN: arn, Role: role, Tags: rp.Tags}}
	var broken []string
	for _, p := range slices.Concat(rp.Attached, rp.Inline) {
		parsed, err := e.policies.identity(p.Document)
		if err != nil {
			broken = append(broken, fmt.Sprintf("%s: %v", p.Name, err))
			continue
		}
		ans.policies.Identity = append(ans.policies.Identity, namedPolicy(p.Name, parsed))
	}
	if rp.Boundary != nil {
		parsed, err := e.policies.boundary(rp.Boundary.Document)
		if err != nil {
			broken = append(broken, fmt.Sprintf("boundary %s: %v", rp.Boundary.Name, err))
		} else {
			b := namedPolicy(rp.Boundary.Name, parsed)
			ans.policies.Boundary = &b
		}
	}
	if len(broken) > 0 {
		// Judging on part of a role's policies could invent a denial.
		f := roleUnreadable(arn, broken)
		ans.problem = &f
	}
	return ans
}

// repoAnswer collects the findings of one repository: those about every
// image, and those about some.
type repoAnswer struct {
	images   []imageref.Image
	shared   []Finding
	perImage [][]Finding
}

func (a *repoAnswer) addAll(fs ...Finding) { a.shared = append(a.shared, fs...) }

func (a *repoAnswer) add(j int, fs ...Finding) { a.perImage[j] = append(a.perImage[j], fs...) }

// results puts each image's findings in order: its own first, as found,
// then the shared ones.
func (a *repoAnswer) results() []Result {
	out := make([]Result, len(a.images))
	for j, img := range a.images {
		fs := slices.Concat(a.perImage[j], a.shared)
		if fs == nil {
			fs = []Finding{}
		}
		out[j] = Result{Image: img.Original, Verdict: verdictOf(fs), Findings: fs}
	}
	return out
}

// checkRepository answers for the images of one repository. awaitRoles
// blocks until the candidate roles' policies are known.
func (e *Engine) checkRepository(ctx context.Context, g *repoGroup, withRoles bool, awaitRoles func() []roleAnswer) []Result {
	t := g.target
	ans := &repoAnswer{images: g.images, perImage: make([][]Finding, len(g.images))}

	ids := make([]awsclient.ImageID, len(g.images))
	for j, img := range g.images {
		ids[j] = awsclient.ImageID{Tag: img.Tag, Digest: img.Digest}
		if img.Digest != "" {
			ids[j].Tag = "" // the runtime pulls by digest and ignores the tag
		}
	}
	// Existence and the resource policies are independent lookups.
	var (
		found    []awsclient.ImageDetail
		missing  []awsclient.ImageID
		err      error
		res      resourcePolicies
		problems []Finding
		wg       sync.WaitGroup
	)
	wg.Go(func() { found, missing, err = e.lookups.DescribeImages(ctx, t.Repository, ids) })
	if e.lifecycle != nil {
		// Warms the cache (or joins the call in flight) for expiryFindings.
		wg.Go(func() { _, _, _ = e.lifecycle.Lookups.LifecyclePolicy(ctx, t.Repository) })
	}
	if withRoles {
		wg.Go(func() { res, problems = e.resourcePolicies(ctx, t) })
	}
	wg.Wait()

	if errors.Is(err, awsclient.ErrRepositoryNotFound) || res.RepositoryMissing {
		e.missingRepository(ctx, g, ans, withRoles, res, problems, awaitRoles)
		return ans.results()
	}
	if err != nil {
		ans.addAll(e.lookupFailed(ctx, t, "checking that the image exists in "+t.Name, err))
	}
	// imports marks the images a pull-through cache rule will import on
	// the first pull: their pull also needs ecr:BatchImportUpstreamImage.
	var imports []int
	var cache cacheRule
	// live are the images found that can be pulled now, by index live[k]
	// of g.images: what a lifecycle rule may still expire.
	var live []awsclient.ImageDetail
	var liveAt []int
	for j, id := range ids {
		if d, ok := detailOf(found, id); ok {
			switch d.Status {
			case imageStatusArchived:
				ans.add(j, imageArchived(t, d.Digest, false))
			case imageStatusActivating:
				ans.add(j, imageArchived(t, d.Digest, true))
			default:
				live, liveAt = append(live, d), append(liveAt, j)
			}
			continue
		}
		if !slices.Contains(missing, id) {
			continue
		}
		if !cache.looked {
			cache = e.cacheRuleFor(ctx, g)
		}
		f, imported := cache.missingImage(g.images[j], t, withRoles)
		ans.add(j, f)
		if imported {
			imports = append(imports, j)
		}
	}

	for k, fs := range e.expiryFindings(ctx, t, live) {
		ans.add(liveAt[k], fs...)
	}

	if !withRoles {
		return ans.results()
	}
	ans.addAll(problems...)
	for _, role := range awaitRoles() {
		if role.problem != nil {
			// What could not be read leaves the answer unknown.
			ans.addAll(*role.problem)
			continue
		}
		ans.addAll(e.decider.evaluatePull(t, role.policies, res)...)
		if len(imports) > 0 {
			imported := e.decider.evaluateImport(t, cache, role.policies, res, false)
			for _, j := range imports {
				ans.add(j, imported...)
			}
		}
	}
	return ans.results()
}

func detailOf(found []awsclient.ImageDetail, id awsclient.ImageID) (awsclient.ImageDetail, bool) {
	i := slices.IndexFunc(found, func(d awsclient.ImageDetail) bool { return d.ID == id })
	if i < 0 {
		return awsclient.ImageDetail{}, false
	}
	return found[i], true
}

// ECR image statuses (DescribeImages' imageStatus) that stop a pull.
const (
	imageStatusArchived   = "ARCHIVED"
	imageStatusActivating = "ACTIVATING"
)

// resourcePolicies fetches the repository policy and the registry policy
// with, when it could decide a pull, its scope. Problems are LookupFailed
// findings; what they are about is Unknown in the answer.
func (e *Engine) resourcePolicies(ctx context.Context, t target) (resourcePolicies, []Finding) {
	res := resourcePolicies{RegistryScope: scopeV1}
	var problems []Finding
	text, found, err := e.lookups.RepositoryPolicy(ctx, t.Repository)
	switch {
	case errors.Is(err, awsclient.ErrRepositoryNotFound):
		res.RepositoryMissing = true
	case err != nil:
		res.Repository.Unknown = true
		problems = append(problems, e.lookupFailed(ctx, t, "reading the repository policy of "+t.Name, err))
	case found:
		res.Repository, problems = e.resourcePolicy(text, repositoryPolicyName+t.Name, problems)
	}

	text, found, err = e.lookups.RegistryPolicy(ctx, t.Registry)
	switch {
	case errors.Is(err, awsclient.ErrNotOwnAccount):
		// Registry settings of another account are invisible without an
		// assumed role there. Under the default scope (V1) they do not
		// govern pulls, so pulls are judged without them; pull-through
		// cache imports, which they always govern, stay undecided.
		e.log.DebugContext(ctx, "registry policy not readable", "account", t.Account)
		res.Registry.Unknown = true
		return res, problems
	case err != nil:
		res.Registry.Unknown, res.RegistryScope = true, scopeUnknown
		problems = append(problems, e.lookupFailed(ctx, t, "reading the registry policy of account "+t.Account, err))
		return res, problems
	case !found:
		return res, problems
	}
	res.Registry, problems = e.resourcePolicy(text, registryPolicyName+t.Account, problems)
	if res.Registry.Unknown {
		res.RegistryScope = scopeUnknown
		return res, problems
	}
	if !slices.ContainsFunc(repositoryActions, res.Registry.Policy.Policy.CoversAction) {
		// Only about replication, pull-through cache, ...: whatever its
		// scope, it cannot decide a pull.
		return res, problems
	}
	scope, err := e.lookups.RegistryPolicyScope(ctx, t.Registry)
	if err != nil {
		// The policy may or may not govern pulls: answers that depend on
		// it stay undecided.
		problems = append(problems, e.lookupFailed(ctx, t, "reading the registry policy scope of account "+t.Account, err))
		scope = scopeUnknown
	}
	res.RegistryScope = scope
	return res, problems
}

// resourcePolicy parses a resource policy's text; a document we cannot
// parse is unknown, with a LookupFailed finding appended to problems.
func (e *Engine) resourcePolicy(text, name string, problems []Finding) (policyInput, []Finding) {
	p, err := e.policies.resource(text)
	if err != nil {
		return policyInput{Unknown: true}, append(problems, brokenPolicy(name, err))
	}
	n := namedPolicy(name, p)
	return knownPolicy(&n), problems
}

// lookupFailed is lookupFailed for a lookup about registry t: when our
// credentials were refused and t may be in another account, it asks whose
// account we act as, to point the fix at the right side.
func (e *Engine) lookupFailed(ctx context.Context, t target, what string, err error) Finding {
	e.logLookupFailure(ctx, what, err)
	f := lookupFailed(what, err)
	le, ok := errors.AsType[*awsclient.LookupError](err)
	if !ok || le.Class != awsclient.ClassAccessDenied || errors.Is(err, awsclient.ErrNotOwnAccount) {
		return f
	}
	caller, cerr := e.lookups.CallerAccount(ctx, t.Account)
	return refusedElsewhere(f, what, t, caller, cerr == nil)
}

// verdictOf: an error finding is definite; a warning leaves it unknown,
// except advice about tomorrow (Advisory), which leaves today's answer be.
func verdictOf(findings []Finding) Verdict {
	v := VerdictPullable
	for _, f := range findings {
		if Advisory(f) {
			continue
		}
		switch f.Severity {
		case SeverityError:
			return VerdictNotPullable
		case SeverityWarning:
			v = VerdictUnknown
		}
	}
	return v
}

// Advisory says whether f is about the future rather than today's pull
// (ImageExpiring, ImageExpired): a warning that never changes a verdict.
func Advisory(f Finding) bool {
	return f.Code == CodeImageExpiring || f.Code == CodeImageExpired
}

// normalizeRoles sorts and de-duplicates roles so that the cache key does
// not depend on the order they were configured in.
func normalizeRoles(roles []string) []string {
	if len(roles) <= 1 {
		return roles
	}
	out := slices.Clone(roles)
	slices.Sort(out)
	return slices.Compact(out)
}
