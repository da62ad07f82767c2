package webhook

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ecr-preflight/ecr-preflight/internal/logcap"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
	"github.com/ecr-preflight/ecr-preflight/internal/workloads"
)

// Decisions, as counted in ecr_preflight_admissions_total{decision}.
const (
	decisionAllow     = "allow"      // nothing to say
	decisionWarn      = "warn"       // allowed with warnings
	decisionDeny      = "deny"       // rejected
	decisionSkip      = "skip"       // not checked (annotation, owned object, deletion)
	decisionWouldWarn = "would-warn" // dryrun: warn would have warned
	decisionWouldDeny = "would-deny" // dryrun: deny would have rejected
)

// subject is what a typed validator hands to the shared admission logic.
type subject struct {
	kind      string
	operation string
	obj       metav1.Object
	// labels are the pod template's labels (Fargate selectors read them).
	labels map[string]string
	spec   *corev1.PodSpec
	// oldSpec is the pod template before an UPDATE.
	oldSpec *corev1.PodSpec
	// ephemeralOnly restricts the check to ephemeral containers.
	ephemeralOnly bool
	// skipReason, when set, means the kind's own rules exempt the object.
	skipReason string
}

// admitter is the logic every kind's validator shares.
type admitter struct {
	opts  Options
	limit *limiter
	// reviews shares one check among identical admissions in flight.
	reviews singleflight.Group
}

func newAdmitter(o Options) (*admitter, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	return &admitter{opts: o, limit: newLimiter(o.MaxConcurrent)}, nil
}

// admit answers one admission. It never returns an error other than a
// denial: whatever goes wrong while checking ends as a warning.
func (a *admitter) admit(ctx context.Context, s subject) (admission.Warnings, error) {
	start := time.Now()
	namespace, name := objectKey(ctx, s.obj)
	log := lazyLogger(logf.FromContext(ctx), nil).WithValues("kind", s.kind, "operation", s.operation)
	mode := a.opts.Mode
	decision := decisionAllow
	defer func() {
		a.opts.Metrics.ObserveAdmission(s.kind, s.operation, string(mode), decision, time.Since(start))
	}()

	if reason := skipReason(s); reason != "" {
		decision = decisionSkip
		log.V(1).Info("not checked", "reason", reason)
		return nil, nil
	}
	containers := workloads.Containers(s.spec, s.ephemeralOnly)
	if len(containers) == 0 {
		return nil, nil
	}

	var inflight sync.WaitGroup
	var notes []string
	mode, notes = a.modeFor(ctx, &inflight, log, namespace)
	log = log.WithValues("mode", mode)

	if s.obj.GetAnnotations()[SkipAnnotation] == "true" {
		if a.opts.skipAllowed(mode) {
			decision = decisionSkip
			log.Info("check skipped by annotation", "annotation", SkipAnnotation)
			if mode == ModeDryRun {
				return nil, nil
			}
			return append(notes, noticeWarning("check skipped by annotation %s", SkipAnnotation)), nil
		}
		notes = append(notes, noticeWarning("annotation %s ignored: skipping is not allowed in %s mode", SkipAnnotation, mode))
	}

	images := distinctImages(containers)
	if extra := len(images) - a.opts.MaxImages; extra > 0 {
		// A bound on the work one object can ask for: the rest is named,
		// not silently passed.
		images = images[:a.opts.MaxImages]
		a.opts.Metrics.ObserveUnverified(unverifiedTooMany)
		log.Info("too many distinct images; the rest were not checked", "checked", len(images), "unchecked", extra)
		notes = append(notes, noticeWarning("%s not checked: more than %d distinct images in one object", plural(extra, "image"), a.opts.MaxImages))
	}
	// The check ends a little before the budget, which keeps the rest for
	// judging and answering even when a flood of admissions times out at
	// once on two busy cores; never after the budget.
	checkBy := time.Now().Add(a.opts.Timeout - a.opts.Timeout/answerShare)
	if end := start.Add(a.opts.Timeout); checkBy.After(end) {
		checkBy = end
	}
	t := nodepools.Template{Namespace: namespace, Labels: s.labels, Spec: s.spec}
	results, pl, checked := a.review(ctx, checkBy, &inflight, log, t, images)
	if note := unschedulable(pl); note != "" {
		notes = append(notes, note)
	}
	if !checked {
		a.opts.Metrics.ObserveUnverified(unverifiedOverload)
		log.Info("warning: too many distinct admissions in flight; allowing unverified", "images", len(images))
		if mode == ModeDryRun {
			decision = decisionWouldWarn
			return nil, nil
		}
		decision = decisionWarn
		return capWarnings(append(notes, noticeWarning("server busy; %s not verified", plural(len(images), "image")))), nil
	}
	a.countFindings(results)

	var changed map[string]bool
	if s.operation == opUpdate {
		old := imageSet(workloads.Containers(s.oldSpec, s.ephemeralOnly))
		changed = make(map[string]bool, len(images))
		for _, img := range images {
			changed[img] = !old[img]
		}
	}
	// Dry run judges as deny would, so its counts say what enforcing would do.
	v := judge(results, containersOf(containers), changed, mode != ModeWarn, a.opts.DenyOnAnyPool)
	warnings := capWarnings(append(notes, v.warnings...))

	switch {
	case mode == ModeDryRun:
		decision = decisionAllow
		if len(v.denials) > 0 {
			decision = decisionWouldDeny
		} else if len(v.warnings) > 0 {
			decision = decisionWouldWarn
		}
		if decision != decisionAllow {
			log.Info("dry run: would have acted", "decision", decision, "findings", findingsForLog(results))
		}
		return nil, nil
	case len(v.denials) > 0:
		decision = decisionDeny
		msg := denialMessage(s.kind, namespace, name, v.denials)
		log.Info("denied", "reason", logcap.Cut(msg, logcap.Text))
		return warnings, errors.New(msg)
	case len(warnings) > 0:
		decision = decisionWarn
		if v := log.V(1); v.Enabled() {
			v.Info("allowed with warnings", "warnings", logcap.Strings(warnings), "findings", findingsForLog(results))
		}
		return warnings, nil
	default:
		if v := log.V(1); v.Enabled() {
			v.Info("allowed", "images", logcap.Strings(images))
		}
		return nil, nil
	}
}

// skipReason says why s needs no check at all, or "".
func skipReason(s subject) string {
	switch {
	case s.skipReason != "":
		return s.skipReason
	case s.obj.GetDeletionTimestamp() != nil:
		// Finalizer removal and the like must never be blocked.
		return "object is being deleted"
	case s.spec == nil:
		return "no pod template"
	}
	return ""
}

// objectKey finds the object's namespace and name, falling back to the
// request's: on CREATE an object's namespace may only be in the URL, and a
// generateName object has no name yet.
func objectKey(ctx context.Context, obj metav1.Object) (namespace, name string) {
	namespace, name = obj.GetNamespace(), obj.GetName()
	if name == "" {
		name = obj.GetGenerateName()
	}
	if req, err := admission.RequestFromContext(ctx); err == nil {
		if namespace == "" {
			namespace = req.Namespace
		}
		if name == "" {
			name = req.Name
		}
	}
	return namespace, name
}

// modeFor is the effective mode for namespace and any warnings about it.
// A namespace that cannot be read keeps the default mode: the operator
// learns from the log, the user is not bothered.
func (a *admitter) modeFor(ctx context.Context, inflight *sync.WaitGroup, log logr.Logger, namespace string) (Mode, []string) {
	if a.opts.NamespaceModes == nil || namespace == "" {
		return a.opts.Mode, nil
	}
	// A cached read is instant; a quarter of the budget leaves the rest for
	// the check even when the cache is cold.
	lctx, cancel := context.WithTimeout(ctx, a.opts.Timeout/4)
	defer cancel()
	type label struct {
		value string
		ok    bool
	}
	l, err := guarded(lctx, inflight, func(ctx context.Context) (label, error) {
		v, ok, err := a.opts.NamespaceModes.NamespaceMode(ctx, namespace)
		return label{v, ok}, err
	})
	if err != nil {
		log.Error(logcap.Error(err), "reading namespace mode; using the default", "namespace", logcap.String(namespace), "default", a.opts.Mode)
		return a.opts.Mode, nil
	}
	if !l.ok {
		return a.opts.Mode, nil
	}
	m, err := ParseMode(l.value)
	if err != nil {
		return a.opts.Mode, []string{noticeWarning("namespace label %s=%q is not warn, deny or dryrun; using %s",
			ModeLabel, truncate(l.value, 32), a.opts.Mode)}
	}
	return m, nil
}

// Reasons an admission let images through unverified, as counted in
// ecr_preflight_admissions_unverified_total{reason}.
const (
	unverifiedOverload = "overload"
	unverifiedTimeout  = "timeout"
	unverifiedError    = "error"
	unverifiedTooMany  = "too_many_images"
)

// answerShare: 1/answerShare of the budget is kept for answering.
const answerShare = 10

// errBusy: no concurrency slot was free within the queue wait.
var errBusy = errors.New("too many admissions in flight")

// review asks the Checker about images for the node pools pods of t may
// run on, by checkBy. An answer already in memory is taken at once (see
// warm). Otherwise it checks once for every identical admission in
// flight: the copies of a burst wait for the one answer and take no
// concurrency slot of their own, so only genuinely distinct work can
// saturate the server. checked is false when no slot was free: the caller
// allows the object unverified.
func (a *admitter) review(ctx context.Context, checkBy time.Time, inflight *sync.WaitGroup, log logr.Logger, t nodepools.Template, images []string) (results []preflight.Result, pl nodepools.Placement, checked bool) {
	if results, pl, ok := a.warm(log, t, images); ok {
		return results, pl, true
	}
	ctx, cancel := context.WithDeadline(ctx, checkBy)
	defer cancel()
	pl, err := guarded(ctx, inflight, func(ctx context.Context) (nodepools.Placement, error) {
		// Discovery answers from memory once it has run; before that (or
		// while it is refused) it gets a quarter of the budget, then
		// answers with what it has, marked incomplete, so the check
		// still runs.
		pctx, cancel := context.WithTimeout(ctx, a.opts.Timeout/4)
		defer cancel()
		return a.opts.Pools.Placement(pctx, t)
	})
	if err != nil {
		logFailure(log, err, "finding candidate node pools")
		a.opts.Metrics.ObserveUnverified(unverifiedReason(err))
		// Not knowing the pools is not "no pools": say it once, per image.
		pl = nodepools.Placement{Incomplete: []string{"node pools not determined"}}
		return unknownAll(images, reasonFor(err, "could not determine node pools")), pl, true
	}
	key := pl.Key() + "\x01" + strings.Join(images, "\x00")
	flight := a.reviews.DoChan(key, func() (any, error) {
		if !a.limit.acquire(ctx, a.opts.QueueWait) {
			return nil, errBusy
		}
		var checking sync.WaitGroup
		defer a.limit.releaseAfter(&checking)
		return a.check(ctx, &checking, log, images, pl), nil
	})
	select {
	case r := <-flight:
		if r.Err != nil {
			return nil, pl, false
		}
		return r.Val.([]preflight.Result), pl, true
	case <-ctx.Done():
		a.opts.Metrics.ObserveUnverified(unverifiedTimeout)
		return unknownAll(images, reasonFor(errNotInTime, "")), pl, true
	}
}

// warm is the answer to a warm admission: with a placement known at once
// and a Checker that has every image's answer in memory, nothing can hang
// or wait, so none of what bounds a check (deadline, guard goroutine,
// concurrency slot, shared flight) is needed. ok is false otherwise. A
// panic is logged and only means no warm answer: the guarded check
// follows.
func (a *admitter) warm(log logr.Logger, t nodepools.Template, images []string) (results []preflight.Result, pl nodepools.Placement, ok bool) {
	pools, instant := a.opts.Pools.(InstantPoolProvider)
	checker, cached := a.opts.Checker.(CachedChecker)
	if !instant || !cached {
		return nil, pl, false
	}
	defer func() {
		if r := recover(); r != nil {
			logFailure(log, &panicError{value: r, stack: debug.Stack()}, "reading cached answers")
			results, ok = nil, false
		}
	}()
	if pl, ok = pools.InstantPlacement(t); !ok {
		return nil, pl, false
	}
	results, ok = checker.CachedPools(images, pl)
	return results, pl, ok
}

// check asks the Checker about images within the admission budget. Every
// failure to answer becomes an unknown result: "could not check" is never
// "cannot pull".
func (a *admitter) check(ctx context.Context, inflight *sync.WaitGroup, log logr.Logger, images []string, pl nodepools.Placement) []preflight.Result {
	results, err := guarded(ctx, inflight, func(ctx context.Context) ([]preflight.Result, error) {
		return a.opts.Checker.CheckPools(ctx, images, pl), nil
	})
	if err != nil {
		logFailure(log, err, "checking images", "images", logcap.Strings(images))
		a.opts.Metrics.ObserveUnverified(unverifiedReason(err))
		return unknownAll(images, reasonFor(err, "could not verify"))
	}
	return results
}

// unverifiedReason sorts a guarded call's failure for the metric.
func unverifiedReason(err error) string {
	if errors.Is(err, errNotInTime) {
		return unverifiedTimeout
	}
	return unverifiedError
}

// logFailure logs a guarded call's failure, with the stack for a panic.
func logFailure(log logr.Logger, err error, what string, kv ...any) {
	var p *panicError
	if errors.As(err, &p) {
		log.Error(logcap.Error(err), what+" panicked", append(kv, "stack", string(p.stack))...)
		return
	}
	log.Error(logcap.Error(err), what, kv...)
}

// reasonFor is the short, user-facing reason for a failed lookup.
func reasonFor(err error, fallback string) string {
	var p *panicError
	switch {
	case errors.Is(err, errNotInTime):
		return "could not verify in time"
	case errors.As(err, &p):
		return "internal error while checking"
	default:
		return fallback
	}
}

// unknownAll marks every image unknown for reason.
func unknownAll(images []string, reason string) []preflight.Result {
	out := make([]preflight.Result, len(images))
	for i, img := range images {
		out[i] = unknownResult(img, reason)
	}
	return out
}

func unknownResult(image, reason string) preflight.Result {
	return preflight.Result{Image: image, Verdict: preflight.VerdictUnknown, Findings: []preflight.Finding{{
		Code:     preflight.CodeLookupFailed,
		Severity: preflight.SeverityWarning,
		Message:  reason,
	}}}
}

func (a *admitter) countFindings(results []preflight.Result) {
	for _, r := range results {
		for _, f := range r.Findings {
			a.opts.Metrics.ObserveFinding(string(f.Code))
		}
	}
}

// findingsForLog is the findings, one line each, for the logs: warnings
// are cut short, the operator reading the logs should not be, within
// bounds a hostile object cannot stretch. Each field is cut to
// logcap.Value runes (a whole valid image reference fits), and at most
// logcap.Entries lines are kept, the last saying how many more there were.
func findingsForLog(results []preflight.Result) []string {
	var out []string
	more := 0
	for _, r := range results {
		for _, f := range r.Findings {
			if f.Severity == preflight.SeverityInfo {
				continue
			}
			if len(out) == logcap.Entries {
				more++
				continue
			}
			line := fmt.Sprintf("%s: %s: %s", logcap.String(r.Image), logcap.String(string(f.Code)), logcap.String(f.Message))
			if f.Statement != "" {
				line += fmt.Sprintf(" (statement %q)", logcap.String(f.Statement))
			}
			if f.Fix != "" {
				line += ". Fix: " + logcap.String(f.Fix)
			}
			out = append(out, sanitize(line))
		}
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("…[+%d more findings]", more))
	}
	return out
}
