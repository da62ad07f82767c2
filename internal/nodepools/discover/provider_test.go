package discover

import (
	"context"
	"errors"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

// fakeCluster is a ClusterSource with canned answers. When gate is set,
// NodeGroups waits for it (or for its context) before answering.
type fakeCluster struct {
	mu                    sync.Mutex
	groups, fargate       []nodepools.Pool
	groupsErr, fargateErr error
	gate                  chan struct{}
	calls                 atomic.Int32
}

func (f *fakeCluster) NodeGroups(ctx context.Context) ([]nodepools.Pool, error) {
	f.calls.Add(1)
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.groups), f.groupsErr
}

func (f *fakeCluster) FargateProfiles(context.Context) ([]nodepools.Pool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.fargate), f.fargateErr
}

func (f *fakeCluster) set(apply func(*fakeCluster)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	apply(f)
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// poolsByKey indexes a snapshot's pools.
func poolsByKey(s nodepools.Snapshot) map[string]nodepools.Pool {
	out := map[string]nodepools.Pool{}
	for _, p := range s.Pools {
		out[p.Key()] = p
	}
	return out
}

func newProvider(t *testing.T, o Options) *Provider {
	t.Helper()
	p, err := NewProvider(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	armPlatform  = nodepools.Platform{OS: "linux", Architecture: "arm64"}
	fallbackPool = nodepools.Pool{Name: "fallback", Kind: nodepools.KindStatic, RoleARN: "arn:aws:iam::111122223333:role/fallback"}
	fargateRole  = "arn:aws:iam::111122223333:role/PodExecutionRole"
	karpenterObj = `
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: default}
spec:
  template:
    metadata: {labels: {team: web}}
    spec:
      requirements: [{key: topology.kubernetes.io/zone, operator: In, values: [us-west-2a, us-west-2b]}]
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}`
	nodeClassObj = `
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata: {name: default}
spec: {role: KarpenterNodeRole, amiSelectorTerms: [{alias: al2023@latest}]}`
)

func TestNewProvider(t *testing.T) {
	if _, err := NewProvider(Options{Nodes: fakeReader(t)}); err == nil {
		t.Error("NewProvider with Nodes and no Roles: want an error")
	}
	if _, err := NewProvider(Options{Refresh: -time.Second}); err == nil {
		t.Error("NewProvider with a negative refresh: want an error")
	}
}

func TestProviderStaticOnly(t *testing.T) {
	p := newProvider(t, Options{Static: []nodepools.Pool{fallbackPool}})
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // answers without waiting, even on an ended context
	want := nodepools.Snapshot{Pools: []nodepools.Pool{fallbackPool}}
	if got := p.Snapshot(ctx); !reflect.DeepEqual(got, want) {
		t.Errorf("Snapshot = %+v, want %+v", got, want)
	}
	if got := p.Refresh(ctx); !reflect.DeepEqual(got, want) {
		t.Errorf("Refresh = %+v, want %+v", got, want)
	}
	if !p.Ready() {
		t.Error("Ready = false, want true for static pools")
	}
	if err := p.Start(context.Background()); err != nil {
		t.Errorf("Start = %v, want nil at once", err)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("goroutines %d → %d, want none started", before, after)
	}
}

// mergeFixture is a cluster seen by every source: EKS describes node
// groups ng-arm, custom and zero and Fargate profile batch; Karpenter has
// NodePool default; Nodes run in ng-arm, custom, ng-only (a managed group
// EKS does not list), default, batch and a self-managed group.
func mergeFixture(t *testing.T) (*fakeCluster, *fakeRoles, []client.Object) {
	cluster := &fakeCluster{
		groups: []nodepools.Pool{
			{
				Name: "ng-arm", Kind: nodepools.KindManagedNodeGroup, RoleARN: roleA,
				Labels:    map[string]string{LabelNodegroup: "ng-arm", "team": "eks-says"},
				Taints:    []corev1.Taint{noSchedule("arch", "arm64")},
				Platforms: []nodepools.Platform{armPlatform},
			},
			{Name: "custom", Kind: nodepools.KindManagedNodeGroup, RoleARN: roleA, Labels: map[string]string{LabelNodegroup: "custom"}},
			{Name: "zero", Kind: nodepools.KindManagedNodeGroup, RoleARN: roleA},
		},
		fargate: []nodepools.Pool{{
			Name: "batch", Kind: nodepools.KindFargate, RoleARN: fargateRole,
			Fargate: []nodepools.FargateSelector{{Namespace: "batch"}},
		}},
	}
	roles := &fakeRoles{
		instances: map[string]string{"i-00000003": roleB, "i-00000004": roleB},
		roles:     map[string]string{"KarpenterNodeRole": roleB},
	}
	arm := map[string]string{corev1.LabelOSStable: "linux", corev1.LabelArchStable: "arm64"}
	objs := []client.Object{
		newNode("arm-1", with(arm, LabelNodegroup, "ng-arm", "team", "nodes-say", corev1.LabelTopologyZone, "us-west-2a"),
			providerID("aws:///us-west-2a/i-00000001"), taints(noSchedule("arch", "arm64"), noSchedule("extra", ""))),
		newNode("arm-2", with(arm, LabelNodegroup, "ng-arm", "team", "nodes-say", corev1.LabelTopologyZone, "us-west-2b"),
			providerID("aws:///us-west-2b/i-00000002"), taints(noSchedule("arch", "arm64"), noSchedule("extra", ""))),
		newNode("custom-1", with(linuxAMD64Labels, LabelNodegroup, "custom"), providerID("aws:///us-west-2a/i-00000005")),
		newNode("only-1", with(linuxAMD64Labels, LabelNodegroup, "ng-only"), providerID("aws:///us-west-2a/i-00000003")),
		newNode("karp-1", with(linuxAMD64Labels, labelKarpenterNodePool, "default", "team", "web"), providerID("aws:///us-west-2a/i-00000006")),
		newNode("self-1", linuxAMD64Labels, providerID("aws:///us-west-2a/i-00000004")),
		newNode("fargate-1", map[string]string{labelEKSComputeType: "fargate", labelFargateProfile: "batch"}),
		newNode("fargate-2", map[string]string{labelEKSComputeType: "fargate", labelFargateProfile: "batch"}),
		object(t, karpenterObj),
		object(t, nodeClassObj),
	}
	return cluster, roles, objs
}

func TestProviderMerge(t *testing.T) {
	cluster, roles, objs := mergeFixture(t)
	p := newProvider(t, Options{
		Static:  []nodepools.Pool{fallbackPool},
		Nodes:   fakeReader(t, objs...),
		Cluster: cluster,
		Roles:   roles,
	})
	snap := p.Refresh(context.Background())
	if len(snap.Incomplete) != 0 {
		t.Errorf("Incomplete = %q, want none", snap.Incomplete)
	}
	got := poolsByKey(snap)
	var keys []string
	for _, pool := range snap.Pools {
		keys = append(keys, pool.Key())
	}
	wantKeys := []string{
		"fargate-profile/batch",
		"karpenter-nodepool/default",
		"managed-node-group/custom", "managed-node-group/ng-arm", "managed-node-group/ng-only", "managed-node-group/zero",
		"self-managed/NodeRoleB",
		"static/fallback",
	}
	if !slices.Equal(keys, wantKeys) {
		t.Fatalf("pools = %q, want %q (one per pool, sorted)", keys, wantKeys)
	}

	t.Run("a managed node group EKS describes takes role, labels and taints from EKS, the count from nodes", func(t *testing.T) {
		want := nodepools.Pool{
			Name: "ng-arm", Kind: nodepools.KindManagedNodeGroup, RoleARN: roleA,
			// EKS's labels win; the labels every node carries are kept.
			Labels: map[string]string{
				LabelNodegroup: "ng-arm", "team": "eks-says",
				corev1.LabelOSStable: "linux", corev1.LabelArchStable: "arm64",
			},
			Requirements: []corev1.NodeSelectorRequirement{
				{Key: corev1.LabelTopologyZone, Operator: corev1.NodeSelectorOpIn, Values: []string{"us-west-2a", "us-west-2b"}},
			},
			Taints:    []corev1.Taint{noSchedule("arch", "arm64")},
			Platforms: []nodepools.Platform{armPlatform},
			Nodes:     2,
		}
		if !reflect.DeepEqual(got["managed-node-group/ng-arm"], want) {
			t.Errorf("ng-arm =\n%+v\nwant\n%+v", got["managed-node-group/ng-arm"], want)
		}
	})
	t.Run("platforms come from nodes when EKS does not know the AMI", func(t *testing.T) {
		if pl := got["managed-node-group/custom"].Platforms; !reflect.DeepEqual(pl, []nodepools.Platform{{OS: "linux", Architecture: "amd64"}}) {
			t.Errorf("custom platforms = %v, want linux/amd64 from its node", pl)
		}
	})
	t.Run("a node group scaled to zero is a pool with no nodes", func(t *testing.T) {
		if zero := got["managed-node-group/zero"]; zero.Nodes != 0 || zero.RoleARN != roleA {
			t.Errorf("zero = %+v", zero)
		}
	})
	t.Run("a node group EKS does not list takes its role from its instances", func(t *testing.T) {
		if only := got["managed-node-group/ng-only"]; only.RoleARN != roleB || only.Nodes != 1 {
			t.Errorf("ng-only = %+v, want role %s and 1 node", only, roleB)
		}
	})
	t.Run("a NodePool and its nodes are one pool described by the NodePool", func(t *testing.T) {
		np := got["karpenter-nodepool/default"]
		if np.RoleARN != roleB || np.Nodes != 1 || np.Labels["team"] != "web" ||
			len(np.Platforms) != 2 || np.Requirements[0].Key != corev1.LabelTopologyZone {
			t.Errorf("default = %+v", np)
		}
	})
	t.Run("Fargate nodes count against their profile", func(t *testing.T) {
		if fp := got["fargate-profile/batch"]; fp.Nodes != 2 || fp.RoleARN != fargateRole || len(fp.Fargate) != 1 {
			t.Errorf("batch = %+v", fp)
		}
	})
	t.Run("instances are looked up only for pools no other source gives a role", func(t *testing.T) {
		want := []string{"InstanceRoles us-west-2 i-00000003,i-00000004"}
		var calls []string
		for _, c := range roles.Calls() {
			if strings.HasPrefix(c, "InstanceRoles") {
				calls = append(calls, c)
			}
		}
		if !slices.Equal(calls, want) {
			t.Errorf("calls = %q, want %q", calls, want)
		}
	})
}

func TestProviderFargateWithoutCluster(t *testing.T) {
	p := newProvider(t, Options{
		Nodes: fakeReader(t, newNode("fargate-1", map[string]string{labelEKSComputeType: "fargate", labelFargateProfile: "batch"})),
		Roles: &fakeRoles{},
	})
	snap := p.Refresh(context.Background())
	if len(snap.Pools) != 0 {
		t.Errorf("Pools = %+v, want none: a Fargate node is not a node pool", snap.Pools)
	}
	want := []string{"EKS Fargate profiles: Fargate nodes of profiles batch run, but no EKS cluster is configured to describe the profiles"}
	if !slices.Equal(snap.Incomplete, want) {
		t.Errorf("Incomplete = %q, want %q", snap.Incomplete, want)
	}
}

func TestProviderKeepsLastGoodAnswers(t *testing.T) {
	cluster, roles, objs := mergeFixture(t)
	var failNodes atomic.Bool
	reader := fake.NewClientBuilder().WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if _, ok := list.(*corev1.NodeList); ok && failNodes.Load() {
				return errors.New("the server is currently unable to handle the request")
			}
			return c.List(ctx, list, opts...)
		},
	}).Build()
	p := newProvider(t, Options{Nodes: reader, Cluster: cluster, Roles: roles})
	ctx := context.Background()
	groups, fargate := slices.Clone(cluster.groups), slices.Clone(cluster.fargate)
	first := p.Refresh(ctx)
	if len(first.Incomplete) != 0 {
		t.Fatalf("first discovery incomplete: %q", first.Incomplete)
	}

	tests := []struct {
		name           string
		break_, repair func()
		wantIncomplete string
	}{
		{
			name: "EKS answers in part: the node groups it missed are kept",
			break_: func() {
				cluster.set(func(f *fakeCluster) {
					f.groups, f.groupsErr = f.groups[:1], errors.New("describing node group custom: AccessDeniedException")
				})
			},
			repair: func() {
				cluster.set(func(f *fakeCluster) { f.groups, f.groupsErr = groups, nil })
			},
			wantIncomplete: "EKS node groups: describing node group custom: AccessDeniedException",
		},
		{
			name: "EKS fails for Fargate profiles: the profiles are kept",
			break_: func() {
				cluster.set(func(f *fakeCluster) { f.fargate, f.fargateErr = nil, errors.New("ThrottlingException") })
			},
			repair:         func() { cluster.set(func(f *fakeCluster) { f.fargate, f.fargateErr = fargate, nil }) },
			wantIncomplete: "EKS Fargate profiles: ThrottlingException",
		},
		{
			name:           "Nodes cannot be listed: the pools seen on them are kept",
			break_:         func() { failNodes.Store(true) },
			repair:         func() { failNodes.Store(false) },
			wantIncomplete: "nodes: listing nodes: the server is currently unable to handle the request",
		},
		{
			name: "a role lookup fails: the role found before is kept",
			break_: func() {
				roles.mu.Lock()
				delete(roles.roles, "KarpenterNodeRole")
				roles.mu.Unlock()
			},
			repair: func() {
				roles.mu.Lock()
				roles.roles["KarpenterNodeRole"] = roleB
				roles.mu.Unlock()
			},
			wantIncomplete: "Karpenter: Karpenter NodePool default: role lookup failed, keeping " + roleB + ": EC2NodeClass default: role KarpenterNodeRole: KarpenterNodeRole: NoSuchEntity",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.break_()
			snap := p.Refresh(ctx)
			if !slices.Contains(snap.Incomplete, tc.wantIncomplete) {
				t.Errorf("Incomplete = %q, want it to contain %q", snap.Incomplete, tc.wantIncomplete)
			}
			if !reflect.DeepEqual(snap.Pools, first.Pools) {
				t.Errorf("Pools =\n%+v\nwant the first answer\n%+v", snap.Pools, first.Pools)
			}
			tc.repair()
		})
	}
	if snap := p.Refresh(ctx); len(snap.Incomplete) != 0 || !reflect.DeepEqual(snap.Pools, first.Pools) {
		t.Errorf("every source repaired: Snapshot = %+v, want the first answer, complete", snap)
	}
}

func TestProviderRoleUnknown(t *testing.T) {
	// No source ever found the role: the pool is there, without one, and
	// the snapshot says why.
	p := newProvider(t, Options{
		Nodes: fakeReader(t, object(t, karpenterObj)),
		Roles: &fakeRoles{},
	})
	snap := p.Refresh(context.Background())
	if len(snap.Pools) != 1 || snap.Pools[0].RoleARN != "" {
		t.Fatalf("Pools = %+v, want the NodePool without a role", snap.Pools)
	}
	want := []string{"Karpenter NodePool default: role unknown: EC2NodeClass default not found"}
	if !slices.Equal(snap.Incomplete, want) {
		t.Errorf("Incomplete = %q, want %q", snap.Incomplete, want)
	}
}

func TestProviderKarpenterNotInstalled(t *testing.T) {
	reader := fake.NewClientBuilder().WithObjects(newNode("karp-1", map[string]string{labelKarpenterNodePool: "default"}, providerID("aws:///us-west-2a/i-00000001"))).
		WithInterceptorFuncs(noKind()).Build()
	p := newProvider(t, Options{Nodes: reader, Roles: &fakeRoles{instances: map[string]string{"i-00000001": roleA}}})
	snap := p.Refresh(context.Background())
	if len(snap.Incomplete) != 0 || len(snap.Pools) != 1 || snap.Pools[0].RoleARN != roleA {
		t.Errorf("Snapshot = %+v, want the NodePool seen on its node, complete", snap)
	}
}

func TestProviderSnapshotBeforeStart(t *testing.T) {
	cluster, roles, objs := mergeFixture(t)
	p := newProvider(t, Options{Static: []nodepools.Pool{fallbackPool}, Nodes: fakeReader(t, objs...), Cluster: cluster, Roles: roles})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	want := nodepools.Snapshot{Pools: []nodepools.Pool{fallbackPool}, Incomplete: []string{"discovery not ready"}}
	if got := p.Snapshot(ctx); !reflect.DeepEqual(got, want) {
		t.Errorf("Snapshot = %+v, want %+v", got, want)
	}
	if p.Ready() {
		t.Error("Ready = true before any discovery")
	}
	if n := cluster.calls.Load(); n != 0 {
		t.Errorf("EKS asked %d times before Start, want 0: Snapshot starts no work of its own", n)
	}
}

func TestProviderStart(t *testing.T) {
	cluster, roles, objs := mergeFixture(t)
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := newProvider(t, Options{
		Nodes: fakeReader(t, objs...), Cluster: cluster, Roles: roles,
		Refresh: time.Minute, Now: clock.Now,
	})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Start(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Start = %v, want nil once its context ends", err)
		}
	})

	// The first Snapshot waits for the first discovery.
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	first := p.Snapshot(waitCtx)
	if !p.Ready() {
		t.Error("Ready = false after the first snapshot")
	}
	if len(first.Incomplete) != 0 || len(first.Pools) != 7 {
		t.Fatalf("first Snapshot = %+v, want 7 pools, complete", first)
	}
	if err := p.Start(ctx); err == nil {
		t.Error("a second Start: want an error")
	}

	// A fresh snapshot is served as is.
	clock.Add(30 * time.Second)
	p.Snapshot(ctx)
	time.Sleep(20 * time.Millisecond)
	if n := cluster.calls.Load(); n != 1 {
		t.Fatalf("EKS asked %d times for a fresh snapshot, want 1", n)
	}

	// A stale one is served at once while one rebuild runs, however many
	// callers find it stale.
	gate := make(chan struct{})
	cluster.set(func(f *fakeCluster) {
		f.gate = gate
		f.groups = f.groups[:2] // node group zero is deleted
	})
	clock.Add(time.Minute)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got := p.Snapshot(ctx); !reflect.DeepEqual(got, first) {
				t.Errorf("stale Snapshot = %+v, want the first", got)
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for cluster.calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(gate)
	for len(p.Snapshot(ctx).Pools) == len(first.Pools) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if _, ok := poolsByKey(p.Snapshot(ctx))["managed-node-group/zero"]; ok {
		t.Error("after the rebuild: node group zero is still there")
	}
	if n := cluster.calls.Load(); n != 2 {
		t.Errorf("EKS asked %d times, want 2: one rebuild for every stale caller", n)
	}
}
