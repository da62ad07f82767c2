package discover

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

// newNode is a Node with labels and options applied.
func newNode(name string, labels map[string]string, opts ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: maps.Clone(labels)}}
	for _, o := range opts {
		o(n)
	}
	return n
}

func providerID(id string) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Spec.ProviderID = id }
}

func taints(ts ...corev1.Taint) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Spec.Taints = ts }
}

func nodeInfo(os, arch, kernel string) func(*corev1.Node) {
	return func(n *corev1.Node) {
		n.Status.NodeInfo = corev1.NodeSystemInfo{OperatingSystem: os, Architecture: arch, KernelVersion: kernel}
	}
}

// with adds labels to a copy of base.
func with(base map[string]string, kv ...string) map[string]string {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

var linuxAMD64Labels = map[string]string{corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64"}

func noSchedule(key, value string) corev1.Taint {
	return corev1.Taint{Key: key, Value: value, Effect: corev1.TaintEffectNoSchedule}
}

// fakeRoles is a RoleResolver answering from maps. It records the calls
// it gets; err is returned by every call alongside what was found.
type fakeRoles struct {
	mu        sync.Mutex
	instances map[string]string // instance ID → role ARN
	profiles  map[string]string // instance profile name → role ARN
	roles     map[string]string // role name → role ARN
	err       error
	calls     []string
}

func (f *fakeRoles) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeRoles) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeRoles) InstanceRoles(_ context.Context, region string, ids []string) (map[string]string, error) {
	f.record(fmt.Sprintf("InstanceRoles %s %s", region, strings.Join(ids, ",")))
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for _, id := range ids {
		if role, ok := f.instances[id]; ok {
			out[id] = role
		}
	}
	return out, f.err
}

func (f *fakeRoles) InstanceProfileRole(_ context.Context, name string) (string, error) {
	f.record("InstanceProfileRole " + name)
	return f.lookup(f.profiles, name)
}

func (f *fakeRoles) RoleARN(_ context.Context, name string) (string, error) {
	f.record("RoleARN " + name)
	return f.lookup(f.roles, name)
}

func (f *fakeRoles) lookup(m map[string]string, name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	role, ok := m[name]
	if !ok {
		return "", fmt.Errorf("%s: NoSuchEntity", name)
	}
	return role, nil
}

func fakeReader(t *testing.T, objs ...client.Object) client.Reader {
	t.Helper()
	return fake.NewClientBuilder().WithObjects(objs...).Build()
}

const (
	roleA = "arn:aws:iam::111122223333:role/NodeRoleA"
	roleB = "arn:aws:iam::111122223333:role/eks/NodeRoleB"
)

func TestListNodeGroups(t *testing.T) {
	r := fakeReader(t,
		newNode("karp-1", map[string]string{labelKarpenterNodePool: "default"}),
		newNode("karp-2", map[string]string{labelKarpenterNodePool: "default", LabelNodegroup: "ignored"}),
		newNode("mng-1", map[string]string{LabelNodegroup: "ng-arm"}),
		newNode("fargate-1", map[string]string{labelEKSComputeType: "fargate", labelFargateProfile: "batch"}),
		newNode("fargate-2", map[string]string{labelEKSComputeType: "fargate", labelFargateProfile: "batch"}),
		newNode("self-1", map[string]string{labelEksctlNodeGroup: "legacy"}),
		newNode("self-2", nil),
	)
	g, err := listNodeGroups(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for key, ng := range g.named {
		for _, n := range ng.nodes {
			got[key] = append(got[key], n.Name)
		}
	}
	for _, n := range g.selfManaged {
		got["self-managed"] = append(got["self-managed"], n.Name)
	}
	want := map[string][]string{
		"karpenter-nodepool/default": {"karp-1", "karp-2"},
		"managed-node-group/ng-arm":  {"mng-1"},
		"self-managed":               {"self-1", "self-2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groups = %v, want %v", got, want)
	}
	if !reflect.DeepEqual(g.fargate, map[string]int{"batch": 2}) {
		t.Errorf("fargate = %v, want batch: 2", g.fargate)
	}
}

func TestDescribeNodes(t *testing.T) {
	amd64 := []nodepools.Platform{{OS: "linux", Architecture: "amd64"}}
	tests := map[string]struct {
		kind  nodepools.Kind // self-managed when empty
		nodes []*corev1.Node
		want  nodepools.Pool
	}{
		"labels with one value on every node are pool labels": {
			nodes: []*corev1.Node{
				newNode("a", with(linuxAMD64Labels, "team", "ml")),
				newNode("b", with(linuxAMD64Labels, "team", "ml")),
			},
			want: nodepools.Pool{Labels: map[string]string{"team": "ml"}, Platforms: amd64, Nodes: 2},
		},
		"per-node labels of a managed node group stay open, even on one node": {
			kind: nodepools.KindManagedNodeGroup,
			nodes: []*corev1.Node{newNode("a", with(linuxAMD64Labels,
				LabelNodegroup, "general",
				corev1.LabelTopologyZone, "us-east-1a",
				corev1.LabelInstanceTypeStable, "m5.large",
				corev1.LabelHostname, "ip-10-0-1-1",
				LabelCapacityType, "ON_DEMAND",
			))},
			want: nodepools.Pool{Labels: map[string]string{LabelNodegroup: "general"}, Platforms: amd64, Nodes: 1},
		},
		"per-node labels of a NodePool stay open": {
			kind: nodepools.KindKarpenter,
			nodes: []*corev1.Node{
				newNode("a", with(linuxAMD64Labels, labelKarpenterNodePool, "default", "karpenter.k8s.aws/instance-family", "c7g", "karpenter.sh/capacity-type", "spot")),
				newNode("b", with(linuxAMD64Labels, labelKarpenterNodePool, "default", "karpenter.k8s.aws/instance-family", "m7g", "karpenter.sh/capacity-type", "on-demand")),
			},
			want: nodepools.Pool{Labels: map[string]string{labelKarpenterNodePool: "default"}, Platforms: amd64, Nodes: 2},
		},
		"a label on every node with different values is an In requirement": {
			nodes: []*corev1.Node{
				newNode("a", with(linuxAMD64Labels, "tier", "web", corev1.LabelTopologyZone, "us-west-2b")),
				newNode("b", with(linuxAMD64Labels, "tier", "api", corev1.LabelTopologyZone, "us-west-2a")),
				newNode("c", with(linuxAMD64Labels, "tier", "web", corev1.LabelTopologyZone, "us-west-2b")),
			},
			want: nodepools.Pool{
				Requirements: []corev1.NodeSelectorRequirement{
					{Key: "tier", Operator: corev1.NodeSelectorOpIn, Values: []string{"api", "web"}},
				},
				Platforms: amd64,
				Nodes:     3,
			},
		},
		"a label missing from one node is neither label nor requirement": {
			nodes: []*corev1.Node{
				newNode("a", with(linuxAMD64Labels, "gpu", "true")),
				newNode("b", linuxAMD64Labels),
			},
			want: nodepools.Pool{Platforms: amd64, Nodes: 2},
		},
		"taints on every node are pool taints, lifecycle taints are not": {
			nodes: []*corev1.Node{
				newNode("a", nil, taints(
					noSchedule("dedicated", "ml"),
					noSchedule("only-a", ""),
					corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute},
					noSchedule("node.cloudprovider.kubernetes.io/uninitialized", "true"),
					noSchedule("karpenter.sh/disrupted", ""),
					noSchedule("ToBeDeletedByClusterAutoscaler", "1700000000"),
					corev1.Taint{Key: "DeletionCandidateOfClusterAutoscaler", Value: "1700000000", Effect: corev1.TaintEffectPreferNoSchedule},
				)),
				newNode("b", nil, taints(
					corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute},
					noSchedule("node.cloudprovider.kubernetes.io/uninitialized", "true"),
					noSchedule("karpenter.sh/disrupted", ""),
					noSchedule("ToBeDeletedByClusterAutoscaler", "1700000000"),
					corev1.Taint{Key: "DeletionCandidateOfClusterAutoscaler", Value: "1700000000", Effect: corev1.TaintEffectPreferNoSchedule},
					noSchedule("dedicated", "ml"),
				)),
			},
			want: nodepools.Pool{Taints: []corev1.Taint{noSchedule("dedicated", "ml")}, Nodes: 2},
		},
		"a taint with another value or effect on one node is not a pool taint": {
			nodes: []*corev1.Node{
				newNode("a", nil, taints(noSchedule("dedicated", "ml"), noSchedule("gpu", "true"))),
				newNode("b", nil, taints(noSchedule("dedicated", "web"), corev1.Taint{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoExecute})),
			},
			want: nodepools.Pool{Nodes: 2},
		},
		"platforms are the distinct os/arch of the nodes, normalized": {
			nodes: []*corev1.Node{
				newNode("a", map[string]string{corev1.LabelOSStable: "linux", corev1.LabelArchStable: "arm64"}),
				newNode("b", map[string]string{corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64"}),
				newNode("c", nil, nodeInfo("linux", "aarch64", "6.1.0")),
			},
			want: nodepools.Pool{
				Platforms: []nodepools.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}},
				Nodes:     3,
			},
		},
		"status.nodeInfo stands in for missing os and arch labels": {
			nodes: []*corev1.Node{newNode("a", nil, nodeInfo("linux", "arm64", "6.1.0"))},
			want: nodepools.Pool{
				Platforms: []nodepools.Platform{{OS: "linux", Architecture: "arm64"}},
				Nodes:     1,
			},
		},
		"a Windows node's build comes from node.kubernetes.io/windows-build": {
			nodes: []*corev1.Node{
				newNode("a", map[string]string{corev1.LabelOSStable: "windows", corev1.LabelArchStable: "amd64", corev1.LabelWindowsBuild: "10.0.20348"}),
			},
			want: nodepools.Pool{
				Platforms: []nodepools.Platform{{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348"}},
				Nodes:     1,
			},
		},
		"without the label, a Windows build comes from the kernel version": {
			nodes: []*corev1.Node{
				newNode("a", nil, nodeInfo("windows", "amd64", "10.0.17763.6293")),
				newNode("b", nil, nodeInfo("windows", "amd64", "10.0.20348.2227")),
			},
			want: nodepools.Pool{
				Platforms: []nodepools.Platform{
					{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763"},
					{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348"},
				},
				Nodes: 2,
			},
		},
		"a node with no os or arch adds no platform": {
			nodes: []*corev1.Node{newNode("a", map[string]string{corev1.LabelArchStable: "amd64"})},
			want:  nodepools.Pool{Nodes: 1},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			kind := cmp.Or(tc.kind, nodepools.KindSelfManaged)
			tc.want.Kind = kind
			got := describeNodes(kind, tc.nodes)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("describeNodes =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// poolRoles is each pool as "KEY nodes=N" → its role.
func poolRoles(pools []nodepools.Pool) map[string]string {
	out := map[string]string{}
	for _, p := range pools {
		out[fmt.Sprintf("%s nodes=%d", p.Key(), p.Nodes)] = p.RoleARN
	}
	return out
}

func TestNodeGroupPools(t *testing.T) {
	ctx := context.Background()
	r := fakeReader(t,
		newNode("ip-1", with(linuxAMD64Labels, labelEksctlNodeGroup, "legacy"), providerID("aws:///us-west-2a/i-00000001")),
		newNode("ip-2", with(linuxAMD64Labels, labelEksctlNodeGroup, "legacy"), providerID("aws:///us-west-2b/i-00000002")),
		newNode("ip-6", with(linuxAMD64Labels, labelEksctlNodeGroup, "legacy"), providerID("aws:///us-west-2b/i-00000006")),
		newNode("ip-7", with(linuxAMD64Labels, labelEksctlNodeGroup, "batch"), providerID("aws:///us-west-2b/i-00000007")),
		newNode("ip-3", linuxAMD64Labels, providerID("aws:///eu-west-1a/i-00000003")),
		newNode("ip-4", linuxAMD64Labels, providerID("aws:///eu-west-1a/i-00000004")),
		newNode("ip-5", linuxAMD64Labels, providerID("aws:///us-west-2a/i-00000005")),
		newNode("onprem", linuxAMD64Labels, providerID("kind://docker/kind/onprem")),
		newNode("mi-1", with(linuxAMD64Labels, labelEKSComputeType, "hybrid"), providerID("eks-hybrid:///us-west-2/prod/mi-1")),
		newNode("mi-2", with(linuxAMD64Labels, labelEKSComputeType, "hybrid"), providerID("eks-hybrid:///us-west-2/prod/mi-2")),
		newNode("mng-1", with(linuxAMD64Labels, LabelNodegroup, "known"), providerID("aws:///us-west-2a/i-00000011")),
		newNode("mng-2", with(linuxAMD64Labels, LabelNodegroup, "unknown"), providerID("aws:///us-west-2a/i-00000012")),
		newNode("mng-3", with(linuxAMD64Labels, LabelNodegroup, "mixed"), providerID("aws:///us-west-2a/i-00000013")),
		newNode("mng-4", with(linuxAMD64Labels, LabelNodegroup, "mixed"), providerID("aws:///us-west-2a/i-00000014")),
		newNode("mng-5", with(linuxAMD64Labels, LabelNodegroup, "scaling-in"), providerID("aws:///us-west-2a/i-00000015")),
		newNode("mng-6", with(linuxAMD64Labels, LabelNodegroup, "scaling-in"), providerID("aws:///us-west-2a/i-00000016")),
		newNode("mng-7", with(linuxAMD64Labels, LabelNodegroup, "gone"), providerID("aws:///us-west-2a/i-00000017")),
		newNode("karp-1", with(linuxAMD64Labels, labelKarpenterNodePool, "default"), providerID("aws:///us-west-2a/i-00000021")),
		newNode("fargate-1", map[string]string{labelEKSComputeType: "fargate", labelFargateProfile: "batch"}),
	)
	roles := &fakeRoles{instances: map[string]string{
		"i-00000001": roleA, "i-00000002": roleA, // one eksctl group; i-00000006 is terminated
		"i-00000003": roleB, "i-00000004": roleB, // one role, no eksctl name
		"i-00000012": roleA,
		"i-00000013": roleA, "i-00000014": roleB,
		"i-00000015": roleB, // i-00000016 has just terminated
		"i-00000021": roleB,
	}}
	g, err := listNodeGroups(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	log := notes{}
	a := g.pools(ctx, roles, func(key string) bool { return key == "managed-node-group/known" }, nil, log)

	want := map[string]string{
		"self-managed/legacy nodes=3":           roleA, // ip-6 joins the role its group agrees on
		"self-managed/batch nodes=1":            "",    // no node of the group has a known role
		"self-managed/NodeRoleB nodes=2":        roleB,
		"self-managed/unknown-role nodes=2":     "", // ip-5 has no role, onprem no EC2 instance
		"self-managed/hybrid nodes=2":           "", // EKS Hybrid Nodes have no instance profile
		"managed-node-group/known nodes=1":      "", // another source gives it
		"managed-node-group/unknown nodes=1":    roleA,
		"managed-node-group/mixed nodes=2":      "",
		"managed-node-group/scaling-in nodes=2": roleB,
		"managed-node-group/gone nodes=1":       "",
		"karpenter-nodepool/default nodes=1":    roleB,
		"fargate-profile/batch nodes=1":         "",
	}
	if got := poolRoles(a.pools); !reflect.DeepEqual(got, want) {
		t.Errorf("pools =\n%v\nwant\n%v", got, want)
	}
	if a.err != nil {
		t.Errorf("err = %v, want nil: nodes whose role is unknown are pools, not a failed source", a.err)
	}

	wantErrs := map[string][]string{
		"managed-node-group/mixed":  {"different roles: " + roleA + ", " + roleB},
		"managed-node-group/gone":   {"node mng-7: instance i-00000017: no instance profile role found"},
		"self-managed/batch":        {"node ip-7: instance i-00000007"},
		"self-managed/hybrid":       {`node mi-1: spec.providerID "eks-hybrid:///us-west-2/prod/mi-1" does not name an EC2 instance`},
		"self-managed/unknown-role": {"node ip-5: instance i-00000005", `node onprem: spec.providerID "kind://docker/kind/onprem"`},
	}
	if len(a.roleErrs) != len(wantErrs) {
		t.Errorf("roleErrs = %v, want keys of %v", a.roleErrs, wantErrs)
	}
	for key, msgs := range wantErrs {
		for _, msg := range msgs {
			if err := a.roleErrs[key]; err == nil || !strings.Contains(err.Error(), msg) {
				t.Errorf("roleErrs[%s] = %v, want %q in it", key, err, msg)
			}
		}
	}
	for subject, instance := range map[string]string{
		"unresolved/self-managed/legacy":           "i-00000006",
		"unresolved/managed-node-group/scaling-in": "i-00000016",
	} {
		if n, ok := log[subject]; !ok || !strings.Contains(fmt.Sprint(n.kv), instance) {
			t.Errorf("note %s = %+v, want %s logged", subject, n, instance)
		}
	}

	// One call per region; the known group's instance is not looked up,
	// nor are the hybrid nodes, which have no instance.
	wantCalls := []string{
		"InstanceRoles eu-west-1 i-00000003,i-00000004",
		"InstanceRoles us-west-2 i-00000001,i-00000002,i-00000005,i-00000006,i-00000007,i-00000012,i-00000013,i-00000014,i-00000015,i-00000016,i-00000017,i-00000021",
	}
	if calls := roles.Calls(); !slices.Equal(calls, wantCalls) {
		t.Errorf("calls =\n%v\nwant\n%v", calls, wantCalls)
	}
	wantInstances := map[string]string{
		"aws:///us-west-2a/i-00000001": roleA, "aws:///us-west-2b/i-00000002": roleA,
		"aws:///eu-west-1a/i-00000003": roleB, "aws:///eu-west-1a/i-00000004": roleB,
		"aws:///us-west-2a/i-00000012": roleA, "aws:///us-west-2a/i-00000013": roleA,
		"aws:///us-west-2a/i-00000014": roleB, "aws:///us-west-2a/i-00000015": roleB,
		"aws:///us-west-2a/i-00000021": roleB,
	}
	if !reflect.DeepEqual(a.instanceRoles, wantInstances) {
		t.Errorf("instanceRoles =\n%v\nwant\n%v", a.instanceRoles, wantInstances)
	}
}

func TestNodeGroupPoolsLookupFails(t *testing.T) {
	ctx := context.Background()
	r := fakeReader(t,
		newNode("self-1", linuxAMD64Labels, providerID("aws:///us-west-2a/i-00000001")),
		newNode("self-2", linuxAMD64Labels, providerID("aws:///us-west-2a/i-00000002")),
		newNode("self-3", linuxAMD64Labels, providerID("aws:///us-west-2a/i-00000005")),
		newNode("mng-1", with(linuxAMD64Labels, LabelNodegroup, "ng"), providerID("aws:///us-west-2a/i-00000003")),
		newNode("mng-2", with(linuxAMD64Labels, LabelNodegroup, "ng"), providerID("aws:///us-west-2a/i-00000004")),
	)
	// The resolver finds some roles and fails for the rest; self-3's role
	// was found by the last discovery.
	roles := &fakeRoles{
		instances: map[string]string{"i-00000001": roleA, "i-00000003": roleA},
		err:       errors.New("DescribeInstances: throttled"),
	}
	remembered := map[string]string{"aws:///us-west-2a/i-00000005": roleB}
	g, err := listNodeGroups(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	log := notes{}
	a := g.pools(ctx, roles, func(string) bool { return false }, remembered, log)
	want := map[string]string{
		// The group takes the role of the nodes whose role is known.
		"managed-node-group/ng nodes=2":  roleA,
		"self-managed/NodeRoleA nodes=1": roleA,
		// A role found before is kept while the lookup fails.
		"self-managed/NodeRoleB nodes=1":    roleB,
		"self-managed/unknown-role nodes=1": "",
	}
	if got := poolRoles(a.pools); !reflect.DeepEqual(got, want) {
		t.Errorf("pools =\n%v\nwant\n%v", got, want)
	}
	if err := a.roleErrs["self-managed/unknown-role"]; err == nil || !strings.Contains(err.Error(), "node self-2: instance i-00000002: DescribeInstances: throttled") {
		t.Errorf("roleErrs = %v, want self-2 named with the cause", a.roleErrs)
	}
	if n, ok := log["node/self-3"]; !ok || !strings.Contains(fmt.Sprint(n.kv), roleB) {
		t.Errorf("notes = %+v, want self-3's kept role logged", log)
	}
	if n, ok := log["unresolved/managed-node-group/ng"]; !ok || !strings.Contains(fmt.Sprint(n.kv), "node mng-2") {
		t.Errorf("notes = %+v, want mng-2 logged as unresolved", log)
	}
	if got := a.instanceRoles["aws:///us-west-2a/i-00000005"]; got != roleB {
		t.Errorf("instanceRoles = %v, want the kept role remembered again", a.instanceRoles)
	}
}
