package webhook

import (
	"context"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// Checker answers whether images will pull for the candidate node roles
// (preflight.Engine satisfies it). It returns one Result per image, in the
// order given. The webhook guards every call with a deadline and a recover,
// so an implementation that overruns or panics costs a warning, not an
// outage.
type Checker interface {
	Check(ctx context.Context, images []string, roles []string) []preflight.Result
}

// CachedChecker is a Checker that can also answer from memory alone
// (preflight.Engine is one). Cached returns what Check would return when
// every image's answer is already known, and ok false otherwise; it must
// not block or call out. A warm admission is answered from it without the
// deadline, the concurrency slot and the goroutine that guard a Check.
type CachedChecker interface {
	Checker
	Cached(images []string, roles []string) (results []preflight.Result, ok bool)
}

var _ CachedChecker = (*preflight.Engine)(nil)

// RoleProvider gives the candidate node roles for a pod template: static
// for now, node-role discovery later.
type RoleProvider interface {
	NodeRoles(ctx context.Context, namespace string, spec *corev1.PodSpec) ([]string, error)
}

// StaticRoles is a RoleProvider that answers the same role ARNs for every
// pod template.
type StaticRoles []string

// NodeRoles returns a copy of the static roles, so callers may not change
// the provider's own list.
func (s StaticRoles) NodeRoles(context.Context, string, *corev1.PodSpec) ([]string, error) {
	return slices.Clone([]string(s)), nil
}

// NamespaceModes looks up a namespace's mode override (the
// ecr-preflight.io/mode label). ok is false when the namespace sets no
// override; value is the label's raw value, validated by the webhook so a
// typo becomes a warning rather than a silent default.
type NamespaceModes interface {
	NamespaceMode(ctx context.Context, namespace string) (value string, ok bool, err error)
}

// Metrics receives one observation per admission and one per finding. The
// Prometheus implementation lives in internal/metrics; the webhook only
// needs these two methods, so tests and standalone tools can pass nothing.
type Metrics interface {
	ObserveAdmission(kind, operation, mode, decision string, d time.Duration)
	ObserveFinding(code string)
	// ObserveUnverified counts an admission that let images through
	// without a verdict: reason is overload, timeout, error or
	// too_many_images.
	ObserveUnverified(reason string)
}

// noMetrics is the Metrics used when none is configured.
type noMetrics struct{}

func (noMetrics) ObserveAdmission(string, string, string, string, time.Duration) {}
func (noMetrics) ObserveFinding(string)                                          {}
func (noMetrics) ObserveUnverified(string)                                       {}
