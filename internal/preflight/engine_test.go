package preflight

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
)

// fakeLookups answers from maps and counts calls. A zero value has no
// repositories and no roles.
type fakeLookups struct {
	mu sync.Mutex
	// images: repository name -> tags and digests that exist. A repository
	// absent from the map does not exist.
	images map[string][]string
	// statuses: tag or digest -> ECR image status, when not ACTIVE.
	statuses map[string]string
	// repoPolicies: repository name -> policy text.
	repoPolicies map[string]string
	registry     string
	// scope is the registry policy scope; "" means V2.
	scope       string
	roles       map[string]awsclient.RolePolicies
	ptcPrefixes []string
	ptcRules    []awsclient.PullThroughCacheRule
	ptcErr      error
	scopeErr    error
	scopeCalls  atomic.Int32
	// caller is the account our credentials act as; "" means seedAccount.
	caller string
	// fail makes the named lookup (a method name) fail with its error.
	fail map[string]error

	describeErr error
	// block makes every call wait for its context to end.
	block bool

	describeCalls atomic.Int32
	calls         atomic.Int32
	describeIDs   [][]awsclient.ImageID
}

func (f *fakeLookups) wait(ctx context.Context, op string) error {
	f.calls.Add(1)
	if f.block {
		<-ctx.Done()
		return &awsclient.LookupError{What: "blocked", Class: awsclient.ClassTimeout, Err: ctx.Err()}
	}
	return f.fail[op]
}

func (f *fakeLookups) DescribeImages(ctx context.Context, r awsclient.Repository, ids []awsclient.ImageID) ([]awsclient.ImageDetail, []awsclient.ImageID, error) {
	f.describeCalls.Add(1)
	f.mu.Lock()
	f.describeIDs = append(f.describeIDs, ids)
	f.mu.Unlock()
	if err := f.wait(ctx, "DescribeImages"); err != nil {
		return nil, nil, err
	}
	if f.describeErr != nil {
		return nil, nil, f.describeErr
	}
	have, ok := f.images[r.Name]
	if !ok {
		return nil, nil, fmt.Errorf("describing images in %s: %w", r.Name, awsclient.ErrRepositoryNotFound)
	}
	var found []awsclient.ImageDetail
	var missing []awsclient.ImageID
	for _, id := range ids {
		if slices.Contains(have, id.Tag) || slices.Contains(have, id.Digest) {
			status := cmp.Or(f.statuses[id.Tag+id.Digest], "ACTIVE")
			found = append(found, awsclient.ImageDetail{ID: id, Digest: cmp.Or(id.Digest, "sha256:"+strings.Repeat("c", 64)), Status: status})
		} else {
			missing = append(missing, id)
		}
	}
	return found, missing, nil
}

func (f *fakeLookups) RepositoryPolicy(ctx context.Context, r awsclient.Repository) (string, bool, error) {
	if err := f.wait(ctx, "RepositoryPolicy"); err != nil {
		return "", false, err
	}
	if _, ok := f.images[r.Name]; !ok {
		return "", false, &awsclient.LookupError{What: "getting the repository policy of " + r.Name, Class: awsclient.ClassNotFound, Err: awsclient.ErrRepositoryNotFound}
	}
	p, ok := f.repoPolicies[r.Name]
	return p, ok, nil
}

func (f *fakeLookups) RegistryPolicy(ctx context.Context, _ awsclient.Registry) (string, bool, error) {
	if err := f.wait(ctx, "RegistryPolicy"); err != nil {
		return "", false, err
	}
	return f.registry, f.registry != "", nil
}

func (f *fakeLookups) RegistryPolicyScope(ctx context.Context, _ awsclient.Registry) (string, error) {
	f.scopeCalls.Add(1)
	if f.scopeErr != nil {
		return "", f.scopeErr
	}
	return cmp.Or(f.scope, "V2"), f.wait(ctx, "RegistryPolicyScope")
}

func (f *fakeLookups) PullThroughCacheRules(ctx context.Context, _ awsclient.Registry) ([]awsclient.PullThroughCacheRule, error) {
	rules := slices.Clone(f.ptcRules)
	for _, p := range f.ptcPrefixes {
		rules = append(rules, awsclient.PullThroughCacheRule{EcrRepositoryPrefix: p})
	}
	if f.ptcErr != nil {
		return nil, f.ptcErr
	}
	return rules, f.wait(ctx, "PullThroughCacheRules")
}

func (f *fakeLookups) CallerAccount(ctx context.Context, _ string) (string, error) {
	return cmp.Or(f.caller, seedAccount), f.wait(ctx, "CallerAccount")
}

func (f *fakeLookups) RolePolicies(ctx context.Context, arn string) (awsclient.RolePolicies, error) {
	if err := f.wait(ctx, "RolePolicies"); err != nil {
		return awsclient.RolePolicies{}, err
	}
	rp, ok := f.roles[arn]
	if !ok {
		return rp, fmt.Errorf("getting role %s: %w", arn, awsclient.ErrRoleNotFound)
	}
	return rp, nil
}

// seedLookups is the seed scenario: the image exists, the role has the
// read-only managed policy, the repository policy denies the role.
func seedLookups() *fakeLookups {
	return &fakeLookups{
		images:       map[string][]string{"retail-sample-app-ui": {"1.2.1", "sha256:" + strings.Repeat("a", 64)}},
		repoPolicies: map[string]string{"retail-sample-app-ui": seedDeny},
		roles: map[string]awsclient.RolePolicies{seedRole: {
			RoleARN:  seedRole,
			Attached: []awsclient.Policy{{Name: "AmazonEC2ContainerRegistryReadOnly", Document: readOnly}},
		}},
	}
}

func newTestEngine(t *testing.T, l Lookups) *Engine {
	t.Helper()
	e, err := New(Options{Lookups: l})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func codes(r Result) []Code {
	var out []Code
	for _, f := range r.Findings {
		out = append(out, f.Code)
	}
	return out
}

func TestCheck(t *testing.T) {
	const repo = "1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-ui"
	fixedPolicy := strings.Replace(seedDeny, `"Deny"`, `"Allow"`, 1)
	tests := map[string]struct {
		lookups func() *fakeLookups
		images  []string
		roles   []string
		verdict []Verdict
		codes   [][]Code
		// messages are fragments every result's findings must contain.
		messages []string
	}{
		"the seed image is not pullable because of statement new policy": {
			lookups: seedLookups, images: []string{seedImage}, roles: []string{seedRole},
			verdict: []Verdict{VerdictNotPullable}, codes: [][]Code{{CodeRepositoryPolicyDenies}},
		},
		"the seed fixed is pullable": {
			lookups: func() *fakeLookups {
				f := seedLookups()
				f.repoPolicies["retail-sample-app-ui"] = fixedPolicy
				return f
			},
			images: []string{seedImage}, roles: []string{seedRole},
			verdict: []Verdict{VerdictPullable}, codes: [][]Code{nil},
		},
		"a missing tag and a missing digest are ImageNotFound": {
			lookups: func() *fakeLookups { f := seedLookups(); f.repoPolicies = nil; return f },
			images:  []string{repo + ":9.9.9", repo + "@sha256:" + strings.Repeat("b", 64)}, roles: []string{seedRole},
			verdict: []Verdict{VerdictNotPullable, VerdictNotPullable}, codes: [][]Code{{CodeImageNotFound}, {CodeImageNotFound}},
		},
		"a missing repository is RepositoryNotFound and policies are not judged": {
			lookups: seedLookups, images: []string{"1234567890.dkr.ecr.us-west-2.amazonaws.com/nope:1"}, roles: []string{seedRole},
			verdict: []Verdict{VerdictNotPullable}, codes: [][]Code{{CodeRepositoryNotFound}},
		},
		"a pull-through cache repository not created yet is only a warning": {
			lookups: func() *fakeLookups { f := seedLookups(); f.ptcPrefixes = []string{"docker-hub"}; return f },
			images:  []string{"1234567890.dkr.ecr.us-west-2.amazonaws.com/docker-hub/library/nginx:1"},
			verdict: []Verdict{VerdictUnknown}, codes: [][]Code{{CodeRepositoryNotFound}},
		},
		"unreadable pull-through cache rules and a suggested prefix: only a warning": {
			lookups: func() *fakeLookups {
				f := seedLookups()
				f.ptcErr = awsErr("listing pull-through cache rules", "ecr:DescribePullThroughCacheRules", awsclient.ClassAccessDenied, "AccessDeniedException")
				return f
			},
			images:  []string{"1234567890.dkr.ecr.us-west-2.amazonaws.com/docker-hub/library/nginx:1"},
			verdict: []Verdict{VerdictUnknown}, codes: [][]Code{{CodeRepositoryNotFound}},
			messages: []string{"the rules could not be read: ecr:DescribePullThroughCacheRules failed: AccessDeniedException"},
		},
		"unreadable pull-through cache rules for a reason that is no AWS error: our words only": {
			lookups: func() *fakeLookups {
				f := seedLookups()
				f.ptcErr = errors.New("proxy " + internalHost + " refused")
				return f
			},
			images:  []string{"1234567890.dkr.ecr.us-west-2.amazonaws.com/docker-hub/library/nginx:1"},
			verdict: []Verdict{VerdictUnknown}, codes: [][]Code{{CodeRepositoryNotFound}},
			messages: []string{"the rules could not be read: unexpected error"},
		},
		"unreadable pull-through cache rules and any other prefix: only a warning too": {
			lookups: func() *fakeLookups {
				f := seedLookups()
				f.ptcErr = awsErr("listing pull-through cache rules", "ecr:DescribePullThroughCacheRules", awsclient.ClassAccessDenied, "AccessDeniedException")
				return f
			},
			images:  []string{"1234567890.dkr.ecr.us-west-2.amazonaws.com/team/app:1"},
			verdict: []Verdict{VerdictUnknown}, codes: [][]Code{{CodeRepositoryNotFound}},
			messages: []string{`if it is under a pull-through cache prefix such as "team"`, "the rules could not be read: ecr:DescribePullThroughCacheRules failed: AccessDeniedException"},
		},
		"unreadable pull-through cache rules cannot save an unnested repository": {
			lookups: func() *fakeLookups {
				f := seedLookups()
				f.ptcErr = awsErr("listing pull-through cache rules", "ecr:DescribePullThroughCacheRules", awsclient.ClassAccessDenied, "AccessDeniedException")
				return f
			},
			images:  []string{"1234567890.dkr.ecr.us-west-2.amazonaws.com/nope:1"},
			verdict: []Verdict{VerdictNotPullable}, codes: [][]Code{{CodeRepositoryNotFound}},
		},
		"images on other registries are skipped, not errors": {
			lookups: seedLookups, images: []string{"nginx:1.27", "public.ecr.aws/eks/aws-load-balancer-controller:v2", "ghcr.io/org/app:1"},
			verdict: []Verdict{VerdictSkipped, VerdictSkipped, VerdictSkipped}, codes: [][]Code{{CodeSkipped}, {CodeSkipped}, {CodeSkipped}},
		},
		"an unparsable reference is its own finding": {
			lookups: seedLookups, images: []string{"Not A Reference"},
			verdict: []Verdict{VerdictNotPullable}, codes: [][]Code{{CodeInvalidImageReference}},
			messages: []string{`"Not A Reference" is not a valid image reference: invalid reference format`},
		},
		"an AWS failure is unknown, never not-pullable": {
			lookups: func() *fakeLookups {
				f := seedLookups()
				f.repoPolicies = nil
				f.describeErr = awsErr("describing images", "ecr:DescribeImages", awsclient.ClassAccessDenied, "AccessDeniedException")
				return f
			},
			images: []string{seedImage}, roles: []string{seedRole},
			verdict: []Verdict{VerdictUnknown}, codes: [][]Code{{CodeLookupFailed}},
			messages: []string{"checking that the image exists in retail-sample-app-ui: our credentials are not allowed ecr:DescribeImages (AccessDeniedException)"},
		},
		"an unreachable AWS is unknown, naming the call and the network error once": {
			lookups: func() *fakeLookups {
				f := seedLookups()
				f.describeErr = &awsclient.LookupError{What: "describing images in retail-sample-app-ui", Action: "ecr:DescribeImages", Class: awsclient.ClassUnavailable,
					Err: fmt.Errorf("operation error ECR: DescribeImages: %w", &net.OpError{Op: "dial", Net: "tcp",
						Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 443}, Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}})}
				return f
			},
			images:  []string{seedImage},
			verdict: []Verdict{VerdictUnknown}, codes: [][]Code{{CodeLookupFailed}},
			messages: []string{"checking that the image exists in retail-sample-app-ui: ecr:DescribeImages failed: dial tcp: connect: connection refused"},
		},
		"no AWS credentials is unknown, and says so": {
			lookups: func() *fakeLookups {
				f := seedLookups()
				f.describeErr = &awsclient.LookupError{What: "describing images", Class: awsclient.ClassNoCredentials, Err: errors.New("get identity: no credentials")}
				return f
			},
			images:  []string{seedImage},
			verdict: []Verdict{VerdictUnknown}, codes: [][]Code{{CodeLookupFailed}},
			messages: []string{"has no AWS credentials"},
		},
		"a node role that does not exist leaves the answer unknown": {
			lookups: seedLookups, images: []string{seedImage}, roles: []string{"arn:aws:iam::1234567890:role/Ghost"},
			verdict: []Verdict{VerdictUnknown}, codes: [][]Code{{CodeLookupFailed}},
		},
		"one of two roles denied makes the image not pullable, naming that role": {
			lookups: func() *fakeLookups {
				f := seedLookups()
				f.roles["arn:aws:iam::1234567890:role/Other"] = awsclient.RolePolicies{Attached: []awsclient.Policy{{Name: "ro", Document: readOnly}}}
				return f
			},
			images: []string{seedImage}, roles: []string{"arn:aws:iam::1234567890:role/Other", seedRole},
			verdict: []Verdict{VerdictNotPullable}, codes: [][]Code{{CodeRepositoryPolicyDenies}},
		},
		"no roles: only existence is checked": {
			lookups: seedLookups, images: []string{seedImage},
			verdict: []Verdict{VerdictPullable}, codes: [][]Code{nil},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newTestEngine(t, tc.lookups())
			got := e.Check(context.Background(), tc.images, tc.roles)
			if len(got) != len(tc.images) {
				t.Fatalf("got %d results for %d images", len(got), len(tc.images))
			}
			for i, r := range got {
				if r.Image != tc.images[i] {
					t.Errorf("result %d is for %q, want %q", i, r.Image, tc.images[i])
				}
				if r.Verdict != tc.verdict[i] || !slices.Equal(codes(r), tc.codes[i]) {
					t.Errorf("result %d = %s %v, want %s %v; findings: %+v", i, r.Verdict, codes(r), tc.verdict[i], tc.codes[i], r.Findings)
				}
				for _, f := range r.Findings {
					// The Result names the image; messages never repeat it.
					if strings.Contains(f.Message, r.Image) && f.Code != CodeInvalidImageReference {
						t.Errorf("message %q names the image", f.Message)
					}
				}
				for _, m := range tc.messages {
					if !slices.ContainsFunc(r.Findings, func(f Finding) bool { return strings.Contains(f.Message, m) }) {
						t.Errorf("no finding says %q: %+v", m, r.Findings)
					}
				}
			}
		})
	}
}

func TestRegistryPolicyScopeMattersOnlyForPolicies(t *testing.T) {
	const replication = `{"Version":"2012-10-17","Statement":[{"Sid":"Replicate","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":"ecr:ReplicateImage","Resource":"*"}]}`
	const denyPulls = `{"Version":"2012-10-17","Statement":[{"Sid":"NoPulls","Effect":"Deny","Principal":"*","Action":"ecr:BatchGetImage","Resource":"*"}]}`
	tests := map[string]struct {
		registry  string
		verdict   Verdict
		codes     []Code
		asksScope bool
	}{
		"a replication-only registry policy: its scope is not even asked for": {replication, VerdictPullable, nil, false},
		"a pull Deny with an unreadable scope: it may not apply, so unknown":  {denyPulls, VerdictUnknown, []Code{CodeLookupFailed}, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := seedLookups()
			f.repoPolicies = nil
			f.registry = tc.registry
			f.scopeErr = awsErr("reading the registry policy scope", "ecr:GetAccountSetting", awsclient.ClassUnavailable, "ServerException")
			got := newTestEngine(t, f).Check(context.Background(), []string{seedImage}, []string{seedRole})[0]
			if got.Verdict != tc.verdict || !slices.Equal(codes(got), tc.codes) {
				t.Errorf("got %s %v, want %s %v: %+v", got.Verdict, codes(got), tc.verdict, tc.codes, got.Findings)
			}
			// A not-pullable answer is re-verified, so the scope may be asked twice.
			if asked := f.scopeCalls.Load() > 0; asked != tc.asksScope {
				t.Errorf("scope asked: %v, want %v", asked, tc.asksScope)
			}
		})
	}
}

func TestCheckBatchesOneRepositoryIntoOneCall(t *testing.T) {
	f := seedLookups()
	e := newTestEngine(t, f)
	const repo = "1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-ui"
	e.Check(context.Background(), []string{repo + ":1.2.1", repo + ":9", repo + "@sha256:" + strings.Repeat("a", 64)}, nil)
	// One call for the three, then one fresh re-check of the missing :9 only.
	if n := f.describeCalls.Load(); n != 2 {
		t.Fatalf("DescribeImages called %d times, want 2", n)
	}
	if got := len(f.describeIDs[0]); got != 3 {
		t.Fatalf("the first call asked for %d ids, want 3", got)
	}
	if got := f.describeIDs[1]; len(got) != 1 || got[0].Tag != "9" {
		t.Fatalf("the re-check asked for %v, want only tag 9", got)
	}
}

func TestCheckWarmCacheAsksNothing(t *testing.T) {
	f := seedLookups()
	f.repoPolicies = nil
	e := newTestEngine(t, f)
	first := e.Check(context.Background(), []string{seedImage}, []string{seedRole})
	if first[0].Verdict != VerdictPullable {
		t.Fatalf("verdict %s, want pullable: %+v", first[0].Verdict, first[0].Findings)
	}
	before := f.calls.Load()
	second := e.Check(context.Background(), []string{seedImage}, []string{seedRole})
	if f.calls.Load() != before {
		t.Fatalf("a warm check made %d lookups", f.calls.Load()-before)
	}
	if second[0].Verdict != VerdictPullable {
		t.Fatalf("warm verdict %s", second[0].Verdict)
	}
}

// TestCached: Cached answers from the result cache alone, exactly as a warm
// Check would, and only when every image is cached.
func TestCached(t *testing.T) {
	f := seedLookups()
	f.repoPolicies = nil
	e := newTestEngine(t, f)
	images := []string{seedImage, "nginx:1", seedImage}
	if _, ok := e.Cached(images, []string{seedRole}); ok {
		t.Fatal("a cold engine answered from its cache")
	}
	if _, ok := e.Cached(nil, []string{seedRole}); !ok {
		t.Error("no images, no answer: the empty answer is known")
	}
	e.Check(t.Context(), images[:1], []string{seedRole})
	if _, ok := e.Cached(images, []string{seedRole}); ok {
		t.Fatal("answered with an image never checked")
	}
	want := e.Check(t.Context(), images, []string{seedRole})
	before := f.calls.Load()
	got, ok := e.Cached(images, []string{seedRole, seedRole})
	if !ok {
		t.Fatal("a warm engine did not answer from its cache")
	}
	if f.calls.Load() != before {
		t.Errorf("Cached made %d lookups", f.calls.Load()-before)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Cached answered %+v, Check %+v", got, want)
	}
	if _, ok := e.Cached(images, []string{seedRole, "arn:aws:iam::1234567890:role/Other"}); ok {
		t.Error("answered for other roles from the answer for these")
	}

	// Rejections are never cached: Cached leaves them to Check.
	rejecting := newTestEngine(t, seedLookups())
	rejecting.Check(t.Context(), []string{seedImage}, []string{seedRole})
	if r, ok := rejecting.Cached([]string{seedImage}, []string{seedRole}); ok {
		t.Errorf("a rejection came from the cache: %+v", r)
	}
}

func TestCheckReverifiesRejections(t *testing.T) {
	f := seedLookups()
	e := newTestEngine(t, f)
	e.Check(context.Background(), []string{seedImage}, []string{seedRole})
	if n := f.describeCalls.Load(); n != 2 {
		t.Fatalf("a not-pullable answer was checked %d times, want 2 (once, then re-verified fresh)", n)
	}
	e.Check(context.Background(), []string{seedImage}, []string{seedRole})
	if n := f.describeCalls.Load(); n != 4 {
		t.Fatalf("a second rejection made %d DescribeImages calls in all, want 4: rejections are never cached", n)
	}
}

func TestCheckAnswersWhenAWSHangs(t *testing.T) {
	f := seedLookups()
	f.block = true
	e := newTestEngine(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	got := e.Check(ctx, []string{seedImage}, []string{seedRole})
	if got[0].Verdict != VerdictUnknown {
		t.Fatalf("verdict %s, want unknown: %+v", got[0].Verdict, got[0].Findings)
	}
	if !strings.Contains(got[0].Findings[0].Message, "could not verify in time") {
		t.Fatalf("message %q does not say the check ran out of time", got[0].Findings[0].Message)
	}
}

func TestNewRequiresLookups(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without Lookups succeeded")
	}
}

// TestCheckContract is what callers (the webhook) rely on without checking:
// one Result per image, in order, duplicates included, and a verdict that
// follows from the findings' severities.
func TestCheckContract(t *testing.T) {
	const repo = "1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-ui"
	images := []string{seedImage, "nginx:1", repo + ":9", seedImage, "Not A Reference", repo + ":9"}
	e := newTestEngine(t, seedLookups())
	for round := range 2 { // cold, then partly from the result cache
		got := e.Check(t.Context(), images, []string{seedRole})
		if len(got) != len(images) {
			t.Fatalf("round %d: %d results for %d images", round, len(got), len(images))
		}
		for i, r := range got {
			if r.Image != images[i] {
				t.Errorf("round %d: result %d is for %q, want %q", round, i, r.Image, images[i])
			}
			if r.Verdict != verdictOf(r.Findings) && r.Verdict != VerdictSkipped {
				t.Errorf("round %d: %s is %s but its findings say %s: %+v", round, r.Image, r.Verdict, verdictOf(r.Findings), r.Findings)
			}
		}
	}
}
