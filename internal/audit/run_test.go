package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
	"github.com/ecr-preflight/ecr-preflight/internal/workloads"
	"github.com/ecr-preflight/ecr-preflight/webhook"
)

// The webhook's pool providers place audit targets too (a test-only
// import: the audit itself does not depend on the webhook).
var (
	_ Placer = webhook.StaticRoles(nil)
	_ Placer = webhook.Pools{}
)

// checkCall is one CheckPools call a fakeChecker received.
type checkCall struct {
	placement string // the placement's first candidate role, or ""
	images    []string
}

// fakeChecker answers from verdicts (pullable by default) and records its
// calls and how many ran at once.
type fakeChecker struct {
	verdicts map[string]preflight.Verdict
	// hook, if set, runs first in every call, with the call's number (1-based).
	hook  func(n int)
	delay time.Duration

	mu                  sync.Mutex
	calls               []checkCall
	inFlight, maxFlight int
}

func (f *fakeChecker) CheckPools(_ context.Context, images []string, pl nodepools.Placement) []preflight.Result {
	f.mu.Lock()
	call := checkCall{images: slices.Clone(images)}
	if len(pl.Candidates) > 0 {
		call.placement = pl.Candidates[0].RoleARN
	}
	f.calls = append(f.calls, call)
	n := len(f.calls)
	f.inFlight++
	f.maxFlight = max(f.maxFlight, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if f.hook != nil {
		f.hook(n)
	}
	time.Sleep(f.delay)
	out := make([]preflight.Result, len(images))
	for i, img := range images {
		out[i] = answer(img, pl, cmp.Or(f.verdicts[img], preflight.VerdictPullable))
	}
	return out
}

// answer is the result the fake gives: its finding names the placement,
// so a test can tell which placement an item's answer was made for.
func answer(image string, pl nodepools.Placement, v preflight.Verdict) preflight.Result {
	role := ""
	if len(pl.Candidates) > 0 {
		role = pl.Candidates[0].RoleARN
	}
	return preflight.Result{Image: image, Verdict: v,
		Findings: []preflight.Finding{{Code: "Checked", Severity: preflight.SeverityInfo, Role: role}},
		Pools:    []preflight.PoolVerdict{{Role: role, Verdict: v}}}
}

func (f *fakeChecker) Calls() []checkCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// placeByNamespace places a template on the role named after its
// namespace; namespaces in fail cannot be placed.
type placeByNamespace struct{ fail map[string]error }

func (p placeByNamespace) Placement(_ context.Context, t nodepools.Template) (nodepools.Placement, error) {
	if err := p.fail[t.Namespace]; err != nil {
		return nodepools.Placement{}, err
	}
	return nodepools.Placement{Candidates: nodepools.RolePools([]string{roleFor(t.Namespace)})}, nil
}

func roleFor(ns string) string { return "arn:aws:iam::123456789012:role/" + ns }

func target(ns, name string, images ...string) Target {
	t := Target{
		Workload: Workload{Kind: "Deployment", APIVersion: "apps/v1", Namespace: ns, Name: name},
		Template: nodepools.Template{Namespace: ns},
	}
	for i, img := range images {
		t.Containers = append(t.Containers, workloads.Container{Name: fmt.Sprintf("c%d", i), Image: img})
	}
	return t
}

var fixedNow = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

func run(t *testing.T, ctx context.Context, targets []Target, o Options) (Report, error) {
	t.Helper()
	if o.Placer == nil {
		o.Placer = placeByNamespace{}
	}
	o.Now = func() time.Time { return fixedNow }
	return Run(ctx, targets, o)
}

// itemKeys are the report's items as "ns/name/container image verdict role".
func itemKeys(r Report) []string {
	var out []string
	for _, it := range r.Items {
		role := ""
		if len(it.Findings) > 0 {
			role = it.Findings[0].Role
		}
		out = append(out, fmt.Sprintf("%s/%s/%s %s %s %s", it.Workload.Namespace, it.Workload.Name, it.Container, it.Image, it.Verdict, role))
	}
	slices.Sort(out)
	return out
}

func TestRunChecksEachImageOncePerPlacement(t *testing.T) {
	checker := &fakeChecker{verdicts: map[string]preflight.Verdict{"gone:1": preflight.VerdictNotPullable}}
	targets := []Target{
		target("a", "web", "app:1", "sidecar:1"),
		target("a", "api", "app:1", "sidecar:1", "gone:1"),
		target("b", "web", "app:1", "sidecar:1"),
	}
	r, err := run(t, context.Background(), targets, Options{Checker: checker})
	if err != nil {
		t.Fatal(err)
	}
	calls := checker.Calls()
	slices.SortFunc(calls, func(x, y checkCall) int { return strings.Compare(x.placement, y.placement) })
	wantCalls := []checkCall{
		{placement: roleFor("a"), images: []string{"app:1", "sidecar:1", "gone:1"}},
		{placement: roleFor("b"), images: []string{"app:1", "sidecar:1"}},
	}
	if !reflect.DeepEqual(calls, wantCalls) {
		t.Errorf("calls = %+v, want %+v", calls, wantCalls)
	}
	a, b := roleFor("a"), roleFor("b")
	want := []string{
		"a/api/c0 app:1 pullable " + a, "a/api/c1 sidecar:1 pullable " + a, "a/api/c2 gone:1 not-pullable " + a,
		"a/web/c0 app:1 pullable " + a, "a/web/c1 sidecar:1 pullable " + a,
		"b/web/c0 app:1 pullable " + b, "b/web/c1 sidecar:1 pullable " + b,
	}
	if got := itemKeys(r); !slices.Equal(got, want) {
		t.Errorf("items =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !r.GeneratedAt.Equal(fixedNow) {
		t.Errorf("GeneratedAt = %s, want %s", r.GeneratedAt, fixedNow)
	}
	for _, it := range r.Items {
		if len(it.Pools) != 1 || it.Pools[0].Verdict != it.Verdict {
			t.Errorf("%s/%s: Pools = %+v, want the answer's", it.Workload.Name, it.Container, it.Pools)
		}
	}
}

func TestRunSplitsLargeChecks(t *testing.T) {
	tests := map[string]struct {
		// images[ns] are the distinct images of namespace ns's targets.
		images    map[string]int
		wantSizes []int
	}{
		"300 images in 3 placements: one call of 100 per placement": {
			images: map[string]int{"a": 100, "b": 100, "c": 100}, wantSizes: []int{100, 100, 100},
		},
		"250 images in one placement: calls of at most 100": {
			images: map[string]int{"a": 250}, wantSizes: []int{50, 100, 100},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var targets []Target
			for ns, n := range tt.images {
				for i := range n {
					// Two workloads per image: still one check.
					img := fmt.Sprintf("%s/img:%d", ns, i)
					targets = append(targets, target(ns, fmt.Sprintf("w%d", i), img), target(ns, fmt.Sprintf("v%d", i), img))
				}
			}
			checker := &fakeChecker{}
			r, err := run(t, context.Background(), targets, Options{Checker: checker})
			if err != nil {
				t.Fatal(err)
			}
			var sizes []int
			checked := map[string]int{}
			for _, c := range checker.Calls() {
				sizes = append(sizes, len(c.images))
				for _, img := range c.images {
					checked[c.placement+" "+img]++
				}
			}
			slices.Sort(sizes)
			if !slices.Equal(sizes, tt.wantSizes) {
				t.Errorf("call sizes = %v, want %v", sizes, tt.wantSizes)
			}
			for k, n := range checked {
				if n != 1 {
					t.Errorf("%s checked %d times, want once", k, n)
				}
			}
			if len(r.Items) != len(targets) {
				t.Errorf("%d items, want %d", len(r.Items), len(targets))
			}
		})
	}
}

func TestRunBoundsConcurrency(t *testing.T) {
	var targets []Target
	for i := range 20 {
		targets = append(targets, target(fmt.Sprintf("ns%d", i), "web", "app:1"))
	}
	for name, tt := range map[string]struct{ concurrency, want int }{
		"2 at a time":        {concurrency: 2, want: 2},
		"unset: 8 at a time": {concurrency: 0, want: 8},
	} {
		t.Run(name, func(t *testing.T) {
			checker := &fakeChecker{delay: 20 * time.Millisecond}
			if _, err := run(t, context.Background(), targets, Options{Checker: checker, Concurrency: tt.concurrency}); err != nil {
				t.Fatal(err)
			}
			if len(checker.Calls()) != 20 {
				t.Errorf("%d calls, want 20", len(checker.Calls()))
			}
			if checker.maxFlight > tt.want {
				t.Errorf("%d calls ran at once, want at most %d", checker.maxFlight, tt.want)
			}
		})
	}
}

func TestRunReportsProgress(t *testing.T) {
	var targets []Target
	for i := range 250 {
		targets = append(targets, target("a", fmt.Sprintf("w%d", i), fmt.Sprintf("img:%d", i), "shared:1"))
	}
	targets = append(targets, target("b", "web", "shared:1"))
	var got [][2]int
	progress := func(done, total int) { got = append(got, [2]int{done, total}) }
	if _, err := run(t, context.Background(), targets, Options{Checker: &fakeChecker{}, Concurrency: 3, Progress: progress}); err != nil {
		t.Fatal(err)
	}
	// 251 images for a (three calls), 1 for b (one call).
	const total = 252
	if len(got) != 5 || got[0] != [2]int{0, total} || got[4] != [2]int{total, total} {
		t.Fatalf("progress = %v, want (0, %d), one call per check, then (%d, %d)", got, total, total, total)
	}
	for i := 1; i < len(got); i++ {
		if got[i][1] != total || got[i][0] <= got[i-1][0] {
			t.Errorf("progress = %v: done must grow and total stay %d", got, total)
		}
	}
}

func TestRunPlacementFailureMakesItemsUnknown(t *testing.T) {
	checker := &fakeChecker{}
	placer := placeByNamespace{fail: map[string]error{"b": errors.New("node pool discovery has not run")}}
	targets := []Target{target("a", "web", "app:1"), target("b", "web", "app:1", "other:1")}
	r, err := run(t, context.Background(), targets, Options{Checker: checker, Placer: placer})
	if err != nil {
		t.Fatalf("err = %v, want a report: a placement failure does not fail the run", err)
	}
	if calls := checker.Calls(); len(calls) != 1 || !slices.Equal(calls[0].images, []string{"app:1"}) {
		t.Errorf("calls = %+v, want only a's images checked", calls)
	}
	var unknown []Item
	for _, it := range r.Items {
		if it.Workload.Namespace == "b" {
			unknown = append(unknown, it)
		}
	}
	if len(unknown) != 2 {
		t.Fatalf("b's items = %+v, want two", unknown)
	}
	for _, it := range unknown {
		f := it.Findings
		if it.Verdict != preflight.VerdictUnknown || len(f) != 1 || f[0].Code != preflight.CodeLookupFailed ||
			f[0].Severity != preflight.SeverityWarning || f[0].Message != "could not determine node pools: node pool discovery has not run" {
			t.Errorf("item %s %s = %v %+v, want unknown with one LookupFailed warning naming the cause", it.Container, it.Image, it.Verdict, f)
		}
	}
}

func TestRunCheckerFailures(t *testing.T) {
	tests := map[string]struct {
		checker     Checker
		wantMessage string
	}{
		"a panicking checker leaves its images unknown, the process alive": {
			checker: panicking{}, wantMessage: "internal error while checking",
		},
		"a checker answering short leaves the missing images unknown": {
			checker: short{}, wantMessage: "no answer from the check",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := run(t, context.Background(), []Target{target("a", "web", "app:1", "app:2")}, Options{Checker: tt.checker})
			if err != nil {
				t.Fatal(err)
			}
			it := r.Items[len(r.Items)-1]
			if it.Image != "app:2" || it.Verdict != preflight.VerdictUnknown || len(it.Findings) != 1 || it.Findings[0].Message != tt.wantMessage {
				t.Errorf("item = %+v, want app:2 unknown: %s", it, tt.wantMessage)
			}
		})
	}
}

type panicking struct{}

func (panicking) CheckPools(context.Context, []string, nodepools.Placement) []preflight.Result {
	panic("boom")
}

// short answers only the first image.
type short struct{}

func (short) CheckPools(_ context.Context, images []string, pl nodepools.Placement) []preflight.Result {
	return []preflight.Result{answer(images[0], pl, preflight.VerdictPullable)}
}

func TestRunCancelled(t *testing.T) {
	t.Run("before it starts: nothing is checked, every container unknown", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		checker := &fakeChecker{}
		r, err := run(t, ctx, []Target{target("a", "web", "app:1")}, Options{Checker: checker})
		if !errors.Is(err, context.Canceled) || len(checker.Calls()) != 0 {
			t.Errorf("Run = %d calls, %v; want none, context.Canceled", len(checker.Calls()), err)
		}
		if got, want := itemKeys(r), []string{"a/web/c0 app:1 unknown "}; !slices.Equal(got, want) {
			t.Errorf("items = %q, want %q: a container not checked is unknown, never left out", got, want)
		}
	})
	t.Run("midway: what was answered before is kept, the rest unknown, no new check starts", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// Three placements, one check each, one at a time; the second
		// check is cut short by the cancellation.
		checker := &fakeChecker{hook: func(n int) {
			if n == 2 {
				cancel()
			}
		}}
		targets := []Target{target("a", "web", "app:1"), target("b", "web", "app:1"), target("c", "web", "app:1")}
		r, err := run(t, ctx, targets, Options{Checker: checker, Concurrency: 1})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if n := len(checker.Calls()); n != 2 {
			t.Errorf("%d checks, want 2", n)
		}
		want := []string{"a/web/c0 app:1 pullable " + roleFor("a"), "b/web/c0 app:1 unknown ", "c/web/c0 app:1 unknown "}
		if got := itemKeys(r); !slices.Equal(got, want) {
			t.Errorf("items = %q, want %q", got, want)
		}
	})
}

func TestRunNeedsCheckerAndPlacer(t *testing.T) {
	if _, err := Run(context.Background(), nil, Options{Placer: placeByNamespace{}}); err == nil {
		t.Error("Run without a Checker: no error")
	}
	if _, err := Run(context.Background(), nil, Options{Checker: &fakeChecker{}}); err == nil {
		t.Error("Run without a Placer: no error")
	}
}
