package audit

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// Reasons of the Events the continuous audit emits on workloads.
const (
	// ReasonImageNotPullable (Warning): a container's image became
	// not-pullable or partly-pullable.
	ReasonImageNotPullable = "ImageNotPullable"
	// ReasonImagePullable (Normal): no container's image fails any more.
	ReasonImagePullable = "ImagePullable"
	// ReasonImageExpiring (Warning): a lifecycle rule will expire or
	// archive a container's image soon, or already selects it
	// (ImageExpiring, ImageExpired).
	ReasonImageExpiring = "ImageExpiring"
)

// maxEventMessage is the longest Event message written, in bytes: the
// limit events.k8s.io/v1 puts on an Event's note, and longer helps nobody
// in `kubectl describe`.
const maxEventMessage = 1024

// EventRecorder emits events.k8s.io/v1 Events (k8s.io/client-go's
// events.EventRecorder, as controller-runtime's manager hands it out).
type EventRecorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// eventAction is the action of every audit Event: what was done.
const eventAction = "Audit"

// AuditMetrics receives each round's report (metrics.AuditRecorder
// implements it).
type AuditMetrics interface {
	// ObserveAudit replaces every workload series with those of r; took
	// is how long the round's List and Run took.
	ObserveAudit(r Report, took time.Duration)
}

// LoopOptions configure the continuous audit.
type LoopOptions struct {
	// Reader lists the workloads, a page at a time: the manager's API
	// reader (the cache cannot page, and caching every Pod would cost
	// each replica more than a paged list each interval). Required.
	Reader client.Reader
	// Writer writes PolicyReports: a client that reads unstructured
	// objects from the API server, not from a cache (the manager's client
	// does by default). Required when PolicyReports is set.
	Writer client.Client
	// Checker and Placer answer for the images, as for Run. Required.
	Checker Checker
	Placer  Placer
	// Interval is the time between the starts of two rounds; a round
	// that takes longer delays the next. It also bounds a round's List.
	// It must be positive.
	Interval time.Duration
	// Recorder emits the Events: an EventWriter, which writes each as a
	// new events.k8s.io/v1 Event (kubectl get events shows them too).
	// Required.
	Recorder EventRecorder
	// Metrics, if set, gets every round's report.
	Metrics AuditMetrics
	// PolicyReports writes wgpolicyk8s.io/v1alpha2 PolicyReports after
	// each round in which every workload kind could be listed, when the
	// CRD is installed.
	PolicyReports bool
	// Logger logs each round's outcome and its failures; the zero Logger
	// discards them.
	Logger logr.Logger
	// Now is the clock of reports and of round durations; nil means
	// time.Now.
	Now func() time.Time
}

// Loop is the continuous audit: a manager.Runnable that, on the elected
// replica only, lists every running workload the webhook checks and
// checks its images on an interval, and turns each round's report into
// Events on the workloads, metrics and PolicyReports.
//
// Events mark changes only. Each workload's state (does a container fail
// to pull, does a lifecycle rule select an image) is kept in memory
// across rounds, keyed by namespace, kind and name; a new leader starts
// empty and so emits once for what is wrong when it takes over:
//
//   - Warning ImageNotPullable when a workload gets a container whose
//     verdict is not-pullable or partly-pullable, naming those containers,
//     their images and the findings' codes;
//   - Normal ImagePullable when a workload that had such a container has
//     none any more;
//   - Warning ImageExpiring when an ImageExpiring or ImageExpired finding
//     appears on a workload that had none (nothing when it goes away).
//
// A container whose verdict is unknown (a lookup failed) emits nothing and
// is no recovery: while a workload has one, a state it would clear is
// kept.
//
// A round whose List is refused some kinds (403) audits the rest: Events
// and metrics for what it listed (the metrics then lack the other kinds),
// no PolicyReports, since each stands for a whole namespace. A round whose
// List fails otherwise changes nothing.
type Loop struct {
	o LoopOptions

	// states and crdMissing belong to the goroutine running Start.
	states map[string]workloadState
	// crdMissing: the PolicyReport CRD was missing in the last round that
	// tried to write reports, and the log said so.
	crdMissing bool

	mu      sync.Mutex // guards last and hasLast
	last    Report
	hasLast bool
}

// workloadState is what Events have said of a workload so far. The zero
// value, fine, is not stored.
type workloadState struct {
	// failing are the containers whose image did not pull, sorted; empty
	// when none did.
	failing []string
	// failingWhy is what failed and why ("app=ImageNotFound;..."): a
	// change of cause, or another container failing, is a new Event.
	failingWhy string
	// expiring is which containers a lifecycle rule threatens and how
	// ("app=ImageExpiring;..."), "" when none: ImageExpiring turning into
	// ImageExpired is a new Event.
	expiring string
}

// NewLoop checks o and returns the loop; Start runs it.
func NewLoop(o LoopOptions) (*Loop, error) {
	var errs []error
	if o.Reader == nil {
		errs = append(errs, errors.New("LoopOptions.Reader is required"))
	}
	if o.Checker == nil || o.Placer == nil {
		errs = append(errs, errors.New("LoopOptions.Checker and LoopOptions.Placer are required"))
	}
	if o.Recorder == nil {
		errs = append(errs, errors.New("LoopOptions.Recorder is required"))
	}
	if o.PolicyReports && o.Writer == nil {
		errs = append(errs, errors.New("LoopOptions.Writer is required to write PolicyReports"))
	}
	if o.Interval <= 0 {
		errs = append(errs, fmt.Errorf("LoopOptions.Interval must be positive, not %s", o.Interval))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuring the continuous audit: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Loop{o: o, states: map[string]workloadState{}}, nil
}

// NeedLeaderElection is true: only the elected replica audits, so each
// change gets one Event and AWS sees one replica's lookups.
func (l *Loop) NeedLeaderElection() bool { return true }

// Last is the report of the last round that ran to its end, and false
// before there was one.
func (l *Loop) Last() (Report, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last, l.hasLast
}

// Start audits at once, then every Interval, until ctx ends; it then
// returns nil. A round's checks are never cut short by the interval (only
// its List is bounded): a round that takes longer is logged and the next
// starts as soon as it ends.
func (l *Loop) Start(ctx context.Context) error {
	l.o.Logger.Info("continuous audit started", "interval", l.o.Interval, "policyReports", l.o.PolicyReports)
	for ctx.Err() == nil {
		began := l.o.Now()
		l.round(ctx)
		took := l.o.Now().Sub(began)
		wait := l.o.Interval - took
		if wait < 0 && ctx.Err() == nil {
			l.o.Logger.Info("an audit took longer than the audit interval; the next starts now",
				"took", took, "interval", l.o.Interval)
			wait = 0
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

// round lists, checks, and reports once. A round that ctx ends is
// dropped whole: its report would be missing what was not checked.
func (l *Loop) round(ctx context.Context) {
	log := l.o.Logger
	began := l.o.Now()
	// A slow API server must not hold the audit forever: a round's List
	// gets at most an interval, and the log says when it ran out.
	listCtx, cancel := context.WithTimeout(ctx, l.o.Interval)
	targets, err := List(listCtx, l.o.Reader, ListOptions{})
	cancel()
	complete := err == nil
	switch {
	case ctx.Err() != nil:
		return
	case err != nil && !apierrors.IsForbidden(err):
		log.Error(err, "listing workloads to audit; skipping this round")
		return
	case err != nil:
		log.Error(err, "some workload kinds may not be listed; auditing the others, without writing PolicyReports")
	}

	r, err := Run(ctx, targets, Options{Checker: l.o.Checker, Placer: l.o.Placer, Now: l.o.Now})
	if err != nil {
		return // only an ended ctx stops Run once it has its options
	}
	took := l.o.Now().Sub(began)
	l.emitEvents(r, complete)
	if l.o.Metrics != nil {
		l.o.Metrics.ObserveAudit(r, took)
	}
	l.mu.Lock()
	l.last, l.hasLast = r, true
	l.mu.Unlock()
	log.Info("audit finished", "workloads", r.Summary.Workloads, "containers", r.Summary.Containers,
		"images", r.Summary.Images, "problems", len(r.Problems), "took", took)

	if l.o.PolicyReports && complete {
		l.writePolicyReports(ctx, r)
	}
}

// writePolicyReports writes r as PolicyReports, saying once in the log
// that the CRD is missing and once that it appeared. Looking again each
// round costs one discovery request, and lets a CRD installed later work.
func (l *Loop) writePolicyReports(ctx context.Context, r Report) {
	installed, err := WritePolicyReports(ctx, l.o.Writer, r)
	switch {
	case !installed && !l.crdMissing:
		l.o.Logger.Info("the PolicyReport CRD (wgpolicyk8s.io/v1alpha2) is not installed; writing no PolicyReports until it is")
		l.crdMissing = true
	case installed && l.crdMissing:
		l.o.Logger.Info("the PolicyReport CRD (wgpolicyk8s.io/v1alpha2) is installed; writing PolicyReports")
		l.crdMissing = false
	}
	if err != nil {
		l.o.Logger.Error(err, "writing PolicyReports")
	}
}

// emitEvents compares each workload of r with its state, emits an Event
// per change and stores the new states. complete says that r covers every
// workload: only then is the state of a workload r does not have dropped
// (it was deleted, or has no containers left), so that a workload of a
// kind that could not be listed this round does not emit again later.
func (l *Loop) emitEvents(r Report, complete bool) {
	seen := map[string]bool{}
	for items := range workloadItems(r.Items) {
		w := items[0].Workload
		key := w.Namespace + "/" + w.Kind + "/" + w.Name
		seen[key] = true
		old := l.states[key]
		next := l.transition(w, old, items)
		if next.failing == nil && next.expiring == "" {
			delete(l.states, key)
		} else {
			l.states[key] = next
		}
	}
	if complete {
		for key := range l.states {
			if !seen[key] {
				delete(l.states, key)
			}
		}
	}
}

// transition emits the Events for one workload going from old to what
// items say, and returns its new state.
func (l *Loop) transition(w Workload, old workloadState, items []Item) workloadState {
	var failing, expiring []Item
	unknown := false
	for _, it := range items {
		switch it.Verdict {
		case preflight.VerdictUnknown:
			unknown = true
			continue // neither a failure nor, below, an expiry it might hide
		case preflight.VerdictNotPullable, preflight.VerdictPartlyPullable:
			failing = append(failing, it)
		}
		if slices.ContainsFunc(it.Findings, isExpiry) {
			expiring = append(expiring, it)
		}
	}

	ref := &corev1.ObjectReference{Kind: w.Kind, APIVersion: w.APIVersion,
		Namespace: w.Namespace, Name: w.Name, UID: types.UID(w.UID)}
	next := old
	switch {
	case len(failing) > 0:
		why := causes(failing, isFailure)
		if why != old.failingWhy {
			l.o.Recorder.Eventf(ref, nil, corev1.EventTypeWarning, ReasonImageNotPullable, eventAction, "%s", notPullableMessage(failing))
		}
		next.failing, next.failingWhy = containerNames(failing), why
	case unknown:
		// Keep the state: the unknown container may still fail.
	case len(old.failing) > 0:
		l.o.Recorder.Eventf(ref, nil, corev1.EventTypeNormal, ReasonImagePullable, eventAction, "%s", pullableMessage(old.failing, items))
		next.failing, next.failingWhy = nil, ""
	}
	switch {
	case len(expiring) > 0:
		why := causes(expiring, isExpiry)
		if why != old.expiring {
			l.o.Recorder.Eventf(ref, nil, corev1.EventTypeWarning, ReasonImageExpiring, eventAction, "%s", expiringMessage(expiring))
		}
		next.expiring = why
	case !unknown:
		next.expiring = ""
	}
	return next
}

// causes is "container=Code,Code;..." for the findings of items that
// match: what an Event is about, to tell a new cause from a repeat.
func causes(items []Item, match func(preflight.Finding) bool) string {
	var parts []string
	for _, it := range items {
		var codes []string
		for _, f := range it.Findings {
			if match(f) && !slices.Contains(codes, string(f.Code)) {
				codes = append(codes, string(f.Code))
			}
		}
		slices.Sort(codes)
		parts = append(parts, it.Container+"="+strings.Join(codes, ","))
	}
	slices.Sort(parts)
	return strings.Join(parts, ";")
}

// isFailure: an error finding, one that stops a pull.
func isFailure(f preflight.Finding) bool { return f.Severity == preflight.SeverityError }

// workloadItems yields the items of each workload in turn: Report.Items
// are sorted by namespace, kind and name, so a workload's are adjacent.
func workloadItems(items []Item) iter.Seq[[]Item] {
	return func(yield func([]Item) bool) {
		for start := 0; start < len(items); {
			end := start + 1
			for end < len(items) && workloadKey(items[end].Workload) == workloadKey(items[start].Workload) {
				end++
			}
			if !yield(items[start:end]) {
				return
			}
			start = end
		}
	}
}

func isExpiry(f preflight.Finding) bool {
	return f.Code == preflight.CodeImageExpiring || f.Code == preflight.CodeImageExpired
}

func containerNames(items []Item) []string {
	names := make([]string, 0, len(items))
	for _, it := range items {
		names = append(names, it.Container)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// notPullableMessage names each failing container, its image and its
// error findings: `container "ui" image …/app:1.2.1: RepositoryPolicyDenies
// (statement "new policy")`.
func notPullableMessage(failing []Item) string {
	parts := make([]string, 0, len(failing))
	for _, it := range failing {
		var findings []string
		for _, f := range it.Findings {
			if f.Severity != preflight.SeverityError {
				continue
			}
			if s := findingText(f, false); !slices.Contains(findings, s) {
				findings = append(findings, s)
			}
		}
		if len(findings) == 0 {
			findings = []string{string(it.Verdict)} // the engine always says why; just in case
		}
		parts = append(parts, fmt.Sprintf("container %q image %s: %s", it.Container, it.Image, strings.Join(findings, ", ")))
	}
	return truncate(strings.Join(parts, "; "), maxEventMessage)
}

// expiringMessage names each container whose image a lifecycle rule
// selects, with the engine's words for when.
func expiringMessage(expiring []Item) string {
	parts := make([]string, 0, len(expiring))
	for _, it := range expiring {
		var findings []string
		for _, f := range it.Findings {
			if isExpiry(f) {
				findings = append(findings, findingText(f, true))
			}
		}
		parts = append(parts, fmt.Sprintf("container %q image %s: %s", it.Container, it.Image, strings.Join(findings, ", ")))
	}
	return truncate(strings.Join(parts, "; "), maxEventMessage)
}

// pullableMessage names the images the containers that failed run now.
func pullableMessage(wasFailing []string, items []Item) string {
	var parts []string
	for _, it := range items {
		if slices.Contains(wasFailing, it.Container) {
			parts = append(parts, fmt.Sprintf("container %q image %s", it.Container, it.Image))
		}
	}
	if len(parts) == 0 {
		return "every container's image will pull now"
	}
	return truncate("will pull now: "+strings.Join(parts, "; "), maxEventMessage)
}

// findingText is a finding's code and, in parentheses, what it is about:
// the node pool and deciding statement, or with message the engine's own
// sentence (lifecycle findings, whose date or push count matter).
func findingText(f preflight.Finding, message bool) string {
	var about []string
	if f.Pool != nil && f.Pool.Name != "" {
		about = append(about, fmt.Sprintf("pool %q", f.Pool.Name))
	}
	if f.Statement != "" {
		about = append(about, fmt.Sprintf("statement %q", f.Statement))
	}
	if message && f.Message != "" {
		about = append(about, f.Message)
	}
	if len(about) == 0 {
		return string(f.Code)
	}
	return fmt.Sprintf("%s (%s)", f.Code, strings.Join(about, ", "))
}

// truncate cuts s to at most n bytes, on a rune boundary, ending in "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
