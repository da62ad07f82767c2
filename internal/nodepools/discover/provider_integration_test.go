package discover

import (
	"context"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ecr-preflight/ecr-preflight/e2e/envtestutil"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

// TestProviderAgainstAPIServer discovers pools from a real kube-apiserver
// through a watch-backed controller-runtime cache, as the webhook does:
// first without Karpenter installed, then after its CRDs are installed and
// a NodePool and EC2NodeClass created. It needs bin/k8s (make envtest-assets).
func TestProviderAgainstAPIServer(t *testing.T) {
	_, cfg := envtestutil.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	direct, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reader := startCache(ctx, t, cfg)

	arm := map[string]string{corev1.LabelOSStable: "linux", corev1.LabelArchStable: "arm64"}
	nodes := []*corev1.Node{
		newNode("ip-10-0-1-1", with(arm, LabelNodegroup, "ng-arm", corev1.LabelTopologyZone, "us-west-2a", corev1.LabelHostname, "ip-10-0-1-1"),
			providerID("aws:///us-west-2a/i-00000001"), taints(noSchedule("arch", "arm64"))),
		newNode("ip-10-0-2-1", with(arm, LabelNodegroup, "ng-arm", corev1.LabelTopologyZone, "us-west-2b", corev1.LabelHostname, "ip-10-0-2-1"),
			providerID("aws:///us-west-2b/i-00000002"), taints(noSchedule("arch", "arm64"), noSchedule(corev1.TaintNodeUnschedulable, ""))),
		newNode("ip-10-0-3-1", with(linuxAMD64Labels, labelKarpenterNodePool, "default"), providerID("aws:///us-west-2a/i-00000003")),
		// A self-managed Windows node whose kubelet has not labelled it:
		// its platform comes from status.nodeInfo.
		newNode("win-1", nil, providerID("aws:///us-west-2a/i-00000004"), nodeInfo("windows", "amd64", "10.0.20348.2227")),
		newNode("fargate-ip-10-0-4-1", map[string]string{labelEKSComputeType: "fargate", labelFargateProfile: "batch"}),
		// An EKS Hybrid Node: no EC2 instance, so no role to find.
		newNode("mi-0123456789abcdef0", with(linuxAMD64Labels, labelEKSComputeType, "hybrid"), providerID("eks-hybrid:///us-west-2/prod/mi-0123456789abcdef0")),
	}
	for _, n := range nodes {
		status := n.Status
		if err := direct.Create(ctx, n); err != nil {
			t.Fatalf("creating node %s: %v", n.Name, err)
		}
		n.Status = status
		if err := direct.Status().Update(ctx, n); err != nil {
			t.Fatalf("updating the status of node %s: %v", n.Name, err)
		}
	}

	roles := &fakeRoles{
		instances: map[string]string{"i-00000001": roleA, "i-00000002": roleA, "i-00000003": roleB, "i-00000004": roleB},
		roles:     map[string]string{"KarpenterNodeRole": roleA},
	}
	p, err := NewProvider(Options{Nodes: reader, Roles: roles, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	amd64, arm64 := nodepools.Platform{OS: "linux", Architecture: "amd64"}, nodepools.Platform{OS: "linux", Architecture: "arm64"}
	// Zone, hostname, os and arch vary per node: they stay open.
	wantArm := nodepools.Pool{
		Name: "ng-arm", Kind: nodepools.KindManagedNodeGroup, RoleARN: roleA,
		Labels:    map[string]string{LabelNodegroup: "ng-arm"},
		Taints:    []corev1.Taint{noSchedule("arch", "arm64")},
		Platforms: []nodepools.Platform{arm64},
		Nodes:     2,
	}
	wantWindows := nodepools.Pool{
		Name: "NodeRoleB", Kind: nodepools.KindSelfManaged, RoleARN: roleB,
		Platforms: []nodepools.Platform{{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348"}},
		Nodes:     1,
	}
	wantHybrid := nodepools.Pool{
		Name: "hybrid", Kind: nodepools.KindSelfManaged,
		Labels:    map[string]string{labelEKSComputeType: "hybrid"},
		Platforms: []nodepools.Platform{amd64},
		Nodes:     1,
	}

	t.Run("without Karpenter installed, a NodePool is known from its nodes", func(t *testing.T) {
		snap := p.Refresh(ctx)
		// Complete: the hybrid node is a pool without a role, the Fargate
		// node (with no EKS cluster to describe its profile) is logged.
		want := nodepools.Snapshot{
			Pools: []nodepools.Pool{
				{
					Name: "default", Kind: nodepools.KindKarpenter, RoleARN: roleB,
					Labels: map[string]string{labelKarpenterNodePool: "default"}, Platforms: []nodepools.Platform{amd64}, Nodes: 1,
				},
				wantArm,
				wantWindows, // NodeRoleB sorts before hybrid
				wantHybrid,
			},
		}
		if !reflect.DeepEqual(snap, want) {
			t.Errorf("Snapshot =\n%+v\nwant\n%+v", snap, want)
		}
	})

	t.Run("once Karpenter is installed, its NodePool describes the pool", func(t *testing.T) {
		if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
			Paths: []string{filepath.Join("testdata", "crds")}, ErrorIfPathMissing: true,
		}); err != nil {
			t.Fatalf("installing the Karpenter CRDs: %v", err)
		}
		for _, doc := range []string{nodeClassObj, karpenterObj, `
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: gpu}
spec:
  template:
    spec:
      requirements: [{key: kubernetes.io/arch, operator: In, values: [amd64]}]
      taints: [{key: nvidia.com/gpu, effect: NoSchedule}]
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}`} {
			obj := object(t, doc)
			if err := direct.Create(ctx, obj); err != nil {
				t.Fatalf("creating %s %s: %v", obj.GetKind(), obj.GetName(), err)
			}
		}

		want := []nodepools.Pool{
			{
				Name: "default", Kind: nodepools.KindKarpenter, RoleARN: roleA,
				Labels: map[string]string{labelKarpenterNodePool: "default", "team": "web"},
				Requirements: []corev1.NodeSelectorRequirement{
					{Key: corev1.LabelTopologyZone, Operator: corev1.NodeSelectorOpIn, Values: []string{"us-west-2a", "us-west-2b"}},
					{Key: corev1.LabelArchStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"amd64", "arm64"}},
					{Key: corev1.LabelOSStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"linux"}},
				},
				Platforms: []nodepools.Platform{amd64, arm64},
				Nodes:     1,
			},
			{
				Name: "gpu", Kind: nodepools.KindKarpenter, RoleARN: roleA,
				Labels: map[string]string{labelKarpenterNodePool: "gpu", corev1.LabelArchStable: "amd64"},
				Requirements: []corev1.NodeSelectorRequirement{
					{Key: corev1.LabelArchStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"amd64"}},
					{Key: corev1.LabelOSStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"linux"}},
				},
				Taints:    []corev1.Taint{{Key: "nvidia.com/gpu", Effect: corev1.TaintEffectNoSchedule}},
				Platforms: []nodepools.Platform{amd64},
			},
			wantArm,
			wantWindows,
			wantHybrid,
		}
		// The cache learns of the new kinds and objects through discovery
		// and watches: wait for them, within bounds.
		var snap nodepools.Snapshot
		deadline := time.Now().Add(time.Minute)
		for {
			snap = p.Refresh(ctx)
			if reflect.DeepEqual(snap.Pools, want) || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !reflect.DeepEqual(snap.Pools, want) {
			t.Errorf("Pools =\n%+v\nwant\n%+v", snap.Pools, want)
		}
		if len(snap.Incomplete) != 0 {
			t.Errorf("Incomplete = %q, want none", snap.Incomplete)
		}
		// The NodePool's node needs no instance lookup once the NodePool
		// names its role.
		calls := roles.Calls()
		if last := calls[len(calls)-1]; !slices.Contains(calls, "RoleARN KarpenterNodeRole") ||
			last != "InstanceRoles us-west-2 i-00000001,i-00000002,i-00000004" {
			t.Errorf("calls = %q, want the EC2NodeClass role looked up and i-00000003 no longer", calls)
		}
	})

	t.Run("once started, a new node group is found after Invalidate, without a Refresh", func(t *testing.T) {
		roles.mu.Lock()
		roles.instances["i-00000005"] = roleB
		roles.mu.Unlock()
		// Refresh an hour away: only Invalidate can bring the new node in.
		p, err := NewProvider(Options{Nodes: reader, Roles: roles, Refresh: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- p.Start(runCtx) }()
		defer func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("Start = %v", err)
			}
		}()
		p.Snapshot(ctx) // the first discovery, before the node exists
		if err := direct.Create(ctx, newNode("ip-10-0-5-1", with(linuxAMD64Labels, LabelNodegroup, "ng-new"), providerID("aws:///us-west-2c/i-00000005"))); err != nil {
			t.Fatal(err)
		}
		// The webhook calls Invalidate from its informers' event handlers;
		// the cache may see the node a little later, so call it until then.
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			p.Invalidate()
			if pool, ok := poolsByKey(p.Snapshot(ctx))["managed-node-group/ng-new"]; ok {
				if pool.RoleARN != roleB || pool.Nodes != 1 {
					t.Errorf("ng-new = %+v, want role %s and 1 node", pool, roleB)
				}
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Error("node group ng-new is not in the snapshot a minute after Invalidate")
	})
}

// startCache starts a controller-runtime informer cache, stopped with
// ctx, and returns a client reading typed and unstructured objects from
// it, as the webhook's manager does.
func startCache(ctx context.Context, t *testing.T, cfg *rest.Config) client.Reader {
	t.Helper()
	informers, err := cache.New(cfg, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- informers.Start(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("cache: %v", err)
		}
	})
	if !informers.WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
	c, err := client.New(cfg, client.Options{Cache: &client.CacheOptions{Reader: informers, Unstructured: true}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
