package discover

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/containerd/platforms"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

// Labels that sort Nodes into pools, besides LabelNodegroup.
const (
	// labelKarpenterNodePool is set by Karpenter on the nodes it launches.
	labelKarpenterNodePool = "karpenter.sh/nodepool"
	// labelEKSComputeType is "fargate" on a Fargate node (and "auto" on an
	// EKS Auto Mode node, which also carries karpenter.sh/nodepool).
	labelEKSComputeType = "eks.amazonaws.com/compute-type"
	// labelFargateProfile names the Fargate profile that runs a Fargate node.
	labelFargateProfile = "eks.amazonaws.com/fargate-profile"
	// labelEksctlNodeGroup is set by eksctl on the nodes of the groups it
	// creates, self-managed ones included.
	labelEksctlNodeGroup = "alpha.eksctl.io/nodegroup-name"
)

// lifecycleTaint reports taints that come and go with a node's life
// (not-ready, unreachable, cordoned, being removed by Karpenter or the
// cluster autoscaler, not yet initialized by the cloud provider). They say
// nothing about which pods the pool is for, so they never become pool taints.
func lifecycleTaint(key string) bool {
	switch key {
	case "node.cloudprovider.kubernetes.io/uninitialized",
		"karpenter.sh/disrupted", "karpenter.sh/unregistered",
		"ToBeDeletedByClusterAutoscaler", "DeletionCandidateOfClusterAutoscaler":
		return true
	}
	return strings.HasPrefix(key, "node.kubernetes.io/")
}

// nodeGroups is a cluster's Nodes sorted by the labels that say which pool
// they belong to, before any role is looked up.
type nodeGroups struct {
	// named holds the nodes of managed node groups and Karpenter NodePools,
	// by pool key (nodepools.Pool.Key).
	named map[string]*namedGroup
	// selfManaged nodes are grouped by their role once it is known.
	selfManaged []*corev1.Node
	// fargate counts Fargate nodes by Fargate profile name.
	fargate map[string]int
}

// namedGroup is the nodes of one managed node group or Karpenter NodePool.
type namedGroup struct {
	kind  nodepools.Kind
	name  string
	nodes []*corev1.Node
}

// listNodeGroups lists every Node and sorts it into its group.
func listNodeGroups(ctx context.Context, r client.Reader) (nodeGroups, error) {
	var list corev1.NodeList
	if err := r.List(ctx, &list); err != nil {
		return nodeGroups{}, fmt.Errorf("listing nodes: %w", err)
	}
	g := nodeGroups{named: map[string]*namedGroup{}, fargate: map[string]int{}}
	for i := range list.Items {
		n := &list.Items[i]
		switch {
		case n.Labels[labelEKSComputeType] == "fargate":
			g.fargate[n.Labels[labelFargateProfile]]++
		case n.Labels[labelKarpenterNodePool] != "":
			g.add(nodepools.KindKarpenter, n.Labels[labelKarpenterNodePool], n)
		case n.Labels[LabelNodegroup] != "":
			g.add(nodepools.KindManagedNodeGroup, n.Labels[LabelNodegroup], n)
		default:
			g.selfManaged = append(g.selfManaged, n)
		}
	}
	return g, nil
}

func (g nodeGroups) add(kind nodepools.Kind, name string, n *corev1.Node) {
	key := nodepools.Pool{Kind: kind, Name: name}.Key()
	ng := g.named[key]
	if ng == nil {
		ng = &namedGroup{kind: kind, name: name}
		g.named[key] = ng
	}
	ng.nodes = append(ng.nodes, n)
}

// pools turns the groups into pools. The role of a managed node group or
// NodePool is looked up from its instances only when roleKnown says no
// other source gives it (by pool key); self-managed nodes always need theirs,
// as it is what groups them. A node whose role cannot be found is never
// guessed: its named group gets no role (and a reason in roleErrs), a
// self-managed node is left out and named in err. Fargate nodes come back
// as KindFargate pools carrying only a name and a node count, for the
// Provider to add to the profiles EKS describes.
func (g nodeGroups) pools(ctx context.Context, res InstanceRoleResolver, roleKnown func(key string) bool) answer {
	var need []*corev1.Node
	for key, ng := range g.named {
		if !roleKnown(key) {
			need = append(need, ng.nodes...)
		}
	}
	need = append(need, g.selfManaged...)
	roles, failed := instanceRoles(ctx, res, need)

	a := answer{roleErrs: map[string]error{}}
	for key, ng := range g.named {
		pool := describeNodes(ng.nodes)
		pool.Kind, pool.Name = ng.kind, ng.name
		if !roleKnown(key) {
			role, err := commonRole(ng.nodes, roles, failed)
			if err != nil {
				a.roleErrs[key] = err
			}
			pool.RoleARN = role
		}
		a.pools = append(a.pools, pool)
	}

	type selfKey struct{ name, role string }
	self := map[selfKey][]*corev1.Node{}
	var unknown []*corev1.Node
	for _, n := range g.selfManaged {
		role, ok := roles[n.Name]
		if !ok {
			unknown = append(unknown, n)
			continue
		}
		k := selfKey{name: cmp.Or(n.Labels[labelEksctlNodeGroup], roleName(role)), role: role}
		self[k] = append(self[k], n)
	}
	for k, nodes := range self {
		pool := describeNodes(nodes)
		pool.Kind, pool.Name, pool.RoleARN = nodepools.KindSelfManaged, k.name, k.role
		a.pools = append(a.pools, pool)
	}
	if len(unknown) > 0 {
		a.err = fmt.Errorf("self-managed nodes left out, their role is unknown: %w", nodeErrors(unknown, failed))
	}

	for profile, count := range g.fargate {
		a.pools = append(a.pools, nodepools.Pool{Kind: nodepools.KindFargate, Name: profile, Nodes: count})
	}
	nodepools.Sort(a.pools)
	return a
}

// instanceRoles finds the role of each node from its spec.providerID
// (aws:///ZONE/INSTANCE-ID), asking res once per region. It returns roles
// by node name, and why for each node whose role it could not find.
func instanceRoles(ctx context.Context, res InstanceRoleResolver, nodes []*corev1.Node) (map[string]string, map[string]error) {
	roles, failed := map[string]string{}, map[string]error{}
	type instance struct{ id, node string }
	byRegion := map[string][]instance{}
	for _, n := range nodes {
		region, _, id, ok := ParseProviderID(n.Spec.ProviderID)
		if !ok {
			failed[n.Name] = fmt.Errorf("spec.providerID %q does not name an EC2 instance", n.Spec.ProviderID)
			continue
		}
		byRegion[region] = append(byRegion[region], instance{id: id, node: n.Name})
	}
	for _, region := range slices.Sorted(maps.Keys(byRegion)) {
		insts := byRegion[region]
		ids := make([]string, len(insts))
		for i, in := range insts {
			ids[i] = in.id
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		// The resolver may answer for some instances and fail for others.
		got, err := res.InstanceRoles(ctx, region, ids)
		for _, in := range insts {
			switch role, ok := got[in.id]; {
			case ok && role != "":
				roles[in.node] = role
			case err != nil:
				failed[in.node] = fmt.Errorf("instance %s: %w", in.id, err)
			default:
				failed[in.node] = fmt.Errorf("instance %s has no instance profile role", in.id)
			}
		}
	}
	return roles, failed
}

// commonRole is the role every node of a group has. Nodes whose role is
// unknown, or nodes with different roles, leave it unknown: the group's
// role is not guessed from some of its nodes.
func commonRole(nodes []*corev1.Node, roles map[string]string, failed map[string]error) (string, error) {
	var unknown []*corev1.Node
	seen := map[string]bool{}
	for _, n := range nodes {
		if role, ok := roles[n.Name]; ok {
			seen[role] = true
		} else {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return "", nodeErrors(unknown, failed)
	}
	if len(seen) > 1 {
		return "", fmt.Errorf("its nodes have different roles: %s", strings.Join(slices.Sorted(maps.Keys(seen)), ", "))
	}
	for role := range seen {
		return role, nil
	}
	return "", errors.New("it has no nodes")
}

// nodeErrors says why the roles of nodes are unknown, naming at most three.
func nodeErrors(nodes []*corev1.Node, failed map[string]error) error {
	const most = 3
	var errs []error
	for i, n := range nodes {
		if i == most {
			errs = append(errs, fmt.Errorf("and %d more nodes", len(nodes)-most))
			break
		}
		errs = append(errs, fmt.Errorf("node %s: %w", n.Name, failed[n.Name]))
	}
	return joinErrors(errs)
}

// joinErrors is errors.Join on one line, for Snapshot.Incomplete.
func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errorList(errs)
}

// errorList is several errors as one, separated by "; ".
type errorList []error

func (l errorList) Error() string {
	msgs := make([]string, len(l))
	for i, err := range l {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (l errorList) Unwrap() []error { return l }

// describeNodes is what a group of nodes says about its pool: Labels every
// node carries with one value; Requirements `In` the values seen for a key
// every node carries with different values (kubernetes.io/hostname left
// out: it names a node, not the pool); Taints every node carries, lifecycle
// taints left out; Platforms the distinct platforms of its nodes; Nodes.
func describeNodes(nodes []*corev1.Node) nodepools.Pool {
	pool := nodepools.Pool{Nodes: len(nodes)}
	if len(nodes) == 0 {
		return pool
	}
	for _, key := range slices.Sorted(maps.Keys(nodes[0].Labels)) {
		if key == corev1.LabelHostname {
			continue
		}
		values, onAll := labelValues(nodes, key)
		switch {
		case !onAll:
		case len(values) == 1:
			if pool.Labels == nil {
				pool.Labels = map[string]string{}
			}
			pool.Labels[key] = values[0]
		default:
			pool.Requirements = append(pool.Requirements, corev1.NodeSelectorRequirement{
				Key: key, Operator: corev1.NodeSelectorOpIn, Values: values,
			})
		}
	}
	for _, t := range nodes[0].Spec.Taints {
		if lifecycleTaint(t.Key) {
			continue
		}
		if onAllNodes(nodes, t) {
			pool.Taints = append(pool.Taints, corev1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect})
		}
	}
	for _, n := range nodes {
		if p, ok := nodePlatform(n); ok {
			pool.Platforms = appendPlatform(pool.Platforms, p)
		}
	}
	return pool
}

// labelValues returns the sorted distinct values of a label and whether
// every node carries it.
func labelValues(nodes []*corev1.Node, key string) ([]string, bool) {
	var values []string
	for _, n := range nodes {
		v, ok := n.Labels[key]
		if !ok {
			return nil, false
		}
		values = append(values, v)
	}
	slices.Sort(values)
	return slices.Compact(values), true
}

func onAllNodes(nodes []*corev1.Node, t corev1.Taint) bool {
	for _, n := range nodes {
		if !slices.ContainsFunc(n.Spec.Taints, func(u corev1.Taint) bool {
			return u.Key == t.Key && u.Value == t.Value && u.Effect == t.Effect
		}) {
			return false
		}
	}
	return true
}

// nodePlatform is a node's platform from its kubernetes.io/os,
// kubernetes.io/arch and node.kubernetes.io/windows-build labels, each
// falling back to status.nodeInfo (operatingSystem, architecture, and for
// Windows the first three parts of kernelVersion, which a Windows kubelet
// reports as 10.0.BUILD.REVISION). False when the OS or architecture is
// unknown.
func nodePlatform(n *corev1.Node) (nodepools.Platform, bool) {
	info := n.Status.NodeInfo
	p := nodepools.Platform{
		OS:           cmp.Or(n.Labels[corev1.LabelOSStable], info.OperatingSystem),
		Architecture: cmp.Or(n.Labels[corev1.LabelArchStable], info.Architecture),
	}
	if p.OS == "" || p.Architecture == "" {
		return nodepools.Platform{}, false
	}
	if p.OS == "windows" {
		p.OSVersion = cmp.Or(n.Labels[corev1.LabelWindowsBuild], windowsBuild(info.KernelVersion))
	}
	return platforms.Normalize(p), true
}

// windowsBuild is major.minor.build of a Windows kernel version
// ("10.0.20348.2227" → "10.0.20348"), or "" when it has fewer parts.
func windowsBuild(kernel string) string {
	parts := strings.Split(kernel, ".")
	if len(parts) < 3 {
		return ""
	}
	return strings.Join(parts[:3], ".")
}
