package webhook

import (
	"context"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// Checker answers whether images will pull for the node pools a pod
// template can run on (preflight.Engine satisfies it). It returns one
// Result per image, in the order given. The webhook guards every call
// with a deadline and a recover, so an implementation that overruns or
// panics costs a warning, not an outage.
type Checker interface {
	CheckPools(ctx context.Context, images []string, pl nodepools.Placement) []preflight.Result
}

// CachedChecker is a Checker that can also answer from memory alone
// (preflight.Engine is one). CachedPools returns what CheckPools would
// return when every image's answer is already known, and ok false
// otherwise; it must not block or call out. A warm admission is answered
// from it without the deadline, the concurrency slot and the goroutine
// that guard a check.
type CachedChecker interface {
	Checker
	CachedPools(images []string, pl nodepools.Placement) (results []preflight.Result, ok bool)
}

var _ CachedChecker = (*preflight.Engine)(nil)

// PoolProvider says where pods of a template can run: the candidate node
// pools, those excluded and why, and whether discovery was complete.
type PoolProvider interface {
	Placement(ctx context.Context, t nodepools.Template) (nodepools.Placement, error)
}

// InstantPoolProvider is a PoolProvider that can answer from memory
// without blocking (static pools, or discovery once it has a snapshot);
// ok is false when it cannot. A warm admission needs nothing else.
type InstantPoolProvider interface {
	PoolProvider
	InstantPlacement(t nodepools.Template) (pl nodepools.Placement, ok bool)
}

// StaticRoles is a PoolProvider of bare --node-role-arn pools: every pod
// template may run on all of them.
type StaticRoles []string

var _ InstantPoolProvider = StaticRoles(nil)

// Placement places every template on all the roles' pools.
func (s StaticRoles) Placement(_ context.Context, t nodepools.Template) (nodepools.Placement, error) {
	pl, _ := s.InstantPlacement(t)
	return pl, nil
}

// InstantPlacement is Placement; it never blocks.
func (s StaticRoles) InstantPlacement(nodepools.Template) (nodepools.Placement, bool) {
	return nodepools.Placement{Candidates: nodepools.RolePools(s)}, true
}

// Pools is a PoolProvider over a snapshot of discovered pools: Snapshot
// must answer from memory once discovery has run (discover.Provider's
// Snapshot does).
type Pools struct {
	Snapshot func(ctx context.Context) nodepools.Snapshot
	// Ready says whether Snapshot answers without waiting; nil: always.
	Ready func() bool
}

var _ InstantPoolProvider = Pools{}

// Placement places t on the snapshot's pools.
func (p Pools) Placement(ctx context.Context, t nodepools.Template) (nodepools.Placement, error) {
	return place(p.Snapshot(ctx), t), nil
}

// InstantPlacement is Placement when the snapshot is in memory.
func (p Pools) InstantPlacement(t nodepools.Template) (nodepools.Placement, bool) {
	if p.Ready != nil && !p.Ready() {
		return nodepools.Placement{}, false
	}
	return place(p.Snapshot(context.Background()), t), true
}

func place(s nodepools.Snapshot, t nodepools.Template) nodepools.Placement {
	candidates, excluded := nodepools.Candidates(s.Pools, t)
	return nodepools.Placement{Candidates: candidates, Excluded: excluded, Incomplete: s.Incomplete}
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
