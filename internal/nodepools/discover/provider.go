package discover

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

// ClusterSource describes an EKS cluster's managed node groups
// (eks:ListNodegroups, eks:DescribeNodegroup) and Fargate profiles
// (eks:ListFargateProfiles, eks:DescribeFargateProfile) as pools of
// KindManagedNodeGroup and KindFargate. Either method may return the pools
// it found together with an error for the rest.
type ClusterSource interface {
	NodeGroups(ctx context.Context) ([]nodepools.Pool, error)
	FargateProfiles(ctx context.Context) ([]nodepools.Pool, error)
}

// InstanceRoleResolver finds the IAM role of EC2 instances
// (ec2:DescribeInstances → instance profile → iam:GetInstanceProfile).
type InstanceRoleResolver interface {
	// InstanceRoles returns role ARNs by instance ID for instances of one
	// region. An instance it could not resolve is absent from the map; the
	// error says why, and may come with the roles it did find.
	InstanceRoles(ctx context.Context, region string, ids []string) (map[string]string, error)
}

// NodeClassRoleResolver finds the role an EC2NodeClass names.
type NodeClassRoleResolver interface {
	// InstanceProfileRole is the ARN of the role in an instance profile
	// (iam:GetInstanceProfile).
	InstanceProfileRole(ctx context.Context, name string) (string, error)
	// RoleARN is the ARN of the role with this name (iam:GetRole).
	RoleARN(ctx context.Context, roleName string) (string, error)
}

// RoleResolver is every role lookup discovery makes.
type RoleResolver interface {
	InstanceRoleResolver
	NodeClassRoleResolver
}

// Defaults of Options, and how often Invalidate may cause a rebuild.
const (
	DefaultRefresh = 30 * time.Second
	DefaultTimeout = 30 * time.Second
	// InvalidateInterval is the least time between two rebuilds Invalidate
	// causes: a burst of informer events (a node group scaling out) is
	// answered by one or two rebuilds, not one per event.
	InvalidateInterval = time.Second
)

// Source names, as Snapshot.Incomplete starts its entries.
const (
	sourceNodes      = "nodes"
	sourceKarpenter  = "Karpenter"
	sourceNodeGroups = "EKS node groups"
	sourceFargate    = "EKS Fargate profiles"
)

// Options configures a Provider. Only Static is needed for static pools
// alone.
type Options struct {
	// Static pools are in every snapshot (StaticPools, LoadStaticPools).
	Static []nodepools.Pool
	// Nodes reads Nodes and, when Karpenter is installed, karpenter.sh/v1
	// NodePools and karpenter.k8s.aws/v1 EC2NodeClasses as unstructured
	// objects. In the webhook it is the manager's cache (mgr.GetCache()),
	// so discovery reads watched objects and makes no API request. Nil
	// turns Kubernetes discovery off.
	Nodes client.Reader
	// Cluster describes the EKS cluster's node groups and Fargate
	// profiles; nil without --cluster-name.
	Cluster ClusterSource
	// Roles finds the roles of nodes and EC2NodeClasses; required with
	// Nodes.
	Roles RoleResolver
	// Refresh is how often Start's loop asks every source again, and how
	// old a snapshot may be before Snapshot asks for a new one;
	// DefaultRefresh when zero.
	Refresh time.Duration
	// Timeout bounds one discovery, every source included; DefaultTimeout
	// when zero. A source that has not answered by then counts as failed.
	Timeout time.Duration
	Logger  logr.Logger
	// Now is the clock snapshots are aged by; time.Now when nil. Start's
	// timers run on real time.
	Now func() time.Time
}

// Provider keeps a snapshot of the cluster's node pools. It is safe for
// concurrent use.
//
// Background work is tied to Start's context: Start (a controller-runtime
// manager.Runnable, so mgr.Add(provider) runs it on every replica) makes
// the first discovery, then asks every source again each Options.Refresh,
// when Snapshot finds the snapshot older than that, and re-reads the
// Kubernetes sources soon after Invalidate, one rebuild at a time, until
// its context ends. No goroutine outlives Start; Snapshot, Refresh and
// Invalidate start none. Without Nodes and Cluster the provider holds
// static pools only, answers at once and Start returns at once.
//
// Snapshot.Incomplete names only what may hide pools: a source that could
// not be read (Nodes, Karpenter NodePools, EKS node groups or Fargate
// profiles), or discovery not ready. A pool whose role is not found (an
// EKS Hybrid Node, an EKS Auto Mode NodePool without nodes, a lookup that
// failed) is a pool with no RoleARN: it affects only pods that may land on
// it. Details go to the log, each once until it changes.
type Provider struct {
	static  []nodepools.Pool
	reader  client.Reader
	cluster ClusterSource
	roles   RoleResolver
	refresh time.Duration
	timeout time.Duration
	log     logr.Logger
	now     func() time.Time
	// invalidateEvery is InvalidateInterval; tests shorten it.
	invalidateEvery time.Duration

	started   atomic.Bool
	kick      chan struct{} // a rebuild is wanted; capacity 1
	invalid   atomic.Bool   // Invalidate was called since the last rebuild began
	ready     chan struct{} // closed once the first snapshot is published
	readyOnce sync.Once

	building sync.Mutex // one discovery at a time; guards the fields below
	// lastGood is each source's last answer, kept for when it fails.
	lastGood map[string][]nodepools.Pool
	// lastCluster is the EKS sources' last answers, settled, reused by
	// rebuilds that read Kubernetes only; nil before the first.
	lastCluster *[2]answer
	// instanceRoles are the roles nodes' instances had, by spec.providerID.
	instanceRoles   map[string]string
	karpenterAbsent bool
	logged          map[string]string // the notes logged, by subject

	mu    sync.RWMutex
	snap  nodepools.Snapshot
	asked time.Time // when every source was last asked; zero before the first
}

// NewProvider checks o and returns a Provider. It starts nothing.
func NewProvider(o Options) (*Provider, error) {
	if o.Nodes != nil && o.Roles == nil {
		return nil, errors.New("node pool discovery from Nodes needs a RoleResolver")
	}
	if o.Refresh < 0 || o.Timeout < 0 {
		return nil, fmt.Errorf("node pool discovery: refresh %s and timeout %s must not be negative", o.Refresh, o.Timeout)
	}
	p := &Provider{
		static:          slices.Clone(o.Static),
		reader:          o.Nodes,
		cluster:         o.Cluster,
		roles:           o.Roles,
		refresh:         cmp.Or(o.Refresh, DefaultRefresh),
		timeout:         cmp.Or(o.Timeout, DefaultTimeout),
		log:             o.Logger,
		now:             o.Now,
		invalidateEvery: InvalidateInterval,
		kick:            make(chan struct{}, 1),
		ready:           make(chan struct{}),
		lastGood:        map[string][]nodepools.Pool{},
	}
	if p.now == nil {
		p.now = time.Now
	}
	nodepools.Sort(p.static)
	return p, nil
}

// staticOnly: nothing to discover.
func (p *Provider) staticOnly() bool { return p.reader == nil && p.cluster == nil }

// Snapshot returns the pools as last discovered, sorted (nodepools.Sort).
// It never waits for a rebuild once a first snapshot exists: when every
// source was last asked longer than Options.Refresh ago, it is returned
// while Start's loop rebuilds. Before the first snapshot it waits for it
// until ctx ends, then returns the static pools with Incomplete
// "discovery not ready". The snapshot is shared: callers must not modify
// it.
func (p *Provider) Snapshot(ctx context.Context) nodepools.Snapshot {
	if p.staticOnly() {
		return nodepools.Snapshot{Pools: p.static}
	}
	snap, asked := p.current()
	if !asked.IsZero() {
		if p.stale(asked) {
			p.requestRebuild()
		}
		return snap
	}
	p.requestRebuild()
	select {
	case <-p.ready:
		snap, _ := p.current()
		return snap
	case <-ctx.Done():
		return nodepools.Snapshot{Pools: p.static, Incomplete: []string{"discovery not ready"}}
	}
}

// Ready reports whether Snapshot answers without waiting: the provider
// holds static pools only, or a first snapshot has been published.
func (p *Provider) Ready() bool {
	if p.staticOnly() {
		return true
	}
	select {
	case <-p.ready:
		return true
	default:
		return false
	}
}

// Refresh discovers the pools now, asking every source, in the caller's
// goroutine and under ctx, publishes the result and returns it. The
// `pools` command and tests use it; it does not need Start.
func (p *Provider) Refresh(ctx context.Context) nodepools.Snapshot {
	if p.staticOnly() {
		return nodepools.Snapshot{Pools: p.static}
	}
	p.rebuild(ctx, false)
	snap, _ := p.current()
	return snap
}

// Invalidate tells the provider that Nodes, Karpenter NodePools or
// EC2NodeClasses changed: Start's loop reads the Kubernetes sources again
// soon, at most once per InvalidateInterval however often it is called,
// and reuses the EKS answers (Options.Refresh renews those). The webhook
// calls it from the event handlers of its Node, NodePool and EC2NodeClass
// informers, so a new node group or NodePool is a candidate within a
// second rather than a Refresh. It never blocks, and does nothing for
// static pools alone; before Start, Start's first discovery serves it.
func (p *Provider) Invalidate() {
	if p.staticOnly() {
		return
	}
	p.invalid.Store(true)
	p.requestRebuild()
}

// Start makes the first discovery, then rebuilds until ctx ends: asking
// every source each Options.Refresh (on real time) and when Snapshot finds
// the snapshot stale, reading the Kubernetes sources after Invalidate. It
// returns nil when ctx ends, at once for static pools alone, and an error
// if called twice.
func (p *Provider) Start(ctx context.Context) error {
	if p.staticOnly() {
		return nil
	}
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("node pool discovery started twice")
	}
	p.rebuild(ctx, false)
	last := time.Now() // when the last rebuild ended, for Invalidate's pace
	timer := time.NewTimer(p.refresh)
	defer timer.Stop()
	for {
		kubeOnly := false
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-p.kick:
			_, asked := p.current()
			switch {
			case p.stale(asked):
			case p.invalid.Load():
				kubeOnly = true
				if !sleep(ctx, p.invalidateEvery-time.Since(last)) {
					return nil
				}
			default:
				continue // a rebuild since the request served it
			}
		}
		p.rebuild(ctx, kubeOnly)
		last = time.Now()
		if !kubeOnly {
			timer.Reset(p.refresh)
		}
	}
}

// sleep waits d, or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// NeedLeaderElection is false: every replica of the webhook answers
// admissions and needs its own snapshot.
func (p *Provider) NeedLeaderElection() bool { return false }

func (p *Provider) current() (nodepools.Snapshot, time.Time) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.snap, p.asked
}

func (p *Provider) stale(asked time.Time) bool {
	return asked.IsZero() || p.now().Sub(asked) >= p.refresh
}

func (p *Provider) requestRebuild() {
	select {
	case p.kick <- struct{}{}:
	default: // one is queued already
	}
}

// rebuild discovers and publishes a snapshot. kubeOnly reuses the EKS
// sources' last answers (when there are any) instead of asking again.
func (p *Provider) rebuild(ctx context.Context, kubeOnly bool) {
	p.building.Lock()
	defer p.building.Unlock()
	p.invalid.Store(false) // this discovery reads what Invalidate announced
	kubeOnly = kubeOnly && (p.cluster == nil || p.lastCluster != nil)
	snap := p.discover(ctx, kubeOnly)

	p.mu.Lock()
	previous := p.snap.Incomplete
	p.snap = snap
	if !kubeOnly || p.cluster == nil {
		p.asked = p.now()
	}
	p.mu.Unlock()
	p.readyOnce.Do(func() { close(p.ready) })

	if len(previous) > 0 && len(snap.Incomplete) == 0 {
		p.log.Info("node pool discovery is complete again")
	}
	p.log.V(1).Info("node pools discovered", "pools", len(snap.Pools), "incomplete", snap.Incomplete, "kubernetesOnly", kubeOnly)
}

// answer is one source's pools as of one discovery.
type answer struct {
	pools []nodepools.Pool
	// roleErrs says, by pool key, why a pool in pools has no role.
	roleErrs map[string]error
	// instanceRoles are the roles found for nodes' instances, by
	// spec.providerID (the nodes source only).
	instanceRoles map[string]string
	// err says the source failed or answered in part: pools may be
	// missing.
	err error
}

// discover asks every source (the Kubernetes ones only, with kubeOnly),
// keeps the last good answer of those that fail, merges the answers and
// logs what is new. Must hold p.building.
func (p *Provider) discover(ctx context.Context, kubeOnly bool) nodepools.Snapshot {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	var (
		karpenter, groups, fargate answer
		karpenterInstalled         = true
		nodes                      nodeGroups
		nodesErr                   error
		wg                         sync.WaitGroup
	)
	if p.reader != nil {
		wg.Go(func() { karpenter, karpenterInstalled = karpenterPools(ctx, p.reader, p.roles) })
		wg.Go(func() { nodes, nodesErr = listNodeGroups(ctx, p.reader) })
	}
	if p.cluster != nil && !kubeOnly {
		wg.Go(func() {
			pools, err := p.cluster.NodeGroups(ctx)
			groups = answer{pools: pools, err: err}
		})
		wg.Go(func() {
			pools, err := p.cluster.FargateProfiles(ctx)
			fargate = answer{pools: pools, err: err}
		})
	}
	wg.Wait()
	if !karpenterInstalled && !p.karpenterAbsent {
		p.log.Info("Karpenter is not installed (no karpenter.sh/v1 NodePool kind): no Karpenter node pools")
	}
	p.karpenterAbsent = !karpenterInstalled

	log := notes{}
	var incomplete []string
	record := func(source string, a answer) {
		if a.err != nil {
			incomplete = append(incomplete, source+": "+cause(a.err))
			log.add("source/"+source, "node pool source failed, keeping its last answer", "source", source, "error", a.err.Error())
		}
	}
	if p.cluster != nil {
		if !kubeOnly {
			groups = p.settle(sourceNodeGroups, groups, log)
			fargate = p.settle(sourceFargate, fargate, log)
			p.lastCluster = &[2]answer{groups, fargate}
		}
		groups, fargate = p.lastCluster[0], p.lastCluster[1]
		record(sourceNodeGroups, groups)
		record(sourceFargate, fargate)
	}
	karpenter = p.settle(sourceKarpenter, karpenter, log)
	record(sourceKarpenter, karpenter)

	var seen answer
	if p.reader != nil {
		if nodesErr != nil {
			seen = answer{err: nodesErr}
		} else {
			known := map[string]bool{}
			for _, pool := range slices.Concat(groups.pools, karpenter.pools) {
				known[pool.Key()] = pool.RoleARN != ""
			}
			seen = nodes.pools(ctx, p.roles, func(key string) bool { return known[key] }, p.instanceRoles, log)
			p.instanceRoles = seen.instanceRoles
		}
		seen = p.settle(sourceNodes, seen, log)
		record(sourceNodes, seen)
	}

	pools := merge(p.static, slices.Concat(groups.pools, fargate.pools, karpenter.pools), seen.pools)
	noteUnknownRoles(pools, log, karpenter.roleErrs, seen.roleErrs)
	if p.cluster == nil {
		noteFargateWithoutCluster(nodes, log)
	}
	p.logNotes(log)
	return nodepools.Snapshot{Pools: pools, Incomplete: incomplete}
}

// settle keeps a source's last good answer where the new one falls short.
// When the source failed (a.err), the pools of its last answer missing
// from this one are kept, so pools that disappear while a source fails
// stay until it answers in full. When the role of a managed node group or
// NodePool could not be found this time (a.roleErrs), the role it had is
// kept, and logged; self-managed pools are grouped by role, so their
// nodes keep their roles instead (nodeRoles.fallBack). Must hold
// p.building.
func (p *Provider) settle(source string, a answer, log notes) answer {
	last := p.lastGood[source]
	if a.err != nil {
		have := map[string]bool{}
		for _, pool := range a.pools {
			have[pool.Key()] = true
		}
		for _, pool := range last {
			if !have[pool.Key()] {
				a.pools = append(a.pools, pool)
			}
		}
	}
	lastRole := map[string]string{}
	for _, pool := range last {
		if pool.RoleARN != "" && pool.Kind != nodepools.KindSelfManaged {
			lastRole[pool.Key()] = pool.RoleARN
		}
	}
	for i, pool := range a.pools {
		key := pool.Key()
		err, role := a.roleErrs[key], lastRole[key]
		if pool.RoleARN != "" || err == nil || role == "" {
			continue
		}
		a.pools[i].RoleARN = role
		delete(a.roleErrs, key)
		log.add("kept/"+key, "node pool role not found again, keeping the one found before",
			"pool", pool.String(), "role", role, "reason", err.Error())
	}
	p.lastGood[source] = a.pools
	return a
}

// merge makes one pool of each pool described by a source (EKS, Karpenter)
// and the same pool seen on Nodes, adds the pools only Nodes show, and the
// static pools. Fargate nodes only count towards the profile EKS describes.
func merge(static, described, seen []nodepools.Pool) []nodepools.Pool {
	out := slices.Clone(described)
	at := map[string]int{}
	for i, pool := range out {
		at[pool.Key()] = i
	}
	for _, pool := range seen {
		i, ok := at[pool.Key()]
		switch {
		case ok:
			out[i] = combine(out[i], pool)
		case pool.Kind == nodepools.KindFargate:
			// A node is never a Fargate profile; without the profile there
			// is nothing to count it against.
		default:
			// Seen pools are distinct already; self-managed ones of one
			// eksctl group with two roles share a key.
			out = append(out, pool)
		}
	}
	out = append(out, static...)
	nodepools.Sort(out)
	return out
}

// combine is a pool described by its source (EKS or a Karpenter NodePool)
// together with the same pool as its Nodes show it. The description wins:
// it holds what the pool may become, not only what runs now. Nodes give the
// count, the role and platforms when the description lacks them, and for a
// managed node group the labels its nodes carry beyond the group's
// configured ones: EKS's labels field lists only those, while pods select
// on the labels EKS and the kubelet add (eks.amazonaws.com/nodegroup,
// kubernetes.io/arch). Labels open for the kind (zone, instance type, see
// nodepools.OpenLabel) are never taken from nodes: describeNodes leaves
// them out of seen.
func combine(described, seen nodepools.Pool) nodepools.Pool {
	out := described
	out.Nodes = seen.Nodes
	if out.RoleARN == "" {
		out.RoleARN = seen.RoleARN
	}
	if len(out.Platforms) == 0 {
		out.Platforms = seen.Platforms
	}
	if described.Kind != nodepools.KindManagedNodeGroup {
		return out
	}
	labels := maps.Clone(seen.Labels)
	if labels == nil && len(described.Labels) > 0 {
		labels = map[string]string{}
	}
	maps.Copy(labels, described.Labels)
	out.Labels = labels
	out.Requirements = slices.Clone(described.Requirements)
	for _, req := range seen.Requirements {
		_, fixed := labels[req.Key]
		constrained := slices.ContainsFunc(out.Requirements, func(r corev1.NodeSelectorRequirement) bool { return r.Key == req.Key })
		if !fixed && !constrained {
			out.Requirements = append(out.Requirements, req)
		}
	}
	return out
}

// noteUnknownRoles logs each discovered pool still without a role, and why.
func noteUnknownRoles(pools []nodepools.Pool, log notes, why ...map[string]error) {
	for _, pool := range pools {
		if pool.RoleARN != "" || pool.Kind == nodepools.KindStatic {
			continue
		}
		reason := "no source names it"
		for _, m := range why {
			if err := m[pool.Key()]; err != nil {
				reason = err.Error()
				break
			}
		}
		log.add("role/"+pool.Key(), "node pool role unknown: pods that may run on it are checked as unknown",
			"pool", pool.String(), "reason", reason)
	}
}

// noteFargateWithoutCluster: Fargate nodes run, but with no EKS cluster to
// describe their profiles, the pods those profiles select are placed on
// node pools and judged against node roles instead of the profiles' pod
// execution roles. A profile without selectors would select nothing, so a
// pool changes no answer: the log says it.
func noteFargateWithoutCluster(nodes nodeGroups, log notes) {
	if len(nodes.fargate) == 0 {
		return
	}
	log.add("fargate", "Fargate nodes run, but no EKS cluster is configured to describe their profiles (--cluster-name): pods they select are placed on node pools",
		"profiles", slices.Sorted(maps.Keys(nodes.fargate)))
}

// notes are what one discovery found that belongs in the log only, by
// subject ("source/EKS node groups", "role/karpenter-nodepool/auto").
// Discovery runs each Refresh: a note is logged when its subject is new or
// its text changed since the last discovery, so a steady state is logged
// once, and a problem that goes away and comes back is logged again.
type notes map[string]note

type note struct {
	msg string
	kv  []any
}

func (n notes) add(subject, msg string, kv ...any) { n[subject] = note{msg: msg, kv: kv} }

// logNotes logs the notes that are new or changed, and remembers them.
// Must hold p.building.
func (p *Provider) logNotes(n notes) {
	logged := make(map[string]string, len(n))
	for _, subject := range slices.Sorted(maps.Keys(n)) {
		text := fmt.Sprint(n[subject].msg, n[subject].kv)
		if p.logged[subject] != text {
			p.log.Info(n[subject].msg, n[subject].kv...)
		}
		logged[subject] = text
	}
	p.logged = logged
}

// briefError is an error with words of our own for Snapshot.Incomplete.
type briefError struct {
	brief string
	err   error
}

func (e *briefError) Error() string { return e.err.Error() }
func (e *briefError) Unwrap() error { return e.err }

// cause is err in a few words for Snapshot.Incomplete, whose entries can
// reach kubectl warnings: a briefError's brief; a Kubernetes API error's
// reason (Forbidden, ServiceUnavailable) or else its HTTP status; else
// awsclient.CauseOf's words (an AWS error code such as
// AccessDeniedException, "timed out"). Never the error's text, which can
// carry AWS's or the API server's words, hosts and ARNs: that goes to the
// log.
func cause(err error) string {
	var (
		brief  *briefError
		status apierrors.APIStatus
	)
	switch {
	case errors.As(err, &brief):
		return brief.brief
	case errors.As(err, &status):
		s := status.Status()
		if reason := string(s.Reason); reasonPattern.MatchString(reason) {
			return reason
		}
		if s.Code != 0 {
			return fmt.Sprintf("HTTP %d", s.Code)
		}
	}
	return awsclient.CauseOf(err)
}

// reasonPattern is a Kubernetes StatusReason as the API server spells them
// (metav1.StatusReasonForbidden, ...); anything else is not shown.
var reasonPattern = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)
