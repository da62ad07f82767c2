package webhook

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
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
	spec      *corev1.PodSpec
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
	log := logf.FromContext(ctx).WithValues("kind", s.kind, "operation", s.operation)
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
	containers := podImages(s.spec, s.ephemeralOnly)
	if len(containers) == 0 {
		return nil, nil
	}

	ctx, cancel := context.WithTimeout(ctx, a.opts.Timeout)
	defer cancel()
	var inflight sync.WaitGroup
	if !a.limit.acquire(ctx, a.opts.QueueWait) {
		log.Info("too many admissions in flight; allowing unverified", "images", len(containers))
		if mode == ModeDryRun {
			decision = decisionWouldWarn
			return nil, nil
		}
		decision = decisionWarn
		return admission.Warnings{noticeWarning("server busy; %s not verified", plural(len(distinctImages(containers)), "image"))}, nil
	}
	defer a.limit.releaseAfter(&inflight)

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
	results := a.check(ctx, &inflight, log, namespace, s.spec, images)
	a.countFindings(results)

	var changed map[string]bool
	if s.operation == opUpdate {
		old := imageSet(podImages(s.oldSpec, s.ephemeralOnly))
		changed = make(map[string]bool, len(images))
		for _, img := range images {
			changed[img] = !old[img]
		}
	}
	// Dry run judges as deny would, so its counts say what enforcing would do.
	v := judge(results, containersOf(containers), changed, mode != ModeWarn)
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
		log.Info("denied", "reason", msg)
		return warnings, errors.New(msg)
	case len(warnings) > 0:
		decision = decisionWarn
		log.V(1).Info("allowed with warnings", "warnings", warnings, "findings", findingsForLog(results))
		return warnings, nil
	default:
		log.V(1).Info("allowed", "images", images)
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
		log.Error(err, "reading namespace mode; using the default", "namespace", namespace, "default", a.opts.Mode)
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

// check asks the Checker about images within the admission budget. Every
// failure to answer becomes an unknown result: "could not check" is never
// "cannot pull".
func (a *admitter) check(ctx context.Context, inflight *sync.WaitGroup, log logr.Logger, namespace string, spec *corev1.PodSpec, images []string) []preflight.Result {
	roles, err := guarded(ctx, inflight, func(ctx context.Context) ([]string, error) {
		return a.opts.Roles.NodeRoles(ctx, namespace, spec)
	})
	if err != nil {
		logFailure(log, err, "finding candidate node roles")
		return unknownAll(images, reasonFor(err, "could not determine node roles"))
	}
	results, err := guarded(ctx, inflight, func(ctx context.Context) ([]preflight.Result, error) {
		return a.opts.Checker.Check(ctx, images, roles), nil
	})
	if err != nil {
		logFailure(log, err, "checking images", "images", images)
		return unknownAll(images, reasonFor(err, "could not verify"))
	}
	return results
}

// logFailure logs a guarded call's failure, with the stack for a panic.
func logFailure(log logr.Logger, err error, what string, kv ...any) {
	var p *panicError
	if errors.As(err, &p) {
		log.Error(err, what+" panicked", append(kv, "stack", string(p.stack))...)
		return
	}
	log.Error(err, what, kv...)
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

// findingsForLog is every finding in full, one line each, for the logs:
// warnings are cut short, the operator reading the logs should not be.
func findingsForLog(results []preflight.Result) []string {
	var out []string
	for _, r := range results {
		for _, f := range r.Findings {
			if f.Severity == preflight.SeverityInfo {
				continue
			}
			line := fmt.Sprintf("%s: %s: %s", r.Image, f.Code, f.Message)
			if f.Statement != "" {
				line += fmt.Sprintf(" (statement %q)", f.Statement)
			}
			if f.Fix != "" {
				line += ". Fix: " + f.Fix
			}
			out = append(out, sanitize(line))
		}
	}
	return out
}
