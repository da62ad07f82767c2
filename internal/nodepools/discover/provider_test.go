package discover

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
	p.Invalidate() // does nothing, and does not block
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
		newNode("arm-1", with(arm, LabelNodegroup, "ng-arm", "team", "nodes-say", corev1.LabelTopologyZone, "us-west-2a", corev1.LabelInstanceTypeStable, "m7g.large"),
			providerID("aws:///us-west-2a/i-00000001"), taints(noSchedule("arch", "arm64"), noSchedule("extra", ""))),
		newNode("arm-2", with(arm, LabelNodegroup, "ng-arm", "team", "nodes-say", corev1.LabelTopologyZone, "us-west-2b", corev1.LabelInstanceTypeStable, "c7g.large"),
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
			// EKS's labels win; per-node labels (zone, instance type, os,
			// arch) of its nodes stay open.
			Labels:    map[string]string{LabelNodegroup: "ng-arm", "team": "eks-says"},
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

// logLines is a logger that keeps the lines it logs at V(0).
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(_, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, args)
	}, funcr.Options{})
}

// count is how many lines contain every one of substrs.
func (l *logLines) count(substrs ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if !slices.ContainsFunc(substrs, func(s string) bool { return !strings.Contains(line, s) }) {
			n++
		}
	}
	return n
}

func TestProviderFargateWithoutCluster(t *testing.T) {
	var log logLines
	p := newProvider(t, Options{
		Nodes:  fakeReader(t, newNode("fargate-1", map[string]string{labelEKSComputeType: "fargate", labelFargateProfile: "batch"})),
		Roles:  &fakeRoles{},
		Logger: log.logger(),
	})
	for range 2 {
		snap := p.Refresh(context.Background())
		if len(snap.Pools) != 0 || len(snap.Incomplete) != 0 {
			t.Errorf("Snapshot = %+v, want no pool (a Fargate node is not a node pool) and complete", snap)
		}
	}
	if n := log.count("Fargate nodes run", "batch"); n != 1 {
		t.Errorf("Fargate note logged %d times over two discoveries, want 1:\n%s", n, strings.Join(log.lines, "\n"))
	}
}

// awsError is an AWS error as the SDK returns it, with text that must not
// reach Snapshot.Incomplete.
func awsError(code string) error {
	return fmt.Errorf("operation error EKS: ListNodegroups, https response error StatusCode: 400: %w",
		&smithy.GenericAPIError{Code: code, Message: "User: arn:aws:sts::111122223333:assumed-role/ecr-preflight/i-0abc is not authorized"})
}

func TestProviderKeepsLastGoodAnswers(t *testing.T) {
	cluster, roles, objs := mergeFixture(t)
	var failNodes atomic.Bool
	reader := fake.NewClientBuilder().WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if _, ok := list.(*corev1.NodeList); ok && failNodes.Load() {
				return apierrors.NewServiceUnavailable("etcd on 10.0.0.12 is unhealthy")
			}
			return c.List(ctx, list, opts...)
		},
	}).Build()
	var log logLines
	p := newProvider(t, Options{Nodes: reader, Cluster: cluster, Roles: roles, Logger: log.logger()})
	ctx := context.Background()
	groups, fargate := slices.Clone(cluster.groups), slices.Clone(cluster.fargate)
	first := p.Refresh(ctx)
	if len(first.Incomplete) != 0 {
		t.Fatalf("first discovery incomplete: %q", first.Incomplete)
	}

	tests := []struct {
		name           string
		break_, repair func()
		wantIncomplete []string
		wantLogged     string
	}{
		{
			name: "EKS answers in part: the node groups it missed are kept",
			break_: func() {
				cluster.set(func(f *fakeCluster) {
					f.groups, f.groupsErr = f.groups[:1], fmt.Errorf("describing node group custom: %w", awsError("AccessDeniedException"))
				})
			},
			repair: func() {
				cluster.set(func(f *fakeCluster) { f.groups, f.groupsErr = groups, nil })
			},
			wantIncomplete: []string{"EKS node groups: AccessDeniedException"},
			wantLogged:     "describing node group custom",
		},
		{
			name: "EKS fails for Fargate profiles: the profiles are kept",
			break_: func() {
				cluster.set(func(f *fakeCluster) { f.fargate, f.fargateErr = nil, awsError("ThrottlingException") })
			},
			repair:         func() { cluster.set(func(f *fakeCluster) { f.fargate, f.fargateErr = fargate, nil }) },
			wantIncomplete: []string{"EKS Fargate profiles: ThrottlingException"},
			wantLogged:     "ListNodegroups",
		},
		{
			name:           "Nodes cannot be listed: the pools seen on them are kept",
			break_:         func() { failNodes.Store(true) },
			repair:         func() { failNodes.Store(false) },
			wantIncomplete: []string{"nodes: ServiceUnavailable"},
			wantLogged:     "etcd on 10.0.0.12 is unhealthy",
		},
		{
			name: "a role lookup fails: the role found before is kept, and only logged",
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
			wantLogged: "KarpenterNodeRole: NoSuchEntity",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.break_()
			snap := p.Refresh(ctx)
			if !slices.Equal(snap.Incomplete, tc.wantIncomplete) {
				t.Errorf("Incomplete = %q, want %q", snap.Incomplete, tc.wantIncomplete)
			}
			if !reflect.DeepEqual(snap.Pools, first.Pools) {
				t.Errorf("Pools =\n%+v\nwant the first answer\n%+v", snap.Pools, first.Pools)
			}
			if log.count(tc.wantLogged) == 0 {
				t.Errorf("log does not say %q:\n%s", tc.wantLogged, strings.Join(log.lines, "\n"))
			}
			tc.repair()
		})
	}
	if snap := p.Refresh(ctx); len(snap.Incomplete) != 0 || !reflect.DeepEqual(snap.Pools, first.Pools) {
		t.Errorf("every source repaired: Snapshot = %+v, want the first answer, complete", snap)
	}
	if log.count("complete again") != 1 {
		t.Errorf("log does not say discovery is complete again:\n%s", strings.Join(log.lines, "\n"))
	}
}

func TestCause(t *testing.T) {
	tests := map[string]struct {
		err  error
		want string
	}{
		"an AWS error is its code": {
			err: fmt.Errorf("listing node groups in cluster prod: %w", awsError("AccessDeniedException")), want: "AccessDeniedException",
		},
		"errors joined: the first AWS code": {
			err:  errors.Join(errors.New("describing node group a: no"), awsError("ThrottlingException"), awsError("AccessDeniedException")),
			want: "ThrottlingException",
		},
		"a Kubernetes API error is its reason": {
			err:  fmt.Errorf("listing nodes: %w", apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, "", errors.New("user system:serviceaccount:x:y cannot list"))),
			want: "Forbidden",
		},
		"a Kubernetes API error with an odd reason is its status code": {
			err:  &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 502, Reason: "bad gateway from 10.0.0.1"}},
			want: "HTTP 502",
		},
		"a deadline": {err: fmt.Errorf("listing nodes: %w", context.DeadlineExceeded), want: "timed out"},
		"our own words": {
			err:  errors.Join(&briefError{brief: "NodePool a unreadable", err: errors.New("json: cannot unmarshal string")}),
			want: "NodePool a unreadable",
		},
		"anything else says nothing of its text": {err: errors.New("dial 10.0.0.1: refused"), want: "unexpected error"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := cause(tc.err); got != tc.want {
				t.Errorf("cause(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func TestProviderRoleUnknownIsScoped(t *testing.T) {
	// Pools whose role no source finds are pools without a role, not an
	// incomplete discovery: an EKS Auto Mode NodePool with no nodes, a
	// NodePool whose EC2NodeClass is missing, EKS Hybrid Nodes, a managed
	// node group whose instances cannot be resolved.
	var log logLines
	p := newProvider(t, Options{
		Nodes: fakeReader(t,
			object(t, karpenterObj),
			nodePoolObject(t, "auto", "eks.amazonaws.com", "NodeClass", "default"),
			newNode("mi-1", with(linuxAMD64Labels, labelEKSComputeType, "hybrid"), providerID("eks-hybrid:///us-west-2/prod/mi-1")),
			newNode("ng-1", with(linuxAMD64Labels, LabelNodegroup, "ng"), providerID("aws:///us-west-2a/i-00000001")),
		),
		Roles:  &fakeRoles{},
		Logger: log.logger(),
	})
	snap := p.Refresh(context.Background())
	if len(snap.Incomplete) != 0 {
		t.Errorf("Incomplete = %q, want none", snap.Incomplete)
	}
	want := map[string]string{
		"karpenter-nodepool/auto nodes=0":    "",
		"karpenter-nodepool/default nodes=0": "",
		"managed-node-group/ng nodes=1":      "",
		"self-managed/hybrid nodes=1":        "",
	}
	if got := poolRoles(snap.Pools); !reflect.DeepEqual(got, want) {
		t.Errorf("pools = %v, want %v", got, want)
	}
	for _, why := range []string{
		"EC2NodeClass default not found",
		"an EKS Auto Mode node class",
		"node mi-1: spec.providerID",
		"node ng-1: instance i-00000001: no instance profile role found",
	} {
		if log.count("node pool role unknown", why) != 1 {
			t.Errorf("log does not say once why a role is unknown (%q):\n%s", why, strings.Join(log.lines, "\n"))
		}
	}
	p.Refresh(context.Background())
	if n := log.count("node pool role unknown"); n != len(want) {
		t.Errorf("role unknown logged %d times over two discoveries, want %d, once per pool", n, len(want))
	}
}

func TestProviderOpenLabels(t *testing.T) {
	// A managed node group with one node: its zone and instance type are
	// that node's, not the group's.
	node := newNode("ip-1", with(linuxAMD64Labels,
		LabelNodegroup, "general",
		corev1.LabelTopologyZone, "us-east-1a",
		corev1.LabelInstanceTypeStable, "m5.large",
	), providerID("aws:///us-east-1a/i-00000001"))
	roles := &fakeRoles{instances: map[string]string{"i-00000001": roleA}}
	described := nodepools.Pool{Name: "general", Kind: nodepools.KindManagedNodeGroup, RoleARN: roleA, Labels: map[string]string{LabelNodegroup: "general"}}
	tests := map[string]*fakeCluster{
		"seen on nodes only":       nil,
		"described by EKS as well": {groups: []nodepools.Pool{described}},
	}
	for name, cluster := range tests {
		t.Run(name, func(t *testing.T) {
			o := Options{Nodes: fakeReader(t, node), Roles: roles}
			if cluster != nil {
				o.Cluster = cluster
			}
			snap := newProvider(t, o).Refresh(context.Background())
			want := []nodepools.Pool{{
				Name: "general", Kind: nodepools.KindManagedNodeGroup, RoleARN: roleA,
				Labels:    map[string]string{LabelNodegroup: "general"},
				Platforms: []nodepools.Platform{linuxAMD64},
				Nodes:     1,
			}}
			if !reflect.DeepEqual(snap.Pools, want) {
				t.Errorf("Pools =\n%+v\nwant\n%+v", snap.Pools, want)
			}
		})
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

// start runs p.Start until the test ends and waits for its first snapshot.
func start(t *testing.T, p *Provider) context.Context {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Start(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Start = %v, want nil once its context ends", err)
		}
	})
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p.Snapshot(wait)
	if !p.Ready() {
		t.Fatal("no first snapshot within 10s")
	}
	return ctx
}

func TestProviderRefreshesOnTimer(t *testing.T) {
	cluster, roles, objs := mergeFixture(t)
	p := newProvider(t, Options{Nodes: fakeReader(t, objs...), Cluster: cluster, Roles: roles, Refresh: 20 * time.Millisecond})
	start(t, p)
	// Nobody asks for a snapshot: Start's timer alone asks EKS again.
	deadline := time.Now().Add(10 * time.Second)
	for cluster.calls.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := cluster.calls.Load(); n < 4 {
		t.Errorf("EKS asked %d times in 10s with a Refresh of 20ms, want at least 4", n)
	}
}

func TestProviderInvalidate(t *testing.T) {
	cluster, roles, objs := mergeFixture(t)
	var (
		mu    sync.Mutex
		lists []time.Time // when Nodes were listed
	)
	reader := fake.NewClientBuilder().WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if _, ok := list.(*corev1.NodeList); ok {
				mu.Lock()
				lists = append(lists, time.Now())
				mu.Unlock()
			}
			return c.List(ctx, list, opts...)
		},
	}).Build()
	listed := func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(lists)
	}
	// The clock stands still: no snapshot is ever stale, and the timer is
	// an hour away, so every rebuild after the first is Invalidate's.
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := newProvider(t, Options{Nodes: reader, Cluster: cluster, Roles: roles, Refresh: time.Hour, Now: clock.Now})
	p.invalidateEvery = 200 * time.Millisecond
	ctx := start(t, p)

	// The first node of a new node group joins, followed by a burst of
	// informer events.
	if err := reader.Create(ctx, newNode("new-1", with(linuxAMD64Labels, LabelNodegroup, "ng-new"), providerID("aws:///us-west-2a/i-00000003"))); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		p.Invalidate()
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := poolsByKey(p.Snapshot(ctx))["managed-node-group/ng-new"]; ok {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, ok := poolsByKey(p.Snapshot(ctx))["managed-node-group/ng-new"]; !ok {
		t.Fatal("the new node group is not in the snapshot 10s after Invalidate")
	}
	time.Sleep(3 * p.invalidateEvery)

	got := listed()
	if len(got) != 2 {
		t.Fatalf("Nodes listed %d times, want 2: the first discovery and one for the whole burst", len(got))
	}
	if gap := got[1].Sub(got[0]); gap < p.invalidateEvery {
		t.Errorf("rebuilds %s apart, want at least %s", gap, p.invalidateEvery)
	}
	if n := cluster.calls.Load(); n != 1 {
		t.Errorf("EKS asked %d times, want 1: Invalidate re-reads Kubernetes only", n)
	}
}
