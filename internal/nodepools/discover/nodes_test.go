package discover

import (
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
	tests := map[string]struct {
		nodes []*corev1.Node
		want  nodepools.Pool
	}{
		"labels with one value on every node are pool labels; hostname is not": {
			nodes: []*corev1.Node{
				newNode("a", with(linuxAMD64Labels, "team", "ml", corev1.LabelHostname, "a")),
				newNode("b", with(linuxAMD64Labels, "team", "ml", corev1.LabelHostname, "b")),
			},
			want: nodepools.Pool{
				Labels:    with(linuxAMD64Labels, "team", "ml"),
				Platforms: []nodepools.Platform{{OS: "linux", Architecture: "amd64"}},
				Nodes:     2,
			},
		},
		"a label on every node with different values is an In requirement": {
			nodes: []*corev1.Node{
				newNode("a", with(linuxAMD64Labels, corev1.LabelTopologyZone, "us-west-2b")),
				newNode("b", with(linuxAMD64Labels, corev1.LabelTopologyZone, "us-west-2a")),
				newNode("c", with(linuxAMD64Labels, corev1.LabelTopologyZone, "us-west-2b")),
			},
			want: nodepools.Pool{
				Labels: linuxAMD64Labels,
				Requirements: []corev1.NodeSelectorRequirement{
					{Key: corev1.LabelTopologyZone, Operator: corev1.NodeSelectorOpIn, Values: []string{"us-west-2a", "us-west-2b"}},
				},
				Platforms: []nodepools.Platform{{OS: "linux", Architecture: "amd64"}},
				Nodes:     3,
			},
		},
		"a label missing from one node is neither label nor requirement": {
			nodes: []*corev1.Node{
				newNode("a", with(linuxAMD64Labels, "gpu", "true")),
				newNode("b", linuxAMD64Labels),
			},
			want: nodepools.Pool{
				Labels:    linuxAMD64Labels,
				Platforms: []nodepools.Platform{{OS: "linux", Architecture: "amd64"}},
				Nodes:     2,
			},
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
				Labels:    map[string]string{corev1.LabelOSStable: "windows", corev1.LabelArchStable: "amd64", corev1.LabelWindowsBuild: "10.0.20348"},
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
			want:  nodepools.Pool{Labels: map[string]string{corev1.LabelArchStable: "amd64"}, Nodes: 1},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := describeNodes(tc.nodes)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("describeNodes =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestNodeGroupPools(t *testing.T) {
	ctx := context.Background()
	r := fakeReader(t,
		newNode("ip-1", with(linuxAMD64Labels, labelEksctlNodeGroup, "legacy"), providerID("aws:///us-west-2a/i-00000001")),
		newNode("ip-2", with(linuxAMD64Labels, labelEksctlNodeGroup, "legacy"), providerID("aws:///us-west-2b/i-00000002")),
		newNode("ip-3", linuxAMD64Labels, providerID("aws:///eu-west-1a/i-00000003")),
		newNode("ip-4", linuxAMD64Labels, providerID("aws:///eu-west-1a/i-00000004")),
		newNode("ip-5", linuxAMD64Labels, providerID("aws:///us-west-2a/i-00000005")),
		newNode("onprem", linuxAMD64Labels, providerID("kind://docker/kind/onprem")),
		newNode("mng-1", with(linuxAMD64Labels, LabelNodegroup, "known"), providerID("aws:///us-west-2a/i-00000011")),
		newNode("mng-2", with(linuxAMD64Labels, LabelNodegroup, "unknown"), providerID("aws:///us-west-2a/i-00000012")),
		newNode("mng-3", with(linuxAMD64Labels, LabelNodegroup, "mixed"), providerID("aws:///us-west-2a/i-00000013")),
		newNode("mng-4", with(linuxAMD64Labels, LabelNodegroup, "mixed"), providerID("aws:///us-west-2a/i-00000014")),
		newNode("karp-1", with(linuxAMD64Labels, labelKarpenterNodePool, "default"), providerID("aws:///us-west-2a/i-00000021")),
		newNode("fargate-1", map[string]string{labelEKSComputeType: "fargate", labelFargateProfile: "batch"}),
	)
	roles := &fakeRoles{instances: map[string]string{
		"i-00000001": roleA, "i-00000002": roleA, // one eksctl group
		"i-00000003": roleB, "i-00000004": roleB, // one role, no eksctl name
		"i-00000012": roleA,
		"i-00000013": roleA, "i-00000014": roleB,
		"i-00000021": roleB,
	}}
	g, err := listNodeGroups(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	a := g.pools(ctx, roles, func(key string) bool { return key == "managed-node-group/known" })

	got := map[string]string{}
	for _, p := range a.pools {
		got[fmt.Sprintf("%s nodes=%d", p.Key(), p.Nodes)] = p.RoleARN
	}
	want := map[string]string{
		"self-managed/legacy nodes=2":        roleA,
		"self-managed/NodeRoleB nodes=2":     roleB,
		"managed-node-group/known nodes=1":   "", // another source gives it
		"managed-node-group/unknown nodes=1": roleA,
		"managed-node-group/mixed nodes=2":   "",
		"karpenter-nodepool/default nodes=1": roleB,
		"fargate-profile/batch nodes=1":      "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pools =\n%v\nwant\n%v", got, want)
	}

	// ip-5 has no role, onprem no EC2 instance: both are left out, named.
	if a.err == nil || !strings.Contains(a.err.Error(), "node ip-5: instance i-00000005 has no instance profile role") ||
		!strings.Contains(a.err.Error(), `node onprem: spec.providerID "kind://docker/kind/onprem" does not name an EC2 instance`) {
		t.Errorf("err = %v, want ip-5 and onprem named", a.err)
	}
	if err := a.roleErrs["managed-node-group/mixed"]; err == nil || !strings.Contains(err.Error(), "different roles: "+roleA+", "+roleB) {
		t.Errorf("roleErrs[mixed] = %v, want the two roles named", err)
	}
	if len(a.roleErrs) != 1 {
		t.Errorf("roleErrs = %v, want only mixed", a.roleErrs)
	}

	// One call per region; the known group's instance is not looked up.
	wantCalls := []string{
		"InstanceRoles eu-west-1 i-00000003,i-00000004",
		"InstanceRoles us-west-2 i-00000001,i-00000002,i-00000005,i-00000012,i-00000013,i-00000014,i-00000021",
	}
	if calls := roles.Calls(); !slices.Equal(calls, wantCalls) {
		t.Errorf("calls =\n%v\nwant\n%v", calls, wantCalls)
	}
}

func TestNodeGroupPoolsLookupFails(t *testing.T) {
	ctx := context.Background()
	r := fakeReader(t,
		newNode("self-1", linuxAMD64Labels, providerID("aws:///us-west-2a/i-00000001")),
		newNode("self-2", linuxAMD64Labels, providerID("aws:///us-west-2a/i-00000002")),
		newNode("mng-1", with(linuxAMD64Labels, LabelNodegroup, "ng"), providerID("aws:///us-west-2a/i-00000003")),
		newNode("mng-2", with(linuxAMD64Labels, LabelNodegroup, "ng"), providerID("aws:///us-west-2a/i-00000004")),
	)
	// The resolver finds some roles and fails for the rest.
	roles := &fakeRoles{
		instances: map[string]string{"i-00000001": roleA, "i-00000003": roleA},
		err:       errors.New("DescribeInstances: throttled"),
	}
	g, err := listNodeGroups(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	a := g.pools(ctx, roles, func(string) bool { return false })
	var keys []string
	for _, p := range a.pools {
		keys = append(keys, p.Key()+" "+p.RoleARN)
	}
	// The group is not given the role of the half of its nodes that answered.
	want := []string{"managed-node-group/ng ", "self-managed/NodeRoleA " + roleA}
	if !slices.Equal(keys, want) {
		t.Errorf("pools = %q, want %q", keys, want)
	}
	if a.err == nil || !strings.Contains(a.err.Error(), "node self-2: instance i-00000002: DescribeInstances: throttled") {
		t.Errorf("err = %v, want self-2 named with the cause", a.err)
	}
	if err := a.roleErrs["managed-node-group/ng"]; err == nil || !strings.Contains(err.Error(), "node mng-2") {
		t.Errorf("roleErrs[ng] = %v, want mng-2 named", err)
	}
}
