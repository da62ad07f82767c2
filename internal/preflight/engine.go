package preflight

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	DescribeImages(ctx context.Context, region, registryID, repo string, ids []awsclient.ImageID) (found []awsclient.ImageDetail, missing []awsclient.ImageID, err error)
	RepositoryPolicy(ctx context.Context, region, registryID, repo string) (text string, found bool, err error)
	RegistryPolicy(ctx context.Context, region, registryID string) (text string, found bool, err error)
	RegistryPolicyScope(ctx context.Context, region, registryID string) (string, error)
	PullThroughCacheRules(ctx context.Context, region, registryID string) ([]awsclient.PullThroughCacheRule, error)
	RolePolicies(ctx context.Context, roleARN string) (awsclient.RolePolicies, error)
}

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
	// without asking the lookups at all. Default 30s; negative disables.
	ResultTTL time.Duration
	// ReverifyInterval throttles the fresh re-check of not-pullable answers
	// to once per interval per image and roles. Zero (the default) re-checks
	// every time: a user who just fixed a policy and re-applies must not be
	// refused on a stale answer, and the re-checks are de-duplicated and
	// happen only for images that would be rejected or warned about.
	ReverifyInterval time.Duration
	// Concurrency bounds the repositories checked at once. Default 8.
	Concurrency int
	// Logger receives per-check debug logs. Default: discard.
	Logger *slog.Logger
}

// Engine answers whether images will pull for candidate node roles. It is
// safe for concurrent use.
type Engine struct {
	lookups     Lookups
	decider     decider
	log         *slog.Logger
	concurrency int
	resultTTL   time.Duration
	reverify    time.Duration

	// results holds whole answers that may be reused (pullable, skipped,
	// invalid references), so a warm admission costs a map lookup.
	results *gocache.Cache
	// reverified marks answers re-checked with fresh AWS data recently (only
	// when ReverifyInterval is set).
	reverified *gocache.Cache
	policies   *policyCache
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
		o.ResultTTL = 30 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{
		lookups:     o.Lookups,
		decider:     decider{context: o.Context, now: o.Now},
		log:         o.Logger,
		concurrency: o.Concurrency,
		resultTTL:   o.ResultTTL,
		reverify:    o.ReverifyInterval,
		results:     gocache.New(o.ResultTTL, time.Minute),
		reverified:  gocache.New(max(o.ReverifyInterval, time.Millisecond), time.Minute),
		policies:    newPolicyCache(),
	}, nil
}

// Check answers for each image (in order) whether a kubelet running as any
// of roles (IAM role ARNs) will pull it. With no roles only existence is
// checked. Results are shared with the engine's cache: treat them as
// read-only.
func (e *Engine) Check(ctx context.Context, images []string, roles []string) []Result {
	roles = normalizeRoles(roles)
	rolesKey := strings.Join(roles, ",")
	out := make([]Result, len(images))
	var pending []int
	for i, img := range images {
		if r, ok := e.results.Get(img + "\x00" + rolesKey); ok {
			out[i] = r.(Result)
			continue
		}
		pending = append(pending, i)
	}
	if len(pending) == 0 {
		return out
	}

	todo := make([]string, len(pending))
	for j, i := range pending {
		todo[j] = images[i]
	}
	fresh := e.check(ctx, todo, roles)

	// A rejection must not rest on stale cached answers: re-check the
	// not-pullable ones with fresh AWS data.
	var again []int
	for j, r := range fresh {
		key := todo[j] + "\x00" + rolesKey
		if r.Verdict == VerdictNotPullable && ctx.Err() == nil {
			if e.reverify > 0 {
				if _, recent := e.reverified.Get(key); recent {
					continue
				}
				e.reverified.SetDefault(key, true)
			}
			again = append(again, j)
		}
	}
	if len(again) > 0 {
		imgs := make([]string, len(again))
		for k, j := range again {
			imgs[k] = todo[j]
		}
		for k, r := range e.check(awsclient.WithFresh(ctx), imgs, roles) {
			fresh[again[k]] = r
		}
	}

	for j, i := range pending {
		r := fresh[j]
		out[i] = r
		if e.resultTTL > 0 && cacheable(r) {
			e.results.SetDefault(todo[j]+"\x00"+rolesKey, r)
		}
	}
	return out
}

// cacheable: answers that no later AWS change can turn into a rejection
// the user should see at once. Not-pullable answers are always re-derived.
func cacheable(r Result) bool {
	switch r.Verdict {
	case VerdictPullable, VerdictSkipped:
		return true
	case VerdictNotPullable:
		return len(r.Findings) > 0 && r.Findings[0].Code == CodeInvalidImageReference
	}
	return false
}

// repoKey groups images of one repository so one DescribeImages call
// serves them all.
type repoKey struct{ region, account, repo string }

type repoGroup struct {
	key     repoKey
	target  target
	images  []imageref.Image
	indexes []int
}

func (e *Engine) check(ctx context.Context, images []string, roles []string) []Result {
	out := make([]Result, len(images))
	groups := map[repoKey]*repoGroup{}
	var order []repoKey
	for i, s := range images {
		img, err := imageref.Parse(s)
		switch {
		case err != nil:
			cause := err
			if invalid := (*imageref.InvalidReferenceError)(nil); errors.As(err, &invalid) {
				cause = invalid.Cause
			}
			out[i] = Result{Image: s, Verdict: VerdictNotPullable, Findings: []Finding{{
				Code: CodeInvalidImageReference, Severity: SeverityError,
				Message: fmt.Sprintf("%q is not a valid image reference: %v", s, cause),
				Fix:     "write it as REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]: a lower-case repository, a tag of at most 128 characters, a digest of 64 hex digits",
			}}}
			continue
		case !img.IsECR():
			out[i] = Result{Image: s, Verdict: VerdictSkipped, Findings: []Finding{{
				Code: CodeSkipped, Severity: SeverityInfo, Message: fmt.Sprintf("%s: %s", s, img.SkipReason),
			}}}
			continue
		}
		k := repoKey{img.Region, img.Account, img.Repository}
		g, ok := groups[k]
		if !ok {
			g = &repoGroup{key: k, target: target{
				Repository: img.Repository, RepositoryARN: img.RepositoryARN(), Account: img.Account, Region: img.Region,
			}}
			groups[k] = g
			order = append(order, k)
		}
		g.images = append(g.images, img)
		g.indexes = append(g.indexes, i)
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

	var mu sync.Mutex
	eg := errgroup.Group{}
	eg.SetLimit(e.concurrency)
	for _, k := range order {
		g := groups[k]
		eg.Go(func() error {
			results := e.checkRepository(ctx, g, len(roles) > 0, awaitRoles)
			mu.Lock()
			for j, i := range g.indexes {
				out[i] = results[j]
			}
			mu.Unlock()
			return nil
		})
	}
	_ = eg.Wait() // the goroutines never fail: errors are findings
	return out
}

// roleAnswer is a role's policies, or why they are not known.
type roleAnswer struct {
	arn      string
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
	ans := roleAnswer{arn: arn}
	rp, err := e.lookups.RolePolicies(ctx, arn)
	if err != nil {
		f := lookupFailed(fmt.Sprintf("reading the policies of role %s", roleName(arn)), err)
		f.Role = arn
		if errors.Is(err, awsclient.ErrRoleNotFound) {
			f.Message = fmt.Sprintf("node role %s does not exist (or our credentials cannot see it)", arn)
			f.Fix = "check the configured node role ARN (--node-role-arn)"
		}
		ans.problem = &f
		return ans
	}
	ans.policies = rolePolicies{ARN: arn, Tags: rp.Tags}
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
		ans.problem = &Finding{
			Code: CodeLookupFailed, Severity: SeverityWarning, Role: arn,
			Message: fmt.Sprintf("could not read policies of role %s: %s", roleName(arn), strings.Join(broken, "; ")),
			Fix:     "report this policy document: AWS accepted it, so ecr-preflight should too",
		}
	}
	return ans
}

// checkRepository answers for the images of one repository. awaitRoles
// blocks until the candidate roles' policies are known.
func (e *Engine) checkRepository(ctx context.Context, g *repoGroup, withRoles bool, awaitRoles func() []roleAnswer) []Result {
	t := g.target
	results := make([]Result, len(g.images))
	for j, img := range g.images {
		results[j] = Result{Image: img.Original, Findings: []Finding{}}
	}
	addAll := func(f Finding) {
		for j := range results {
			f := f
			f.Message = results[j].Image + ": " + f.Message
			results[j].Findings = append(results[j].Findings, f)
		}
	}

	// Existence.
	ids := make([]awsclient.ImageID, len(g.images))
	for j, img := range g.images {
		ids[j] = awsclient.ImageID{Tag: img.Tag, Digest: img.Digest}
		if img.Digest != "" {
			ids[j].Tag = "" // the runtime pulls by digest and ignores the tag
		}
	}
	// Existence and the resource policies are independent lookups.
	var (
		missing  []awsclient.ImageID
		err      error
		res      resourcePolicies
		problems []Finding
		wg       sync.WaitGroup
	)
	wg.Go(func() { _, missing, err = e.lookups.DescribeImages(ctx, t.Region, t.Account, t.Repository, ids) })
	if withRoles {
		wg.Go(func() { res, problems = e.resourcePolicies(ctx, t) })
	}
	wg.Wait()
	repositoryExists := true
	switch {
	case errors.Is(err, awsclient.ErrRepositoryNotFound):
		repositoryExists = false
		f := e.repositoryNotFound(ctx, g)
		addAll(f)
	case err != nil:
		addAll(lookupFailed(fmt.Sprintf("checking that the image exists in %s", t.Repository), err))
	default:
		for j, id := range ids {
			if slices.Contains(missing, id) {
				results[j].Findings = append(results[j].Findings, imageNotFound(g.images[j], t))
			}
		}
	}

	// Pullability: only meaningful once the repository may exist.
	if repositoryExists && withRoles {
		for _, p := range problems {
			addAll(p)
		}
		for _, role := range awaitRoles() {
			if role.problem != nil {
				// Judging on part of a role's policies could invent a
				// denial; what could not be read leaves the answer unknown.
				addAll(*role.problem)
				continue
			}
			for j := range results {
				results[j].Findings = append(results[j].Findings, e.decider.evaluatePull(results[j].Image, t, role.policies, res)...)
			}
		}
	}
	for j := range results {
		results[j].Verdict = verdictOf(results[j].Findings)
	}
	return results
}

// resourcePolicies fetches the repository policy and, when its scope covers
// pulls, the registry policy. Problems are LookupFailed findings.
func (e *Engine) resourcePolicies(ctx context.Context, t target) (resourcePolicies, []Finding) {
	var res resourcePolicies
	var problems []Finding
	text, found, err := e.lookups.RepositoryPolicy(ctx, t.Region, t.Account, t.Repository)
	switch {
	case err != nil:
		problems = append(problems, lookupFailed(fmt.Sprintf("reading the repository policy of %s", t.Repository), err))
	case found:
		p, perr := e.policies.resource(text)
		if perr != nil {
			problems = append(problems, brokenPolicy("the repository policy of "+t.Repository, perr))
		} else {
			n := namedPolicy("the repository policy of "+t.Repository, p)
			res.Repository = &n
		}
	}

	text, found, err = e.lookups.RegistryPolicy(ctx, t.Region, t.Account)
	switch {
	case errors.Is(err, awsclient.ErrNotOwnAccount):
		// Registry settings of another account are invisible without an
		// assumed role there; under the default scope they do not govern
		// pulls, so this is logged, not reported.
		e.log.DebugContext(ctx, "registry policy not readable", "account", t.Account)
		return res, problems
	case err != nil:
		problems = append(problems, lookupFailed("reading the registry policy of account "+t.Account, err))
		return res, problems
	case !found:
		return res, problems
	}
	p, perr := e.policies.resource(text)
	if perr != nil {
		problems = append(problems, brokenPolicy("the registry policy of account "+t.Account, perr))
		return res, problems
	}
	if !slices.ContainsFunc(repositoryActions, p.CoversAction) {
		// Only about replication, pull-through cache, ...: whatever its
		// scope, it cannot decide a pull.
		return res, problems
	}
	scope, err := e.lookups.RegistryPolicyScope(ctx, t.Region, t.Account)
	if err != nil {
		// Without the scope, apply the policy (V2 is the stricter reading)
		// and say the answer rests on that assumption.
		f := lookupFailed("reading the registry policy scope of account "+t.Account, err)
		f.Message += "; assuming the registry policy applies to pulls"
		problems = append(problems, f)
		scope = "V2"
	}
	if scope == "V2" {
		n := namedPolicy("the registry policy of account "+t.Account, p)
		res.Registry = &n
	}
	return res, problems
}

// repositoryNotFound explains a missing repository, recognising a
// pull-through-cache repository that ECR creates on first pull.
func (e *Engine) repositoryNotFound(ctx context.Context, g *repoGroup) Finding {
	t := g.target
	img := g.images[0]
	f := Finding{
		Code: CodeRepositoryNotFound, Severity: SeverityError,
		Message: fmt.Sprintf("repository %s does not exist in registry %s (%s)", t.Repository, t.Account, t.Region),
		Fix: fmt.Sprintf("check the repository name, or create it in account %s: aws ecr create-repository --repository-name %s --region %s",
			t.Account, t.Repository, t.Region),
	}
	rules, err := e.lookups.PullThroughCacheRules(ctx, t.Region, t.Account)
	var prefixes []string
	for _, r := range rules {
		prefixes = append(prefixes, r.EcrRepositoryPrefix)
	}
	if ptc, ok := img.MatchPullThroughCachePrefix(prefixes); ok && err == nil {
		f.Severity = SeverityWarning
		f.Message = fmt.Sprintf("repository %s does not exist yet; the pull-through cache rule for prefix %q creates it on the first pull", t.Repository, ptc.Prefix)
		f.Fix = "make sure the node role may ecr:CreateRepository and ecr:BatchImportUpstreamImage under that prefix"
		return f
	}
	prefix, _, nested := strings.Cut(t.Repository, "/")
	if err == nil || !nested {
		// A pull-through cache repository always sits under a prefix.
		return f
	}
	// A rule we could not read may create it on the first pull: could not
	// check is not cannot pull.
	cause := err.Error()
	if le := (*awsclient.LookupError)(nil); errors.As(err, &le) {
		cause = le.Brief()
	}
	f.Severity = SeverityWarning
	f.Message = fmt.Sprintf("repository %s does not exist; if it is under a pull-through cache prefix such as %q it is created on the first pull (the rules could not be read: %s)",
		t.Repository, prefix, cause)
	return f
}

func imageNotFound(img imageref.Image, t target) Finding {
	what, flag := "tag "+img.Tag, "imageTag="+img.Tag
	if img.Digest != "" {
		what, flag = "digest "+img.Digest, "imageDigest="+img.Digest
	}
	return Finding{
		Code: CodeImageNotFound, Severity: SeverityError,
		Message: fmt.Sprintf("%s: %s does not exist in repository %s", img.Original, what, t.Repository),
		Fix: fmt.Sprintf("push the image, or fix the reference (aws ecr describe-images --registry-id %s --repository-name %s --region %s --image-ids %s)",
			t.Account, t.Repository, t.Region, flag),
	}
}

// lookupFailed turns an AWS failure into a warning: "could not check" is
// never "cannot pull".
func lookupFailed(what string, err error) Finding {
	f := Finding{Code: CodeLookupFailed, Severity: SeverityWarning, Message: fmt.Sprintf("%s failed: %v", what, err)}
	var le *awsclient.LookupError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		f.Message = what + ": could not verify in time"
		f.Fix = "retry; if it persists, check the network path to AWS (and --aws-call-timeout)"
	case errors.As(err, &le) && le.Class == awsclient.ClassAccessDenied:
		f.Message = fmt.Sprintf("%s: our credentials are not allowed %s", what, le.Action)
		f.Fix = fmt.Sprintf("grant %s to ecr-preflight's own IAM role", le.Action)
	case errors.As(err, &le) && le.Class == awsclient.ClassNoCredentials:
		f.Message = what + ": ecr-preflight has no AWS credentials"
		f.Fix = "give ecr-preflight credentials: IRSA or EKS Pod Identity in a cluster; AWS_PROFILE or AWS_ACCESS_KEY_ID locally"
	case errors.As(err, &le) && le.Class == awsclient.ClassThrottled:
		f.Message = what + ": AWS throttled the lookup"
		f.Fix = "retry; raise the cache TTLs if this is frequent"
	case errors.As(err, &le):
		f.Message = what + ": " + le.Brief()
		f.Fix = "retry; check ecr-preflight's AWS credentials and network"
	default:
		f.Fix = "retry; check ecr-preflight's AWS credentials and network"
	}
	return f
}

func brokenPolicy(what string, err error) Finding {
	return Finding{
		Code: CodeLookupFailed, Severity: SeverityWarning,
		Message: fmt.Sprintf("%s could not be parsed: %v", what, err),
		Fix:     "report this policy document: AWS accepted it, so ecr-preflight should too",
	}
}

// verdictOf: an error finding is definite; a warning leaves it unknown.
func verdictOf(findings []Finding) Verdict {
	v := VerdictPullable
	for _, f := range findings {
		switch f.Severity {
		case SeverityError:
			return VerdictNotPullable
		case SeverityWarning:
			v = VerdictUnknown
		}
	}
	return v
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
