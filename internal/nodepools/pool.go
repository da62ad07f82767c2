// Package nodepools models the node pools of an EKS cluster (managed node
// groups, self-managed groups, Karpenter NodePools, Fargate profiles and
// statically configured roles) and answers which of them a pod template
// can be scheduled onto. Discovery of pools lives in nodepools/discover;
// this package is pure: no I/O.
package nodepools

import (
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	corev1 "k8s.io/api/core/v1"
)

// Kind says where a pool comes from.
type Kind string

// Pool kinds, as `ecr-preflight pools` and findings name them.
const (
	KindManagedNodeGroup Kind = "managed-node-group"
	KindSelfManaged      Kind = "self-managed"
	KindKarpenter        Kind = "karpenter-nodepool"
	KindFargate          Kind = "fargate-profile"
	KindStatic           Kind = "static"
)

// Describe is the kind as words for a message: "node group spot-arm",
// "Karpenter NodePool default", "Fargate profile system".
func (k Kind) Describe(name string) string {
	switch k {
	case KindManagedNodeGroup:
		return "node group " + name
	case KindSelfManaged:
		return "self-managed nodes " + name
	case KindKarpenter:
		return "Karpenter NodePool " + name
	case KindFargate:
		return "Fargate profile " + name
	default:
		return "node pool " + name
	}
}

// Platform is an OCI platform (os, architecture, variant, os.version for a
// Windows build), as image indexes and containerd name them.
type Platform = ocispec.Platform

// FormatPlatform is "linux/arm64/v8" or "windows/amd64" with the OS
// version in brackets when set ("windows/amd64 (10.0.20348)").
func FormatPlatform(p Platform) string {
	s := platforms.Format(p)
	if p.OSVersion != "" {
		s += " (" + p.OSVersion + ")"
	}
	return s
}

// FargateSelector is one selector of a Fargate profile: a pod in Namespace
// whose labels include every one of Labels is run by the profile.
type FargateSelector struct {
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// Pool is a group of nodes (or Fargate capacity) that pull images as one
// IAM role.
type Pool struct {
	// Name is the pool's own name: the node group, NodePool or Fargate
	// profile name, or the configured name of a static pool.
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// RoleARN is the IAM role the kubelet (or Fargate) pulls images as:
	// the node role, or a Fargate profile's pod execution role. Empty when
	// it could not be found; such a pool cannot be judged.
	RoleARN string `json:"role,omitempty"`
	// Platforms are the platforms the pool's nodes may have. Empty means
	// unknown: no platform check is made for the pool.
	Platforms []Platform `json:"platforms,omitempty"`
	// Labels are labels every node of the pool carries.
	Labels map[string]string `json:"labels,omitempty"`
	// Requirements constrain labels a node of the pool may carry without
	// fixing them (a Karpenter NodePool's spec.template.spec.requirements):
	// a pod requiring a value the requirements allow can land on the pool.
	Requirements []corev1.NodeSelectorRequirement `json:"requirements,omitempty"`
	// Taints are the taints every node of the pool carries (NoSchedule and
	// NoExecute keep pods off; PreferNoSchedule does not).
	Taints []corev1.Taint `json:"taints,omitempty"`
	// Fargate holds a Fargate profile's selectors; nil for node pools.
	Fargate []FargateSelector `json:"fargateSelectors,omitempty"`
	// Nodes is the number of nodes of the pool seen in the cluster (zero
	// for a group scaled to zero, a NodePool with no nodes yet, Fargate).
	Nodes int `json:"nodes"`
}

// String is the pool as a message names it: "node group spot-arm".
func (p Pool) String() string { return p.Kind.Describe(p.Name) }

// PlatformList is the pool's platforms as "linux/amd64, linux/arm64", or
// "unknown".
func (p Pool) PlatformList() string {
	if len(p.Platforms) == 0 {
		return "unknown"
	}
	out := make([]string, len(p.Platforms))
	for i, pl := range p.Platforms {
		out[i] = FormatPlatform(pl)
	}
	return strings.Join(out, ", ")
}

// Template is what scheduling looks at in a pod template: its namespace,
// its labels (Fargate selectors read them) and its spec.
type Template struct {
	Namespace string
	Labels    map[string]string
	Spec      *corev1.PodSpec
}

// Snapshot is what discovery knows at one moment.
type Snapshot struct {
	// Pools are every pool found, static ones included, sorted by kind and
	// name.
	Pools []Pool
	// Incomplete names the sources that failed or answered in part
	// ("eks node groups: AccessDenied"): a pool may be missing, so a
	// rejection resting on "no candidate pool can pull" is not definite.
	Incomplete []string
}

// Sort orders pools by kind, then name, then role.
func Sort(pools []Pool) {
	slices.SortFunc(pools, func(a, b Pool) int {
		if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
			return c
		}
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.RoleARN, b.RoleARN)
	})
}

// Key identifies a pool within a snapshot.
func (p Pool) Key() string { return fmt.Sprintf("%s/%s", p.Kind, p.Name) }

// Placement is where pods of one template can run, as the checks need it.
type Placement struct {
	// Candidates are the pools the template can be scheduled onto, their
	// Platforms narrowed to those it can run on.
	Candidates []Pool
	// Excluded are the other pools, each with why.
	Excluded []Exclusion
	// Incomplete names the discovery sources that failed (Snapshot's):
	// a pool that could pull may be missing from Candidates.
	Incomplete []string
}

// Anonymous says whether p is a bare --node-role-arn pool, named after its
// role and with nothing else known: findings name its role, not the pool.
func (p Pool) Anonymous() bool {
	return p.Kind == KindStatic && p.Labels == nil && p.Requirements == nil && p.Fargate == nil &&
		len(p.Platforms) == 0 && strings.HasSuffix(p.RoleARN, "/"+p.Name)
}

// Key identifies the placement's candidates (names, kinds, roles and
// platforms) for caching and sharing answers: two templates with equal
// keys get equal answers.
func (pl Placement) Key() string {
	var b strings.Builder
	for _, p := range pl.Candidates {
		b.WriteString(string(p.Kind))
		b.WriteByte('/')
		b.WriteString(p.Name)
		b.WriteByte('=')
		b.WriteString(p.RoleARN)
		for _, pf := range p.Platforms {
			b.WriteByte(';')
			b.WriteString(FormatPlatform(pf))
		}
		b.WriteByte('\x00')
	}
	if len(pl.Incomplete) > 0 {
		b.WriteString("incomplete")
	}
	return b.String()
}

// RolePools are bare pools for --node-role-arn roles: static, named after
// the role, accepting every pod template.
func RolePools(roleARNs []string) []Pool {
	out := make([]Pool, 0, len(roleARNs))
	for _, arn := range roleARNs {
		name := arn
		if i := strings.LastIndexByte(arn, '/'); i >= 0 {
			name = arn[i+1:]
		}
		if !slices.ContainsFunc(out, func(p Pool) bool { return p.RoleARN == arn }) {
			out = append(out, Pool{Name: name, Kind: KindStatic, RoleARN: arn})
		}
	}
	return out
}
