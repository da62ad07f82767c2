package webhook

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools/discover"
)

// countingRoles resolves every instance to nodeRole, counting the EC2 and
// IAM lookups discovery makes.
type countingRoles struct{ calls atomic.Int64 }

func (c *countingRoles) InstanceRoles(_ context.Context, _ string, ids []string) (map[string]string, error) {
	c.calls.Add(1)
	out := make(map[string]string, len(ids))
	for _, id := range ids {
		out[id] = nodeRole
	}
	return out, nil
}

func (c *countingRoles) InstanceProfileRole(context.Context, string) (string, error) {
	c.calls.Add(1)
	return nodeRole, nil
}

func (c *countingRoles) RoleARN(context.Context, string) (string, error) {
	c.calls.Add(1)
	return nodeRole, nil
}

// BenchmarkWarmAdmissionWithDiscovery: with node pools discovered from
// Nodes (two node groups), a warm admission makes no AWS call at all, for
// discovery or for the check: the placement comes from discovery's
// snapshot in memory and the answer from the engine's cache. It fails if
// any admission in the loop reaches AWS.
func BenchmarkWarmAdmissionWithDiscovery(b *testing.B) {
	engine, engineCalls := warmEngine(b)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	node := func(name, group, arch, id string) *corev1.Node {
		return &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
				"eks.amazonaws.com/nodegroup": group, "kubernetes.io/arch": arch, "kubernetes.io/os": "linux"}},
			Spec: corev1.NodeSpec{ProviderID: "aws:///us-west-2a/" + id},
		}
	}
	nodes := crfake.NewClientBuilder().WithScheme(scheme).WithObjects(
		node("a", "general", "amd64", "i-0000000000000000a"),
		node("b", "spot-arm", "arm64", "i-0000000000000000b"),
	).Build()
	roles := &countingRoles{}
	provider, err := discover.NewProvider(discover.Options{Nodes: nodes, Roles: roles, Refresh: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go func() { _ = provider.Start(ctx) }()
	pools := Pools{Snapshot: provider.Snapshot, Ready: provider.Ready}
	if snap := provider.Snapshot(ctx); len(snap.Pools) != 2 {
		b.Fatalf("discovered %+v, want the two node groups", snap)
	}
	a, err := newAdmitter(Options{Checker: engine, Pools: pools, Mode: ModeDeny})
	if err != nil {
		b.Fatal(err)
	}
	v := deploymentValidator(a)
	d := deployment("ui", uiImage, okImage, vpcImage)
	if w, err := v.ValidateCreate(ctx, d); err != nil || len(w) != 0 {
		b.Fatalf("first admission: warnings %q, error %v", w, err)
	}
	if pl, ok := pools.InstantPlacement(nodepools.Template{Namespace: namespace, Spec: &d.Spec.Template.Spec}); !ok || len(pl.Candidates) != 2 {
		b.Fatalf("placement %+v (instant %v), want both groups from memory", pl, ok)
	}
	before := engineCalls() + int(roles.calls.Load())

	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.ValidateCreate(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	calls := engineCalls() + int(roles.calls.Load()) - before
	b.ReportMetric(float64(calls)/float64(b.N), "aws-calls/op")
	if calls != 0 {
		b.Fatalf("warm admissions made %d AWS calls", calls)
	}
}
