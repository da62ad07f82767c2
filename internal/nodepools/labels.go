package nodepools

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Label keys set by EKS and Karpenter that the matcher reads. The Kubernetes
// ones are corev1's well-known labels (k8s.io/api/core/v1/well_known_labels.go).
const (
	// LabelFargateProfile on a pod picks one of several Fargate profiles
	// that select it (EKS User Guide, "Define which Pods use AWS Fargate
	// when launched").
	LabelFargateProfile = "eks.amazonaws.com/fargate-profile"
	// LabelNodegroup is set by EKS on every node of a managed node group to
	// the group's name (EKS User Guide, "Managed node groups").
	LabelNodegroup = "eks.amazonaws.com/nodegroup"
	// LabelCapacityType is a managed node group's ON_DEMAND or SPOT.
	LabelCapacityType = "eks.amazonaws.com/capacityType"
	// LabelKarpenterNodePool is set by Karpenter on every node it launches
	// to the name of the NodePool (Karpenter docs, "Well-Known Labels").
	LabelKarpenterNodePool = "karpenter.sh/nodepool"
	// LabelKarpenterCapacityType is a Karpenter node's spot, on-demand or
	// reserved.
	LabelKarpenterCapacityType = "karpenter.sh/capacity-type"
	// LabelZoneID is the availability zone ID (use1-az1) EKS and Karpenter
	// set on nodes.
	LabelZoneID = "topology.k8s.aws/zone-id"

	// The kubelet still sets the beta forms of arch and os beside the
	// stable ones; old manifests select on them.
	labelBetaArch = "beta.kubernetes.io/arch"
	labelBetaOS   = "beta.kubernetes.io/os"

	// Labels EKS sets on the nodes of a managed node group besides its
	// name and capacity type: the AMI and the launch template version,
	// which change as the group is updated.
	labelNodegroupImage              = "eks.amazonaws.com/nodegroup-image"
	labelSourceLaunchTemplateID      = "eks.amazonaws.com/sourceLaunchTemplateId"
	labelSourceLaunchTemplateVersion = "eks.amazonaws.com/sourceLaunchTemplateVersion"
	// labelComputeType is "auto" on EKS Auto Mode nodes (and "fargate" on
	// Fargate's); nodes of other kinds do not carry it.
	labelComputeType = "eks.amazonaws.com/compute-type"
)

// wellKnownOpenLabels are labels the kubelet or the AWS cloud provider put
// on nodes whatever launched them, with a value that varies from node to
// node (Kubernetes "Well-Known Labels, Annotations and
// Taints"; topology.k8s.aws/zone-id from the AWS cloud controller).
var wellKnownOpenLabels = map[string]bool{
	corev1.LabelHostname:                true,
	corev1.LabelTopologyZone:            true,
	corev1.LabelTopologyRegion:          true,
	corev1.LabelFailureDomainBetaZone:   true,
	corev1.LabelFailureDomainBetaRegion: true,
	corev1.LabelInstanceTypeStable:      true,
	corev1.LabelInstanceType:            true,
	corev1.LabelOSStable:                true,
	corev1.LabelArchStable:              true,
	labelBetaArch:                       true,
	labelBetaOS:                         true,
	corev1.LabelWindowsBuild:            true,
	LabelZoneID:                         true,
}

// OpenLabel reports whether the nodes of a pool of kind carry key with a
// value that varies from node to node, so that, unless the pool fixes or
// constrains key, a requirement on it may be met by some node of the pool.
// A key that is not open is absent from the pool's nodes unless the pool
// says otherwise (Labels, Requirements, or a label EKS or Karpenter sets
// to the pool's name).
//
// Open for every kind: the well-known labels of every EC2 node
// (hostname, zone, region, instance type, topology.k8s.aws/zone-id,
// kubernetes.io/os and arch and their beta forms, windows-build; a pool's
// Platforms, when known, decide os and arch before this is asked). Open
// for KindManagedNodeGroup only: eks.amazonaws.com/capacityType,
// nodegroup-image, sourceLaunchTemplateId and sourceLaunchTemplateVersion,
// which EKS sets on a managed node group's nodes (EKS User Guide, "Managed
// node groups"). Open for KindKarpenter only: karpenter.sh/capacity-type
// and karpenter.k8s.aws/* (Karpenter docs, "Well-Known Labels"), and EKS
// Auto Mode's eks.amazonaws.com/instance-* and compute-type, as Auto Mode
// NodePools are Karpenter NodePools (EKS User Guide, "Create a Node Pool
// for EKS Auto Mode"). Self-managed, static and Fargate nodes carry none
// of these; a static pool with neither Labels nor Requirements accepts
// every key anyway (see Candidates).
func OpenLabel(kind Kind, key string) bool {
	if wellKnownOpenLabels[key] {
		return true
	}
	switch kind {
	case KindManagedNodeGroup:
		switch key {
		case LabelCapacityType, labelNodegroupImage, labelSourceLaunchTemplateID, labelSourceLaunchTemplateVersion:
			return true
		}
	case KindKarpenter:
		return key == LabelKarpenterCapacityType || key == labelComputeType ||
			strings.HasPrefix(key, "karpenter.k8s.aws/") || strings.HasPrefix(key, "eks.amazonaws.com/instance-")
	}
	return false
}

// isPlatformLabel reports whether key is one of the labels the kubelet
// derives from the node's platform (GOOS and GOARCH).
func isPlatformLabel(key string) bool {
	switch key {
	case corev1.LabelArchStable, corev1.LabelOSStable, labelBetaArch, labelBetaOS:
		return true
	}
	return false
}

// impliedLabel is the value a label has on every node of p because of
// where the pool comes from, even when discovery did not record it: EKS
// labels a managed node group's nodes with the group's name, Karpenter a
// NodePool's nodes with the NodePool's name.
func impliedLabel(p Pool, key string) (string, bool) {
	switch {
	case key == LabelNodegroup && p.Kind == KindManagedNodeGroup,
		key == LabelKarpenterNodePool && p.Kind == KindKarpenter:
		return p.Name, true
	}
	return "", false
}

// keyKind is what a pool says of one label key of its nodes.
type keyKind int

const (
	keyAbsent   keyKind = iota // no node carries it
	keyOpen                    // a node may carry any value
	keyFixed                   // every node carries one value
	keyValues                  // every node carries one of several values
	keyPlatform                // the node's platform decides it
)

// resolveKey says what p's nodes carry under key: the fixed value, or the
// allowed values.
func resolveKey(p Pool, key string) (kind keyKind, value string, values []string) {
	if len(p.Platforms) > 0 && isPlatformLabel(key) {
		return keyPlatform, "", nil
	}
	if v, ok := p.Labels[key]; ok {
		return keyFixed, v, nil
	}
	if v, ok := impliedLabel(p, key); ok {
		return keyFixed, v, nil
	}
	if kind, values := requirementOn(p.Requirements, key); kind != keyAbsent {
		if kind == keyValues && len(values) == 1 {
			return keyFixed, values[0], nil
		}
		return kind, "", values
	}
	if p.Kind == KindStatic && p.Labels == nil && p.Requirements == nil || OpenLabel(p.Kind, key) {
		return keyOpen, "", nil
	}
	return keyAbsent, "", nil
}

// requirementOn reads the pool's requirements on key as Karpenter does for
// a NodePool (spec.template.spec.requirements, ANDed): In allows its values,
// several In intersect; any other operator, or an empty intersection
// (a NodePool that can launch nothing), leaves the key open.
func requirementOn(reqs []corev1.NodeSelectorRequirement, key string) (keyKind, []string) {
	var values []string
	found := false
	for _, r := range reqs {
		if r.Key != key {
			continue
		}
		if r.Operator != corev1.NodeSelectorOpIn {
			return keyOpen, nil
		}
		if !found {
			values, found = r.Values, true
			continue
		}
		values = slices.DeleteFunc(slices.Clone(values), func(v string) bool { return !slices.Contains(r.Values, v) })
	}
	switch {
	case !found:
		return keyAbsent, nil
	case len(values) == 0:
		return keyOpen, nil
	}
	return keyValues, values
}
