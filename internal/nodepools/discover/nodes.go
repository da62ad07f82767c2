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
	// labelEKSComputeType is "fargate" on a Fargate node ("auto" on an EKS
	// Auto Mode node, which also carries karpenter.sh/nodepool, and
	// "hybrid" on an EKS Hybrid Node).
	labelEKSComputeType = "eks.amazonaws.com/compute-type"
	// labelFargateProfile names the Fargate profile that runs a Fargate node.
	labelFargateProfile = "eks.amazonaws.com/fargate-profile"
	// labelEksctlNodeGroup is set by eksctl on the nodes of the groups it
	// creates, self-managed ones included.
	labelEksctlNodeGroup = "alpha.eksctl.io/nodegroup-name"
	// providerIDHybrid starts the spec.providerID of an EKS Hybrid Node, a
	// machine outside AWS that pulls as the Hybrid Nodes role its
	// credentials (SSM or IAM Roles Anywhere) give it, not as an instance
	// profile's.
	providerIDHybrid = "eks-hybrid://"
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
// other source gives it (by pool key); self-managed nodes always need
// theirs, as it is what groups them. A node whose role is not found this
// time keeps the one its instance had at the last discovery (remembered,
// by spec.providerID); the roles found come back in answer.instanceRoles
// for the next one.
//
// A role is never guessed: a named group whose nodes disagree, or none of
// whose nodes has a known role, is a pool without a role, the reason in
// roleErrs. Self-managed nodes whose role is unknown join their eksctl
// group when its other nodes agree on one role; the others are pools
// without a role, one per eksctl group, one for EKS Hybrid Nodes
// ("hybrid", which have no EC2 instance) and one for the rest
// ("unknown-role"), so that only pods that may land on them are affected.
// Fargate nodes come back as KindFargate pools carrying only a name and a
// node count, for the Provider to add to the profiles EKS describes.
// What only the log needs to know goes to log.
func (g nodeGroups) pools(ctx context.Context, res InstanceRoleResolver, roleKnown func(key string) bool, remembered map[string]string, log notes) answer {
	var need []*corev1.Node
	for _, key := range slices.Sorted(maps.Keys(g.named)) {
		if !roleKnown(key) {
			need = append(need, g.named[key].nodes...)
		}
	}
	need = append(need, g.selfManaged...)
	found := instanceRoles(ctx, res, need)
	found.fallBack(need, remembered, log)

	a := answer{roleErrs: map[string]error{}, instanceRoles: found.byProviderID(need)}
	for key, ng := range g.named {
		pool := describeNodes(ng.kind, ng.nodes)
		pool.Name = ng.name
		if !roleKnown(key) {
			role, unresolved, err := groupRole(ng.nodes, found)
			pool.RoleARN = role
			switch {
			case err != nil:
				a.roleErrs[key] = err
			case unresolved != nil:
				log.add("unresolved/"+key, "node pool role taken from the nodes whose role is known",
					"pool", pool.String(), "role", role, "unresolved", unresolved.Error())
			}
		}
		a.pools = append(a.pools, pool)
	}
	a.pools = append(a.pools, g.selfManagedPools(found, a.roleErrs, log)...)
	for profile, count := range g.fargate {
		a.pools = append(a.pools, nodepools.Pool{Kind: nodepools.KindFargate, Name: profile, Nodes: count})
	}
	nodepools.Sort(a.pools)
	return a
}

// Names of self-managed pools whose role is unknown, for nodes outside any
// eksctl group.
const (
	poolHybrid      = "hybrid"
	poolUnknownRole = "unknown-role"
)

// selfManagedPools groups self-managed nodes by eksctl group (or, outside
// one, by role name) and role; see pools. The reasons of pools without a
// role go to roleErrs.
func (g nodeGroups) selfManagedPools(found nodeRoles, roleErrs map[string]error, log notes) []nodepools.Pool {
	type selfKey struct{ name, role string }
	groups := map[selfKey][]*corev1.Node{}
	eksctlRoles := map[string][]string{} // eksctl group → the distinct roles of its nodes
	var unresolved []*corev1.Node
	for _, n := range g.selfManaged {
		role, ok := found.roles[n.Name]
		if !ok {
			unresolved = append(unresolved, n)
			continue
		}
		eksctl := n.Labels[labelEksctlNodeGroup]
		k := selfKey{name: cmp.Or(eksctl, roleName(role)), role: role}
		if eksctl != "" && len(groups[k]) == 0 {
			eksctlRoles[eksctl] = append(eksctlRoles[eksctl], role)
		}
		groups[k] = append(groups[k], n)
	}
	joined := map[selfKey][]*corev1.Node{}
	for _, n := range unresolved {
		eksctl := n.Labels[labelEksctlNodeGroup]
		k := selfKey{name: cmp.Or(eksctl, unknownRolePool(n))}
		if roles := eksctlRoles[eksctl]; eksctl != "" && len(roles) == 1 {
			k.role = roles[0]
			joined[k] = append(joined[k], n)
		}
		groups[k] = append(groups[k], n)
	}

	var out []nodepools.Pool
	for k, nodes := range groups {
		pool := describeNodes(nodepools.KindSelfManaged, nodes)
		pool.Name, pool.RoleARN = k.name, k.role
		switch {
		case k.role == "":
			roleErrs[pool.Key()] = nodeErrors(nodes, found.failed)
		case len(joined[k]) > 0:
			log.add("unresolved/"+pool.Key(), "node pool role taken from the nodes whose role is known",
				"pool", pool.String(), "role", k.role, "unresolved", nodeErrors(joined[k], found.failed).Error())
		}
		out = append(out, pool)
	}
	return out
}

// unknownRolePool names the pool of a self-managed node outside any eksctl
// group whose role is unknown.
func unknownRolePool(n *corev1.Node) string {
	if strings.HasPrefix(n.Spec.ProviderID, providerIDHybrid) || n.Labels[labelEKSComputeType] == "hybrid" {
		return poolHybrid
	}
	return poolUnknownRole
}

// nodeRoles are the roles of nodes, by node name, and why each of the
// others is unknown.
type nodeRoles struct {
	roles  map[string]string
	failed map[string]error
}

// instanceRoles finds the role of each node from its spec.providerID
// (aws:///ZONE/INSTANCE-ID), asking res once per region.
func instanceRoles(ctx context.Context, res InstanceRoleResolver, nodes []*corev1.Node) nodeRoles {
	found := nodeRoles{roles: map[string]string{}, failed: map[string]error{}}
	type instance struct{ id, node string }
	byRegion := map[string][]instance{}
	for _, n := range nodes {
		region, _, id, ok := ParseProviderID(n.Spec.ProviderID)
		if !ok {
			found.failed[n.Name] = fmt.Errorf("spec.providerID %q does not name an EC2 instance", n.Spec.ProviderID)
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
				found.roles[in.node] = role
			case err != nil:
				found.failed[in.node] = fmt.Errorf("instance %s: %w", in.id, err)
			default:
				// Terminated (its Node not yet deleted), or launched
				// without an instance profile.
				found.failed[in.node] = fmt.Errorf("instance %s: no instance profile role found", in.id)
			}
		}
	}
	return found
}

// fallBack gives each of nodes whose role was not found the role its
// instance had at the last discovery (remembered, by spec.providerID): a
// lookup that fails for a while keeps the answer it gave before.
func (r nodeRoles) fallBack(nodes []*corev1.Node, remembered map[string]string, log notes) {
	for _, n := range nodes {
		err, failed := r.failed[n.Name]
		role, ok := remembered[n.Spec.ProviderID]
		if !failed || !ok {
			continue
		}
		r.roles[n.Name] = role
		delete(r.failed, n.Name)
		log.add("node/"+n.Name, "node role not found again, keeping the one found before",
			"node", n.Name, "role", role, "reason", err.Error())
	}
}

// byProviderID is the role of each of nodes that has one, by
// spec.providerID.
func (r nodeRoles) byProviderID(nodes []*corev1.Node) map[string]string {
	out := map[string]string{}
	for _, n := range nodes {
		if role, ok := r.roles[n.Name]; ok && n.Spec.ProviderID != "" {
			out[n.Spec.ProviderID] = role
		}
	}
	return out
}

// groupRole is the role of a managed node group's or NodePool's nodes: the
// one role of those whose role is known, when at least one is. Nodes whose
// role is unknown do not change it: a node whose instance has just
// terminated has none until its Node is deleted. They come back in
// unresolved, for the log. Nodes with different roles, or none with a
// known role, leave the role unknown (err): it is never guessed.
func groupRole(nodes []*corev1.Node, found nodeRoles) (role string, unresolved, err error) {
	var unknown []*corev1.Node
	seen := map[string]bool{}
	for _, n := range nodes {
		if role, ok := found.roles[n.Name]; ok {
			seen[role] = true
		} else {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		unresolved = nodeErrors(unknown, found.failed)
	}
	switch len(seen) {
	case 0:
		if unresolved == nil {
			return "", nil, errors.New("it has no nodes")
		}
		return "", nil, unresolved
	case 1:
		for role := range seen {
			return role, unresolved, nil
		}
	}
	return "", nil, fmt.Errorf("its nodes have different roles: %s", strings.Join(slices.Sorted(maps.Keys(seen)), ", "))
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

// describeNodes is what a group of nodes says about its pool of kind:
// Labels every node carries with one value; Requirements `In` the values
// seen for a key every node carries with different values; Taints every
// node carries, lifecycle taints left out; Platforms the distinct platforms
// of its nodes; Nodes. Keys nodepools.OpenLabel names for kind (hostname,
// zone, instance type, ...) are neither labels nor requirements: the values
// today's nodes happen to have say nothing of the next node, so they stay
// open. The pool's Kind is kind; its name and role are the caller's.
func describeNodes(kind nodepools.Kind, nodes []*corev1.Node) nodepools.Pool {
	pool := nodepools.Pool{Kind: kind, Nodes: len(nodes)}
	if len(nodes) == 0 {
		return pool
	}
	for _, key := range slices.Sorted(maps.Keys(nodes[0].Labels)) {
		if nodepools.OpenLabel(kind, key) {
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
