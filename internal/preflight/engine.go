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
	addAll := func(fs ...Finding) {
		for _, f := range fs {
			for j := range results {
				f := f
				f.Message = results[j].Image + ": " + f.Message
				results[j].Findings = append(results[j].Findings, f)
			}
		}
	}

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
	wg.Go(func() { found, missing, err = e.lookups.DescribeImages(ctx, t.Region, t.Account, t.Repository, ids) })
	if withRoles {
		wg.Go(func() { res, problems = e.resourcePolicies(ctx, t) })
	}
	wg.Wait()

	if errors.Is(err, awsclient.ErrRepositoryNotFound) || res.RepositoryMissing {
		e.missingRepository(ctx, g, results, addAll, withRoles, res, problems, awaitRoles)
		return withVerdicts(results)
	}
	if err != nil {
		addAll(e.lookupFailed(ctx, t, "checking that the image exists in "+t.Repository, err))
	}
	// imports marks the images a pull-through cache rule will import on
	// the first pull: their pull also needs ecr:BatchImportUpstreamImage.
	var imports []int
	var cache cacheRule
	for j, id := range ids {
		if d, ok := detailOf(found, id); ok {
			if f, bad := imageStatusFinding(g.images[j], t, d); bad {
				results[j].Findings = append(results[j].Findings, f)
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
		results[j].Findings = append(results[j].Findings, f)
		if imported {
			imports = append(imports, j)
		}
	}

	if !withRoles {
		return withVerdicts(results)
	}
	addAll(problems...)
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
		for _, j := range imports {
			results[j].Findings = append(results[j].Findings,
				e.decider.evaluateImport(results[j].Image, t, cache, role.policies, res, false)...)
		}
	}
	return withVerdicts(results)
}

func withVerdicts(results []Result) []Result {
	for j := range results {
		results[j].Verdict = verdictOf(results[j].Findings)
	}
	return results
}

func detailOf(found []awsclient.ImageDetail, id awsclient.ImageID) (awsclient.ImageDetail, bool) {
	i := slices.IndexFunc(found, func(d awsclient.ImageDetail) bool { return d.ID == id })
	if i < 0 {
		return awsclient.ImageDetail{}, false
	}
	return found[i], true
}

// resourcePolicies fetches the repository policy and the registry policy
// with, when it could decide a pull, its scope. Problems are LookupFailed
// findings; what they are about is Unknown in the answer.
func (e *Engine) resourcePolicies(ctx context.Context, t target) (resourcePolicies, []Finding) {
	res := resourcePolicies{RegistryScope: scopeV1}
	var problems []Finding
	text, found, err := e.lookups.RepositoryPolicy(ctx, t.Region, t.Account, t.Repository)
	switch {
	case errors.Is(err, awsclient.ErrRepositoryNotFound):
		res.RepositoryMissing = true
	case err != nil:
		res.Repository.Unknown = true
		problems = append(problems, e.lookupFailed(ctx, t, "reading the repository policy of "+t.Repository, err))
	case found:
		res.Repository, problems = e.resourcePolicy(text, "the repository policy of "+t.Repository, problems)
	}

	text, found, err = e.lookups.RegistryPolicy(ctx, t.Region, t.Account)
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
	res.Registry, problems = e.resourcePolicy(text, "the registry policy of account "+t.Account, problems)
	if res.Registry.Unknown {
		res.RegistryScope = scopeUnknown
		return res, problems
	}
	if !slices.ContainsFunc(repositoryActions, res.Registry.Policy.Policy.CoversAction) {
		// Only about replication, pull-through cache, ...: whatever its
		// scope, it cannot decide a pull.
		return res, problems
	}
	scope, err := e.lookups.RegistryPolicyScope(ctx, t.Region, t.Account)
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

// imageStatusFinding explains an image that exists but is not ACTIVE: ECR's
// archive tier keeps it, and a pull fails until it is restored.
func imageStatusFinding(img imageref.Image, t target, d awsclient.ImageDetail) (Finding, bool) {
	restore := fmt.Sprintf("aws ecr update-image-storage-class --registry-id %s --repository-name %s --region %s --image-id imageDigest=%s --target-storage-class STANDARD",
		t.Account, t.Repository, t.Region, d.Digest)
	switch d.Status {
	case imageStatusArchived:
		return Finding{
			Code: CodeImageArchived, Severity: SeverityError,
			Message: fmt.Sprintf("%s: image %s in repository %s is archived (by a lifecycle rule or by hand) and cannot be pulled until it is restored",
				img.Original, d.Digest, t.Repository),
			Fix: "restore it to the standard storage class, then wait until it is ACTIVE: " + restore,
		}, true
	case imageStatusActivating:
		return Finding{
			Code: CodeImageArchived, Severity: SeverityWarning,
			Message: fmt.Sprintf("%s: image %s in repository %s is being restored from the archive; it cannot be pulled until the restore completes",
				img.Original, d.Digest, t.Repository),
			Fix: fmt.Sprintf("wait until it is ACTIVE (aws ecr describe-images --registry-id %s --repository-name %s --region %s --image-ids imageDigest=%s --filter imageStatus=ANY)",
				t.Account, t.Repository, t.Region, d.Digest),
		}, true
	}
	return Finding{}, false
}

// ECR image statuses (DescribeImages' imageStatus).
const (
	imageStatusArchived   = "ARCHIVED"
	imageStatusActivating = "ACTIVATING"
)

// lookupFailed turns an AWS failure about t into a warning: "could not
// check" is never "cannot pull". When our own credentials were refused
// and t is in another account, the fix is on that account's side or an
// assumed role there: granting more to our role at home cannot help.
func (e *Engine) lookupFailed(ctx context.Context, t target, what string, err error) Finding {
	f := lookupFailed(what, err)
	var le *awsclient.LookupError
	if !errors.As(err, &le) || le.Class != awsclient.ClassAccessDenied || errors.Is(err, awsclient.ErrNotOwnAccount) {
		return f
	}
	assume := fmt.Sprintf("pass --assume-role %s=ROLE_ARN with a role in account %s that may %s", t.Account, t.Account, le.Action)
	grant := fmt.Sprintf("have account %s grant %s to our role (in the policy of %s)", t.Account, le.Action, t.Repository)
	caller, cerr := e.lookups.CallerAccount(ctx, t.Account)
	switch {
	case cerr != nil:
		f.Fix = fmt.Sprintf("grant %s to ecr-preflight's own IAM role; if registry %s is in another account, %s, or %s", le.Action, t.Account, assume, grant)
	case caller != t.Account:
		f.Message = fmt.Sprintf("%s: our credentials (account %s) are not allowed %s in account %s", what, caller, le.Action, t.Account)
		f.Fix = fmt.Sprintf("%s, or %s", assume, grant)
	}
	return f
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
