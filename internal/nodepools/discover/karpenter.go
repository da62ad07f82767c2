package discover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

// The Karpenter v1 kinds read, as unstructured objects: the webhook must
// not depend on Karpenter's Go module, and a cluster without Karpenter has
// no such kinds at all.
var (
	nodePoolListGVK     = schema.GroupVersionKind{Group: "karpenter.sh", Version: "v1", Kind: "NodePoolList"}
	ec2NodeClassListGVK = schema.GroupVersionKind{Group: "karpenter.k8s.aws", Version: "v1", Kind: "EC2NodeClassList"}
)

// groupEKS is the API group of EKS Auto Mode's NodeClass, which an Auto
// Mode NodePool (a karpenter.sh/v1 NodePool) refers to.
const groupEKS = "eks.amazonaws.com"

// The architectures Karpenter on AWS launches when a NodePool does not
// constrain kubernetes.io/arch, and the operating systems it knows.
var (
	karpenterArchs = []string{"amd64", "arm64"}
	karpenterOSes  = []string{"linux", "windows"}
)

// windowsBuilds maps the Windows AMI families of an EC2NodeClass (its
// amiSelectorTerms alias "windows2022@latest" or its amiFamily
// "Windows2022") to the build the nodes run, as node.kubernetes.io/windows-build
// shows it.
var windowsBuilds = map[string]string{
	"windows2019": windowsServer2019,
	"windows2022": windowsServer2022,
	"windows2025": windowsServer2025,
}

// nodePool is the part of a karpenter.sh/v1 NodePool read here.
type nodePool struct {
	Spec struct {
		Template struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec struct {
				// Requirements are NodeSelectorRequirements with an optional
				// minValues, which is a launch preference and not read.
				Requirements []corev1.NodeSelectorRequirement `json:"requirements"`
				// Taints stay on the node; startupTaints, which are removed
				// once the node is ready, are not read.
				Taints       []corev1.Taint `json:"taints"`
				NodeClassRef nodeClassRef   `json:"nodeClassRef"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

type nodeClassRef struct {
	Group string `json:"group"`
	Kind  string `json:"kind"`
	Name  string `json:"name"`
}

// ec2NodeClass is the part of a karpenter.k8s.aws/v1 EC2NodeClass read here.
type ec2NodeClass struct {
	Spec struct {
		// Role is the node role's name (Karpenter makes an instance profile
		// for it); InstanceProfile names an existing instance profile
		// instead. Exactly one is set.
		Role             string `json:"role"`
		InstanceProfile  string `json:"instanceProfile"`
		AMIFamily        string `json:"amiFamily"`
		AMISelectorTerms []struct {
			Alias string `json:"alias"`
		} `json:"amiSelectorTerms"`
	} `json:"spec"`
	Status struct {
		InstanceProfile string `json:"instanceProfile"`
	} `json:"status"`
}

// amiFamily is the node class's AMI family in lower case ("al2023",
// "bottlerocket", "windows2022"), from its alias or amiFamily, or "".
func (nc ec2NodeClass) amiFamily() string {
	for _, term := range nc.Spec.AMISelectorTerms {
		if family, _, ok := strings.Cut(term.Alias, "@"); ok {
			return strings.ToLower(family)
		}
	}
	return strings.ToLower(nc.Spec.AMIFamily)
}

// karpenterPools reads every NodePool and the EC2NodeClass it refers to.
// installed is false when the API server has no karpenter.sh/v1 NodePool
// kind: Karpenter is not installed, which is not an error. a.err is set
// only when a NodePool may be missing: the list failed, or a NodePool
// could not be read. A NodePool whose role cannot be found (its
// EC2NodeClass missing or unreadable, an IAM lookup failed, an EKS Auto
// Mode NodeClass) comes back without one and with the reason in roleErrs.
func karpenterPools(ctx context.Context, r client.Reader, res NodeClassRoleResolver) (a answer, installed bool) {
	var pools unstructured.UnstructuredList
	pools.SetGroupVersionKind(nodePoolListGVK)
	if err := r.List(ctx, &pools); err != nil {
		if meta.IsNoMatchError(err) {
			return answer{}, false
		}
		return answer{err: fmt.Errorf("listing Karpenter NodePools: %w", err)}, true
	}

	// When EC2NodeClasses cannot be listed, NodePools are still worth
	// returning, with their roles unknown and the reason in roleErrs.
	classes, classErr := listNodeClasses(ctx, r)
	roles := nodeClassRoles{resolver: res, classes: classes, listErr: classErr, memo: map[string]roleAnswer{}}

	a.roleErrs = map[string]error{}
	var unreadable []error
	for i := range pools.Items {
		item := &pools.Items[i]
		var np nodePool
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(item.Object, &np); err != nil {
			unreadable = append(unreadable, &briefError{
				brief: "NodePool " + item.GetName() + " unreadable",
				err:   fmt.Errorf("reading NodePool %s: %w", item.GetName(), err),
			})
			continue
		}
		ref := np.Spec.Template.Spec.NodeClassRef
		nc := classes[ref.Name]
		pool := nodePoolPool(item.GetName(), np, nc)
		role, err := roles.role(ctx, ref)
		if err != nil {
			a.roleErrs[pool.Key()] = err
		}
		pool.RoleARN = role
		a.pools = append(a.pools, pool)
	}
	a.err = errors.Join(unreadable...)
	nodepools.Sort(a.pools)
	return a, true
}

// listNodeClasses returns the EC2NodeClasses by name.
func listNodeClasses(ctx context.Context, r client.Reader) (map[string]ec2NodeClass, error) {
	var list unstructured.UnstructuredList
	list.SetGroupVersionKind(ec2NodeClassListGVK)
	if err := r.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing Karpenter EC2NodeClasses: %w", err)
	}
	classes := make(map[string]ec2NodeClass, len(list.Items))
	var errs []error
	for i := range list.Items {
		var nc ec2NodeClass
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &nc); err != nil {
			errs = append(errs, fmt.Errorf("reading EC2NodeClass %s: %w", list.Items[i].GetName(), err))
			continue
		}
		classes[list.Items[i].GetName()] = nc
	}
	return classes, errors.Join(errs...)
}

// nodePoolPool is a NodePool as a pool, without its role. Labels are the
// template's labels, karpenter.sh/nodepool=NAME (Karpenter sets it on every
// node) and each requirement that allows one value; Requirements are the
// NodePool's, plus kubernetes.io/arch and kubernetes.io/os `In` the values
// the pool's Platforms hold when the NodePool leaves them open (Karpenter
// sets both labels on every node it launches, so a pod selecting either can
// land here). Platforms come from those requirements and the node class's
// AMI family (karpenterPlatforms).
func nodePoolPool(name string, np nodePool, nc ec2NodeClass) nodepools.Pool {
	tmpl := np.Spec.Template
	pool := nodepools.Pool{
		Name:   name,
		Kind:   nodepools.KindKarpenter,
		Labels: map[string]string{labelKarpenterNodePool: name},
		Taints: tmpl.Spec.Taints,
	}
	for k, v := range tmpl.Metadata.Labels {
		pool.Labels[k] = v
	}
	reqs := tmpl.Spec.Requirements
	for _, req := range reqs {
		if req.Operator == corev1.NodeSelectorOpIn && len(req.Values) == 1 {
			pool.Labels[req.Key] = req.Values[0]
		}
	}
	pool.Requirements = slices.Clone(reqs)
	archs := allowedValues(reqs, corev1.LabelArchStable, karpenterArchs, karpenterArchs)
	osDefault := []string{"linux"}
	build, windows := windowsBuilds[nc.amiFamily()]
	if windows {
		osDefault = []string{"windows"}
	}
	oses := allowedValues(reqs, corev1.LabelOSStable, osDefault, karpenterOSes)
	if !constrains(reqs, corev1.LabelArchStable) {
		pool.Requirements = append(pool.Requirements, corev1.NodeSelectorRequirement{Key: corev1.LabelArchStable, Operator: corev1.NodeSelectorOpIn, Values: archs})
	}
	if !constrains(reqs, corev1.LabelOSStable) {
		pool.Requirements = append(pool.Requirements, corev1.NodeSelectorRequirement{Key: corev1.LabelOSStable, Operator: corev1.NodeSelectorOpIn, Values: oses})
	}
	builds := allowedValues(reqs, corev1.LabelWindowsBuild, []string{build}, nil)
	pool.Platforms = karpenterPlatforms(oses, archs, builds)
	return pool
}

// karpenterPlatforms is every os/arch pair allowed, Windows ones once per
// build. Windows nodes are amd64 only: there are no arm64 Windows AMIs.
func karpenterPlatforms(oses, archs, builds []string) []nodepools.Platform {
	var out []nodepools.Platform
	for _, os := range oses {
		for _, arch := range archs {
			switch {
			case os != "windows":
				out = appendPlatform(out, nodepools.Platform{OS: os, Architecture: arch})
			case arch == "amd64":
				for _, b := range builds {
					out = appendPlatform(out, nodepools.Platform{OS: os, Architecture: arch, OSVersion: b})
				}
			}
		}
	}
	return out
}

// constrains reports whether a requirement on key narrows its values.
func constrains(reqs []corev1.NodeSelectorRequirement, key string) bool {
	return slices.ContainsFunc(reqs, func(r corev1.NodeSelectorRequirement) bool {
		return r.Key == key && r.Operator != corev1.NodeSelectorOpExists
	})
}

// allowedValues applies every requirement on key (each must hold, as in
// Karpenter): In keeps the values listed, NotIn drops them from what is
// left (from universe when nothing narrowed it yet), DoesNotExist allows
// nothing, Exists, Gt and Lt change nothing. With no narrowing requirement
// the answer is defaults.
func allowedValues(reqs []corev1.NodeSelectorRequirement, key string, defaults, universe []string) []string {
	var allowed []string
	narrowed := false
	for _, r := range reqs {
		if r.Key != key {
			continue
		}
		switch r.Operator {
		case corev1.NodeSelectorOpIn:
			if !narrowed {
				allowed = slices.Clone(r.Values)
			} else {
				allowed = slices.DeleteFunc(allowed, func(v string) bool { return !slices.Contains(r.Values, v) })
			}
			narrowed = true
		case corev1.NodeSelectorOpNotIn:
			if !narrowed {
				allowed = slices.Clone(universe)
			}
			allowed = slices.DeleteFunc(allowed, func(v string) bool { return slices.Contains(r.Values, v) })
			narrowed = true
		case corev1.NodeSelectorOpDoesNotExist:
			allowed, narrowed = nil, true
		}
	}
	if !narrowed {
		return defaults
	}
	slices.Sort(allowed)
	return slices.Compact(allowed)
}

// nodeClassRoles finds the role of a NodePool's node class, once per node
// class per discovery.
type nodeClassRoles struct {
	resolver NodeClassRoleResolver
	classes  map[string]ec2NodeClass
	listErr  error
	memo     map[string]roleAnswer
}

type roleAnswer struct {
	role string
	err  error
}

func (r nodeClassRoles) role(ctx context.Context, ref nodeClassRef) (string, error) {
	switch {
	case ref.Group == groupEKS:
		// EKS Auto Mode: its NodeClass is not read; nodes of the NodePool
		// give the role from their instances.
		return "", fmt.Errorf("nodeClassRef %s/%s %s is an EKS Auto Mode node class, whose role is known only from its nodes", ref.Group, ref.Kind, ref.Name)
	case ref.Group != "karpenter.k8s.aws" || ref.Kind != "EC2NodeClass":
		return "", fmt.Errorf("nodeClassRef %s/%s %s is not a karpenter.k8s.aws EC2NodeClass", ref.Group, ref.Kind, ref.Name)
	}
	if ans, ok := r.memo[ref.Name]; ok {
		return ans.role, ans.err
	}
	role, err := r.lookup(ctx, ref.Name)
	r.memo[ref.Name] = roleAnswer{role: role, err: err}
	return role, err
}

// lookup: spec.role is a role name (an ARN is taken as is), spec.instanceProfile
// or, when Karpenter made the instance profile for spec.role,
// status.instanceProfile is an instance profile whose role pulls.
func (r nodeClassRoles) lookup(ctx context.Context, name string) (string, error) {
	nc, ok := r.classes[name]
	switch {
	case !ok && r.listErr != nil:
		return "", fmt.Errorf("EC2NodeClass %s: %w", name, r.listErr)
	case !ok:
		return "", fmt.Errorf("EC2NodeClass %s not found", name)
	}
	switch {
	case strings.HasPrefix(nc.Spec.Role, "arn:"):
		if _, err := awsclient.ParseIAMRoleARN(nc.Spec.Role); err != nil {
			return "", fmt.Errorf("EC2NodeClass %s: spec.role: %w", name, err)
		}
		return nc.Spec.Role, nil
	case nc.Spec.Role != "":
		role, err := r.resolver.RoleARN(ctx, nc.Spec.Role)
		if err != nil {
			return "", fmt.Errorf("EC2NodeClass %s: role %s: %w", name, nc.Spec.Role, err)
		}
		return role, nil
	}
	profile := nc.Spec.InstanceProfile
	if profile == "" {
		profile = nc.Status.InstanceProfile
	}
	if profile == "" {
		return "", fmt.Errorf("EC2NodeClass %s has neither spec.role nor an instance profile", name)
	}
	role, err := r.resolver.InstanceProfileRole(ctx, profile)
	if err != nil {
		return "", fmt.Errorf("EC2NodeClass %s: instance profile %s: %w", name, profile, err)
	}
	return role, nil
}
