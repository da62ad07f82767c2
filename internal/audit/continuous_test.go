package audit

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

const (
	webImage = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.0"
	apiImage = "123456789012.dkr.ecr.us-east-1.amazonaws.com/api:2.0"
)

var (
	denied = preflight.Finding{Code: preflight.CodeRepositoryPolicyDenies, Severity: preflight.SeverityError, Statement: "new policy"}
	lookup = preflight.Finding{Code: preflight.CodeLookupFailed, Severity: preflight.SeverityWarning, Message: "timeout"}
	expiry = preflight.Finding{Code: preflight.CodeImageExpiring, Severity: preflight.SeverityWarning,
		Message: "lifecycle rule 1 of repository web will expire the image on 2026-07-05 12:00 UTC (pushed 30 days ago)"}
)

// roundChecker answers with the results set for each image (pullable
// otherwise); tests change them between rounds.
type roundChecker struct {
	mu      sync.Mutex
	answers map[string]preflight.Result
}

// set makes image's answer v with findings, from the next round on.
func (c *roundChecker) set(image string, v preflight.Verdict, findings ...preflight.Finding) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.answers == nil {
		c.answers = map[string]preflight.Result{}
	}
	c.answers[image] = preflight.Result{Verdict: v, Findings: findings}
}

func (c *roundChecker) CheckPools(_ context.Context, images []string, _ nodepools.Placement) []preflight.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]preflight.Result, len(images))
	for i, img := range images {
		r, ok := c.answers[img]
		if !ok {
			r = preflight.Result{Verdict: preflight.VerdictPullable}
		}
		r.Image = img
		out[i] = r
	}
	return out
}

// refRecorder is a FakeRecorder that also keeps the objects of its Events.
type refRecorder struct {
	*events.FakeRecorder
	mu   sync.Mutex
	refs []runtime.Object
}

func newRecorder() *refRecorder { return &refRecorder{FakeRecorder: events.NewFakeRecorder(100)} }

func (r *refRecorder) Eventf(obj, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	r.mu.Lock()
	r.refs = append(r.refs, obj)
	r.mu.Unlock()
	r.FakeRecorder.Eventf(obj, related, eventtype, reason, action, note, args...)
}

// take is the Events recorded since the last take, as
// "Type Reason message".
func (r *refRecorder) take() []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// recordedMetrics keeps every report it observes.
type recordedMetrics struct {
	mu      sync.Mutex
	reports []Report
	took    []time.Duration
}

func (m *recordedMetrics) ObserveAudit(r Report, took time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reports = append(m.reports, r)
	m.took = append(m.took, took)
}

func (m *recordedMetrics) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.reports)
}

// logLines is a Logger that keeps its lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, args)
	}, funcr.Options{})
}

// count is how many lines contain s.
func (l *logLines) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// newTestLoop is a loop over objs with checker, events to rec; opts
// changes the options before NewLoop.
func newTestLoop(t *testing.T, r client.Reader, checker Checker, rec EventRecorder, opts ...func(*LoopOptions)) *Loop {
	t.Helper()
	o := LoopOptions{
		Reader: r, Checker: checker, Placer: placeByNamespace{}, Recorder: rec,
		Interval: time.Hour, Now: func() time.Time { return fixedNow },
	}
	for _, f := range opts {
		f(&o)
	}
	l, err := NewLoop(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLoopEmitsEventsOnChangesOnly(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(deployment("a", "web", webImage, apiImage), deployment("a", "api", apiImage)).Build()
	checker := &roundChecker{}
	rec := newRecorder()
	l := newTestLoop(t, c, checker, rec)

	webDenied := `container "c0" image ` + webImage + `: RepositoryPolicyDenies (statement "new policy")`
	steps := []struct {
		name   string
		change func()
		want   []string
	}{
		{"every image pulls: nothing to say", func() {}, nil},
		{"web's first image becomes not pullable: one Warning on web", func() { checker.set(webImage, preflight.VerdictNotPullable, denied) },
			[]string{"Warning ImageNotPullable " + webDenied}},
		{"it stays not pullable: no new Event", func() {}, nil},
		{"its lookups fail: unknown says nothing", func() { checker.set(webImage, preflight.VerdictUnknown, lookup) }, nil},
		{"it is not pullable again: no new Event, unknown was no recovery", func() { checker.set(webImage, preflight.VerdictNotPullable, denied) }, nil},
		{"web's second image becomes partly pullable too: a new Warning on web names both", func() { checker.set(apiImage, preflight.VerdictPartlyPullable, denied) },
			[]string{
				`Warning ImageNotPullable container "c0" image ` + apiImage + `: RepositoryPolicyDenies (statement "new policy")`,
				`Warning ImageNotPullable container "c0" image ` + webImage + `: RepositoryPolicyDenies (statement "new policy"); container "c1" image ` + apiImage + `: RepositoryPolicyDenies (statement "new policy")`,
			}},
		{"the same failures again: no new Event", func() {}, nil},
		{"both recover: one Normal on each workload", func() {
			checker.set(webImage, preflight.VerdictPullable)
			checker.set(apiImage, preflight.VerdictPullable)
		}, []string{
			`Normal ImagePullable will pull now: container "c0" image ` + apiImage,
			`Normal ImagePullable will pull now: container "c0" image ` + webImage + `; container "c1" image ` + apiImage,
		}},
		{"lookups fail after the recovery: nothing", func() { checker.set(webImage, preflight.VerdictUnknown, lookup) }, nil},
		{"an unknown answer with a lifecycle finding: still nothing", func() { checker.set(webImage, preflight.VerdictUnknown, lookup, expiry) }, nil},
		{"a lifecycle rule will soon expire web's image: one Warning", func() { checker.set(webImage, preflight.VerdictPullable, expiry) },
			[]string{`Warning ImageExpiring container "c0" image ` + webImage + `: ImageExpiring (` + expiry.Message + `)`}},
		{"the rule still selects it: no new Event", func() {}, nil},
		{"the lookups fail meanwhile: nothing", func() { checker.set(webImage, preflight.VerdictUnknown, lookup) }, nil},
		{"the rule still selects it after the failure: no new Event", func() { checker.set(webImage, preflight.VerdictPullable, expiry) }, nil},
		{"the rule no longer selects it: nothing, by design", func() { checker.set(webImage, preflight.VerdictPullable) }, nil},
		{"the rule selects it again: a new Warning", func() {
			checker.set(webImage, preflight.VerdictPullable, preflight.Finding{Code: preflight.CodeImageExpired, Severity: preflight.SeverityWarning, Message: "rule 2 already selects the image"})
		}, []string{`Warning ImageExpiring container "c0" image ` + webImage + `: ImageExpired (rule 2 already selects the image)`}},
		{"ImageExpired turns back into ImageExpiring (the rule changed): a new Warning", func() { checker.set(webImage, preflight.VerdictPullable, expiry) },
			[]string{`Warning ImageExpiring container "c0" image ` + webImage + `: ImageExpiring (` + expiry.Message + `)`}},
		{"ImageExpiring turns into ImageExpired: a new Warning, the more urgent one", func() {
			checker.set(webImage, preflight.VerdictPullable, preflight.Finding{Code: preflight.CodeImageExpired, Severity: preflight.SeverityWarning, Message: "rule 2 already selects the image"})
		}, []string{`Warning ImageExpiring container "c0" image ` + webImage + `: ImageExpired (rule 2 already selects the image)`}},
		{"the image is deleted: not pullable", func() {
			checker.set(webImage, preflight.VerdictNotPullable, preflight.Finding{Code: preflight.CodeImageNotFound, Severity: preflight.SeverityError, Message: "tag 1.0 does not exist"})
		}, []string{`Warning ImageNotPullable container "c0" image ` + webImage + `: ImageNotFound`}},
		{"pushed again, now denied: the new cause is a new Warning", func() { checker.set(webImage, preflight.VerdictNotPullable, denied) },
			[]string{`Warning ImageNotPullable container "c0" image ` + webImage + `: RepositoryPolicyDenies (statement "new policy")`}},
	}
	for _, s := range steps {
		s.change()
		l.round(context.Background())
		got := rec.take()
		slices.Sort(got)
		if !slices.Equal(got, s.want) {
			t.Errorf("%s: events =\n%q\nwant\n%q", s.name, got, s.want)
		}
	}

	want := &corev1.ObjectReference{Kind: "Deployment", APIVersion: "apps/v1", Namespace: "a", Name: "web", UID: "uid-a-web"}
	if len(rec.refs) == 0 || !reflect.DeepEqual(rec.refs[0], want) {
		t.Errorf("Events' objects = %#v, want the first %#v", rec.refs, want)
	}
}

func TestLoopOfANewLeaderEmitsOnceForWhatIsWrong(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(deployment("a", "web", webImage), deployment("a", "api", apiImage)).Build()
	checker := &roundChecker{}
	checker.set(webImage, preflight.VerdictNotPullable, denied, expiry)
	first := newRecorder()
	newTestLoop(t, c, checker, first).round(context.Background())
	if got := first.take(); len(got) != 2 {
		t.Fatalf("the first leader's events = %q, want 2", got)
	}

	rec := newRecorder()
	l := newTestLoop(t, c, checker, rec)
	l.round(context.Background())
	got := rec.take()
	slices.Sort(got)
	want := []string{
		`Warning ImageExpiring container "c0" image ` + webImage + `: ImageExpiring (` + expiry.Message + `)`,
		`Warning ImageNotPullable container "c0" image ` + webImage + `: RepositoryPolicyDenies (statement "new policy")`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("the new leader's first events =\n%q\nwant\n%q", got, want)
	}
	l.round(context.Background())
	if got := rec.take(); len(got) != 0 {
		t.Errorf("the new leader's second round emitted %q, want nothing", got)
	}
}

// switchable fails the List of Pods with Forbidden, or every List with
// another error, while told to.
type switchable struct {
	forbidPods, fail atomic.Bool
}

func (s *switchable) funcs() interceptor.Funcs {
	return interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		if s.fail.Load() {
			return errors.New("connection refused")
		}
		if _, ok := list.(*corev1.PodList); ok && s.forbidPods.Load() {
			return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("no RBAC"))
		}
		return c.List(ctx, list, opts...)
	}}
}

// policyReports is a Writer that serves PolicyReports while installed is
// set, and records what is written.
type policyReports struct {
	installed atomic.Bool
	mu        sync.Mutex
	calls     []string
}

func (p *policyReports) client() client.Client {
	return fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			u, ok := list.(*unstructured.UnstructuredList)
			if !ok || u.GroupVersionKind() != policyReportGVK.GroupVersion().WithKind("PolicyReportList") {
				return c.List(ctx, list, opts...)
			}
			p.record("list")
			if !p.installed.Load() {
				return &meta.NoKindMatchError{GroupKind: policyReportGVK.GroupKind(), SearchedVersions: []string{"v1alpha2"}}
			}
			return nil
		},
		Apply: func(_ context.Context, _ client.WithWatch, obj runtime.ApplyConfiguration, _ ...client.ApplyOption) error {
			u := obj.(interface{ GetNamespace() string })
			p.record("apply " + u.GetNamespace())
			return nil
		},
	}).Build()
}

func (p *policyReports) record(call string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, call)
}

// take is the calls since the last take.
func (p *policyReports) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.calls
	p.calls = nil
	return out
}

func TestLoopWithAnIncompleteList(t *testing.T) {
	debug := pod("b", "debug", webImage)
	var sw switchable
	c := fake.NewClientBuilder().WithObjects(deployment("a", "web", apiImage), debug).WithInterceptorFuncs(sw.funcs()).Build()
	checker := &roundChecker{}
	checker.set(webImage, preflight.VerdictNotPullable, denied)
	rec := newRecorder()
	reports := &policyReports{}
	reports.installed.Store(true)
	var logs logLines
	m := &recordedMetrics{}
	l := newTestLoop(t, c, checker, rec, func(o *LoopOptions) {
		o.Writer, o.PolicyReports, o.Logger, o.Metrics = reports.client(), true, logs.logger(), m
	})
	ctx := context.Background()

	l.round(ctx)
	if got := rec.take(); len(got) != 1 || !strings.HasPrefix(got[0], "Warning ImageNotPullable") {
		t.Fatalf("first round: events %q, want the Pod's Warning", got)
	}
	if got, want := reports.take(), []string{"list", "apply a", "apply b"}; !slices.Equal(got, want) {
		t.Errorf("first round: PolicyReport calls %q, want %q", got, want)
	}

	t.Run("Pods may not be listed: the rest is audited, without PolicyReports", func(t *testing.T) {
		sw.forbidPods.Store(true)
		l.round(ctx)
		if got := reports.take(); len(got) != 0 {
			t.Errorf("PolicyReport calls %q, want none: a report stands for a whole namespace", got)
		}
		r, ok := l.Last()
		if !ok || r.Summary.Workloads != 1 || m.count() != 2 {
			t.Errorf("last report has %d workloads (ok %v), metrics saw %d reports; want the Deployment audited, observed",
				r.Summary.Workloads, ok, m.count())
		}
		if logs.count("without writing PolicyReports") != 1 {
			t.Errorf("log = %q, want the incomplete list said", logs.lines)
		}
	})
	t.Run("Pods are listed again: the Pod's state was kept, no second Warning; PolicyReports are written", func(t *testing.T) {
		sw.forbidPods.Store(false)
		l.round(ctx)
		if got := rec.take(); len(got) != 0 {
			t.Errorf("events %q, want none", got)
		}
		if got, want := reports.take(), []string{"list", "apply a", "apply b"}; !slices.Equal(got, want) {
			t.Errorf("PolicyReport calls %q, want %q", got, want)
		}
	})
	t.Run("no List works: the round is skipped", func(t *testing.T) {
		sw.fail.Store(true)
		before, _ := l.Last()
		checker.set(webImage, preflight.VerdictPullable)
		l.round(ctx)
		if got := rec.take(); len(got) != 0 {
			t.Errorf("events %q, want none", got)
		}
		if after, _ := l.Last(); !reflect.DeepEqual(after, before) || m.count() != 3 || len(reports.take()) != 0 {
			t.Errorf("a failed round changed the last report, the metrics or PolicyReports")
		}
		if logs.count("skipping this round") != 1 {
			t.Errorf("log = %q, want the failure said", logs.lines)
		}
		sw.fail.Store(false)
		checker.set(webImage, preflight.VerdictNotPullable, denied)
	})
	t.Run("the Pod is deleted and comes back: it is new, and warned about again", func(t *testing.T) {
		if err := c.Delete(ctx, debug); err != nil {
			t.Fatal(err)
		}
		l.round(ctx)
		if got := rec.take(); len(got) != 0 {
			t.Errorf("events %q, want none for a deleted workload", got)
		}
		debug.ResourceVersion = ""
		if err := c.Create(ctx, debug); err != nil {
			t.Fatal(err)
		}
		l.round(ctx)
		if got := rec.take(); len(got) != 1 || !strings.HasPrefix(got[0], "Warning ImageNotPullable") {
			t.Errorf("events %q, want the Pod's Warning again", got)
		}
	})
}

func TestLoopPolicyReportsFollowTheCRD(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(deployment("a", "web", webImage)).Build()
	reports := &policyReports{}
	var logs logLines
	l := newTestLoop(t, c, &roundChecker{}, newRecorder(), func(o *LoopOptions) {
		o.Writer, o.PolicyReports, o.Logger = reports.client(), true, logs.logger()
	})
	ctx := context.Background()
	const missing, present = "is not installed", "is installed"

	l.round(ctx)
	l.round(ctx)
	if got, want := reports.take(), []string{"list", "list"}; !slices.Equal(got, want) {
		t.Errorf("without the CRD: calls %q, want %q (a look each round, nothing written)", got, want)
	}
	if logs.count(missing) != 1 {
		t.Errorf("log = %q, want the missing CRD said once", logs.lines)
	}

	reports.installed.Store(true)
	l.round(ctx)
	l.round(ctx)
	if got, want := reports.take(), []string{"list", "apply a", "list", "apply a"}; !slices.Equal(got, want) {
		t.Errorf("with the CRD: calls %q, want %q", got, want)
	}
	if logs.count(present) != 1 || logs.count(missing) != 1 {
		t.Errorf("log = %q, want the CRD's arrival said once", logs.lines)
	}

	off := newTestLoop(t, c, &roundChecker{}, newRecorder(), func(o *LoopOptions) { o.Writer = reports.client() })
	off.round(ctx)
	if got := reports.take(); len(got) != 0 {
		t.Errorf("PolicyReports off: calls %q, want none", got)
	}
}

func TestLoopStart(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(deployment("a", "web", webImage)).Build()

	t.Run("it audits at once and returns when ctx ends", func(t *testing.T) {
		m := &recordedMetrics{}
		l := newTestLoop(t, c, &roundChecker{}, newRecorder(), func(o *LoopOptions) { o.Metrics, o.Now = m, nil })
		if !l.NeedLeaderElection() {
			t.Error("NeedLeaderElection = false, want true: only the leader audits")
		}
		if _, ok := l.Last(); ok {
			t.Error("Last before any round: ok, want none")
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := startLoop(ctx, l)
		waitFor(t, func() bool { return m.count() == 1 })
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start = %v, want nil", err)
		}
		if m.count() != 1 {
			t.Errorf("%d rounds, want 1 within an hour's interval", m.count())
		}
		if r, ok := l.Last(); !ok || r.Summary.Workloads != 1 {
			t.Errorf("Last = %v, %v; want the round's report", r, ok)
		}
	})

	t.Run("it audits every interval", func(t *testing.T) {
		m := &recordedMetrics{}
		l := newTestLoop(t, c, &roundChecker{}, newRecorder(), func(o *LoopOptions) {
			o.Metrics, o.Now, o.Interval = m, nil, 10*time.Millisecond
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := startLoop(ctx, l)
		waitFor(t, func() bool { return m.count() >= 3 })
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start = %v, want nil", err)
		}
	})

	t.Run("a round longer than the interval is logged and the next follows it", func(t *testing.T) {
		var now atomic.Int64 // each reading of the clock is a minute later
		var logs logLines
		m := &recordedMetrics{}
		l := newTestLoop(t, c, &roundChecker{}, newRecorder(), func(o *LoopOptions) {
			o.Metrics, o.Logger, o.Interval = m, logs.logger(), 30*time.Second
			o.Now = func() time.Time { return fixedNow.Add(time.Duration(now.Add(1)) * time.Minute) }
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := startLoop(ctx, l)
		waitFor(t, func() bool { return m.count() >= 2 })
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start = %v, want nil", err)
		}
		if logs.count("took longer than the audit interval") == 0 {
			t.Errorf("log = %q, want the overrun said", logs.lines)
		}
		if m.took[0] <= 0 {
			t.Errorf("metrics got took = %v, want the round's duration on the clock", m.took[0])
		}
	})
}

func startLoop(ctx context.Context, l *Loop) <-chan error {
	done := make(chan error, 1)
	go func() { done <- l.Start(ctx) }()
	return done
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

func TestNewLoopRequires(t *testing.T) {
	c := fake.NewClientBuilder().Build()
	full := func() LoopOptions {
		return LoopOptions{Reader: c, Writer: c, Checker: &roundChecker{}, Placer: placeByNamespace{},
			Recorder: newRecorder(), Interval: time.Minute, PolicyReports: true}
	}
	tests := map[string]struct {
		change func(*LoopOptions)
		want   string
	}{
		"a Reader":                        {func(o *LoopOptions) { o.Reader = nil }, "Reader is required"},
		"a Checker":                       {func(o *LoopOptions) { o.Checker = nil }, "LoopOptions.Checker and LoopOptions.Placer are required"},
		"a Placer":                        {func(o *LoopOptions) { o.Placer = nil }, "LoopOptions.Checker and LoopOptions.Placer are required"},
		"a Recorder":                      {func(o *LoopOptions) { o.Recorder = nil }, "Recorder is required"},
		"a Writer for PolicyReports":      {func(o *LoopOptions) { o.Writer = nil }, "Writer is required"},
		"a positive Interval":             {func(o *LoopOptions) { o.Interval = 0 }, "Interval must be positive"},
		"nothing more":                    {func(o *LoopOptions) {}, ""},
		"no Writer without PolicyReports": {func(o *LoopOptions) { o.Writer, o.PolicyReports = nil, false }, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			o := full()
			tt.change(&o)
			_, err := NewLoop(o)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("NewLoop = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestEventMessagesAreBounded(t *testing.T) {
	var failing []Item
	for i := range 30 {
		failing = append(failing, Item{Container: fmt.Sprintf("container-%d", i), Image: webImage + "-ü", Verdict: preflight.VerdictNotPullable,
			Findings: []preflight.Finding{denied, {Code: preflight.CodePullNotAllowed, Severity: preflight.SeverityError, Pool: &preflight.PoolRef{Name: "arm"}}}})
	}
	msg := notPullableMessage(failing)
	if len(msg) > maxEventMessage || !utf8.ValidString(msg) || !strings.HasSuffix(msg, "…") {
		t.Errorf("message of %d bytes (valid UTF-8: %v) ending %q; want at most %d, cut with …",
			len(msg), utf8.ValidString(msg), msg[max(0, len(msg)-20):], maxEventMessage)
	}
	if want := `container "container-0" image ` + webImage + `-ü: RepositoryPolicyDenies (statement "new policy"), PullNotAllowed (pool "arm"); container "container-1"`; !strings.HasPrefix(msg, want) {
		t.Errorf("message = %q, want it to start %q", msg, want)
	}

	for n := 1020; n <= 1030; n++ {
		s := strings.Repeat("é", n/2) // 2 bytes a rune: cuts fall inside runes
		if got := truncate(s, 1024); len(got) > 1024 || !utf8.ValidString(got) {
			t.Errorf("truncate of %d bytes: %d bytes, valid %v", len(s), len(got), utf8.ValidString(got))
		}
	}
}
