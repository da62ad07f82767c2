package discover

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

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

// Defaults of Options.
const (
	DefaultRefresh = 30 * time.Second
	DefaultTimeout = 30 * time.Second
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
	// Refresh is how old a snapshot may be before Snapshot asks for a new
	// one; DefaultRefresh when zero.
	Refresh time.Duration
	// Timeout bounds one discovery, every source included; DefaultTimeout
	// when zero. A source that has not answered by then counts as failed.
	Timeout time.Duration
	Logger  logr.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Provider keeps a snapshot of the cluster's node pools. It is safe for
// concurrent use.
//
// Background work is tied to Start's context: Start (a controller-runtime
// manager.Runnable, so mgr.Add(provider) runs it on every replica) makes
// the first discovery and then rebuilds whenever Snapshot finds the
// snapshot older than Options.Refresh, one rebuild at a time, until its
// context ends. No goroutine outlives Start; Snapshot and Refresh start
// none. Without Nodes and Cluster the provider holds static pools only,
// answers at once and Start returns at once.
type Provider struct {
	static  []nodepools.Pool
	reader  client.Reader
	cluster ClusterSource
	roles   RoleResolver
	refresh time.Duration
	timeout time.Duration
	log     logr.Logger
	now     func() time.Time

	started   atomic.Bool
	kick      chan struct{} // a rebuild is wanted; capacity 1
	ready     chan struct{} // closed once the first snapshot is published
	readyOnce sync.Once

	building sync.Mutex // one discovery at a time; guards the fields below
	// lastGood is each source's last answer, kept for when it fails.
	lastGood        map[string][]nodepools.Pool
	karpenterAbsent bool

	mu    sync.RWMutex
	snap  nodepools.Snapshot
	built time.Time // when snap was published; zero before the first
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
		static:   slices.Clone(o.Static),
		reader:   o.Nodes,
		cluster:  o.Cluster,
		roles:    o.Roles,
		refresh:  cmp.Or(o.Refresh, DefaultRefresh),
		timeout:  cmp.Or(o.Timeout, DefaultTimeout),
		log:      o.Logger,
		now:      o.Now,
		kick:     make(chan struct{}, 1),
		ready:    make(chan struct{}),
		lastGood: map[string][]nodepools.Pool{},
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
// It never waits for a rebuild once a first snapshot exists: when that one
// is older than Options.Refresh it is returned while Start's loop rebuilds.
// Before the first snapshot it waits for it until ctx ends, then returns
// the static pools with Incomplete "discovery not ready". The snapshot is
// shared: callers must not modify it.
func (p *Provider) Snapshot(ctx context.Context) nodepools.Snapshot {
	if p.staticOnly() {
		return nodepools.Snapshot{Pools: p.static}
	}
	snap, built := p.current()
	if !built.IsZero() {
		if p.stale(built) {
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

// Refresh discovers the pools now, in the caller's goroutine and under ctx,
// publishes the result and returns it. The `pools` command and tests use
// it; it does not need Start.
func (p *Provider) Refresh(ctx context.Context) nodepools.Snapshot {
	if p.staticOnly() {
		return nodepools.Snapshot{Pools: p.static}
	}
	p.rebuild(ctx)
	snap, _ := p.current()
	return snap
}

// Start makes the first discovery, then rebuilds when Snapshot asks for
// it, until ctx ends; it returns nil then. It returns at once for static
// pools alone, and an error if called twice.
func (p *Provider) Start(ctx context.Context) error {
	if p.staticOnly() {
		return nil
	}
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("node pool discovery started twice")
	}
	p.rebuild(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.kick:
			// A request queued during the last rebuild is already served.
			if _, built := p.current(); p.stale(built) {
				p.rebuild(ctx)
			}
		}
	}
}

// NeedLeaderElection is false: every replica of the webhook answers
// admissions and needs its own snapshot.
func (p *Provider) NeedLeaderElection() bool { return false }

func (p *Provider) current() (nodepools.Snapshot, time.Time) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.snap, p.built
}

func (p *Provider) stale(built time.Time) bool {
	return built.IsZero() || p.now().Sub(built) >= p.refresh
}

func (p *Provider) requestRebuild() {
	select {
	case p.kick <- struct{}{}:
	default: // one is queued already
	}
}

// rebuild discovers and publishes a snapshot.
func (p *Provider) rebuild(ctx context.Context) {
	p.building.Lock()
	defer p.building.Unlock()
	snap := p.discover(ctx)

	p.mu.Lock()
	previous := p.snap.Incomplete
	p.snap, p.built = snap, p.now()
	p.mu.Unlock()
	p.readyOnce.Do(func() { close(p.ready) })

	if !slices.Equal(previous, snap.Incomplete) && len(snap.Incomplete) > 0 {
		p.log.Info("node pool discovery is incomplete", "problems", snap.Incomplete)
	}
	p.log.V(1).Info("node pools discovered", "pools", len(snap.Pools), "incomplete", len(snap.Incomplete))
}

// answer is one source's pools as of one discovery.
type answer struct {
	pools []nodepools.Pool
	// roleErrs says, by pool key, why a pool in pools has no role.
	roleErrs map[string]error
	// err says the source failed or answered in part.
	err error
}

// discover asks every source, keeps the last good answer of those that
// fail, and merges the answers. Must hold p.building.
func (p *Provider) discover(ctx context.Context) nodepools.Snapshot {
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
	if p.cluster != nil {
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

	var incomplete []string
	settle := func(source string, a answer) answer {
		a = p.settle(source, a)
		if a.err != nil {
			incomplete = append(incomplete, source+": "+oneLine(a.err.Error()))
		}
		return a
	}
	groups = settle(sourceNodeGroups, groups)
	fargate = settle(sourceFargate, fargate)
	karpenter = settle(sourceKarpenter, karpenter)

	var seen answer
	if p.reader != nil {
		if nodesErr != nil {
			seen = answer{err: nodesErr}
		} else {
			known := map[string]bool{}
			for _, pool := range slices.Concat(groups.pools, karpenter.pools) {
				known[pool.Key()] = pool.RoleARN != ""
			}
			seen = nodes.pools(ctx, p.roles, func(key string) bool { return known[key] })
		}
		seen = settle(sourceNodes, seen)
	}

	pools := merge(p.static, slices.Concat(groups.pools, fargate.pools, karpenter.pools), seen.pools)
	incomplete = append(incomplete, p.unknownRoles(pools, karpenter.roleErrs, seen.roleErrs)...)
	if p.cluster == nil {
		incomplete = append(incomplete, unknownFargate(seen.pools)...)
	}
	return nodepools.Snapshot{Pools: pools, Incomplete: incomplete}
}

// settle keeps a source's last good answer where the new one falls short:
// when the source failed, the pools it did not return this time; when a
// pool's role could not be found this time, the role it had (and the
// failure joins the source's error, so the snapshot says it is
// incomplete). Pools that disappear while a source fails therefore stay
// until it answers in full. Must hold p.building.
func (p *Provider) settle(source string, a answer) answer {
	last := map[string]nodepools.Pool{}
	for _, pool := range p.lastGood[source] {
		last[pool.Key()] = pool
	}
	if a.err != nil {
		have := map[string]bool{}
		for _, pool := range a.pools {
			have[pool.Key()] = true
		}
		for _, key := range slices.Sorted(maps.Keys(last)) {
			if !have[key] {
				a.pools = append(a.pools, last[key])
			}
		}
	}
	var kept []error
	for i, pool := range a.pools {
		key := pool.Key()
		if err, failed := a.roleErrs[key]; failed && last[key].RoleARN != "" {
			a.pools[i].RoleARN = last[key].RoleARN
			delete(a.roleErrs, key)
			kept = append(kept, fmt.Errorf("%s: role lookup failed, keeping %s: %w", pool, last[key].RoleARN, err))
		}
	}
	if len(kept) > 0 {
		a.err = joinErrors(append(slices.DeleteFunc([]error{a.err}, func(err error) bool { return err == nil }), kept...))
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
			at[pool.Key()] = len(out)
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
// kubernetes.io/arch).
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

// unknownRoles names each discovered pool still without a role, and why.
func (p *Provider) unknownRoles(pools []nodepools.Pool, why ...map[string]error) []string {
	var out []string
	for _, pool := range pools {
		if pool.RoleARN != "" || pool.Kind == nodepools.KindStatic {
			continue
		}
		msg := pool.String() + ": role unknown"
		for _, m := range why {
			if err := m[pool.Key()]; err != nil {
				msg += ": " + oneLine(err.Error())
				break
			}
		}
		out = append(out, msg)
	}
	return out
}

// unknownFargate: Fargate nodes run, but with no EKS cluster to describe
// their profiles, the pods those profiles select would be judged against
// node roles instead of the profiles' pod execution roles.
func unknownFargate(seen []nodepools.Pool) []string {
	var profiles []string
	for _, pool := range seen {
		if pool.Kind == nodepools.KindFargate {
			profiles = append(profiles, pool.Name)
		}
	}
	if len(profiles) == 0 {
		return nil
	}
	slices.Sort(profiles)
	return []string{fmt.Sprintf("%s: Fargate nodes of profiles %s run, but no EKS cluster is configured to describe the profiles",
		sourceFargate, strings.Join(profiles, ", "))}
}

// oneLine puts the lines of an error (errors.Join) on one line, as
// Snapshot.Incomplete entries are printed one per line.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }
