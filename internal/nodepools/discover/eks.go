package discover

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

// Labels EKS puts on every node of a managed node group
// (https://docs.aws.amazon.com/eks/latest/userguide/managed-node-groups.html).
const (
	LabelNodegroup    = "eks.amazonaws.com/nodegroup"
	LabelCapacityType = "eks.amazonaws.com/capacityType"
)

// maxDescribes bounds concurrent Describe calls for one cluster: EKS
// throttles per account, and a cluster has tens of groups, not thousands.
const maxDescribes = 4

// Cluster reads the pools EKS itself knows for one cluster: its managed
// node groups and its Fargate profiles. It does not cache; the caller
// refreshes the lists on its own schedule.
type Cluster struct {
	api  EKSAPI
	name string
}

// NewCluster returns a Cluster reading the EKS cluster with the given name
// through api (a client for the cluster's region).
func NewCluster(api EKSAPI, name string) *Cluster {
	return &Cluster{api: api, name: name}
}

// NodeGroups returns every managed node group of the cluster as a pool of
// kind managed-node-group: RoleARN is the node role; Labels are the
// group's Kubernetes labels plus those EKS and the kubelet add to each node
// (eks.amazonaws.com/nodegroup, eks.amazonaws.com/capacityType, and
// kubernetes.io/os, kubernetes.io/arch, node.kubernetes.io/windows-build
// from the AMI type); Taints are the group's taints; Platforms is the AMI
// type's platform, empty (unknown) for CUSTOM or an AMI type this package
// does not know. A group scaled to zero is a pool like any other; a group
// being deleted or whose creation failed is none.
//
// If the list fails, NodeGroups returns no pool and the error. If some
// groups cannot be described, it returns the others and an error
// (errors.Join) naming each group it skipped, so the caller can keep what
// it got and mark discovery incomplete.
func (c *Cluster) NodeGroups(ctx context.Context) ([]nodepools.Pool, error) {
	var names []string
	pages := eks.NewListNodegroupsPaginator(c.api, &eks.ListNodegroupsInput{ClusterName: aws.String(c.name)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing node groups in cluster %s: %w", c.name, err)
		}
		names = append(names, out.Nodegroups...)
	}
	return describeAll(names, func(name string) (*nodepools.Pool, error) {
		out, err := c.api.DescribeNodegroup(ctx, &eks.DescribeNodegroupInput{ClusterName: aws.String(c.name), NodegroupName: aws.String(name)})
		if err != nil {
			return nil, fmt.Errorf("describing node group %s in cluster %s: %w", name, c.name, err)
		}
		if out.Nodegroup == nil || gone(string(out.Nodegroup.Status)) {
			return nil, nil
		}
		p := nodeGroupPool(out.Nodegroup)
		return &p, nil
	})
}

// FargateProfiles returns every Fargate profile of the cluster as a pool of
// kind fargate-profile: RoleARN is the pod execution role, which pulls the
// images of the pods the profile runs; Fargate holds its selectors;
// Platforms is linux/amd64, since EKS on Fargate runs neither Arm nor
// Windows workloads (Fargate comparison table,
// https://docs.aws.amazon.com/eks/latest/userguide/fargate.html). A profile
// being deleted or whose creation failed is none. Errors are as for
// NodeGroups.
func (c *Cluster) FargateProfiles(ctx context.Context) ([]nodepools.Pool, error) {
	var names []string
	pages := eks.NewListFargateProfilesPaginator(c.api, &eks.ListFargateProfilesInput{ClusterName: aws.String(c.name)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing Fargate profiles in cluster %s: %w", c.name, err)
		}
		names = append(names, out.FargateProfileNames...)
	}
	return describeAll(names, func(name string) (*nodepools.Pool, error) {
		out, err := c.api.DescribeFargateProfile(ctx, &eks.DescribeFargateProfileInput{ClusterName: aws.String(c.name), FargateProfileName: aws.String(name)})
		if err != nil {
			return nil, fmt.Errorf("describing Fargate profile %s in cluster %s: %w", name, c.name, err)
		}
		if out.FargateProfile == nil || gone(string(out.FargateProfile.Status)) {
			return nil, nil
		}
		p := fargateProfilePool(out.FargateProfile)
		return &p, nil
	})
}

// gone reports whether a node group or Fargate profile in status will
// never run a pod: it is being deleted or was never created. Node groups and
// Fargate profiles name these statuses alike.
func gone(status string) bool {
	return status == string(ekstypes.NodegroupStatusDeleting) || status == string(ekstypes.NodegroupStatusCreateFailed)
}

// describeAll runs describe for every name, a few at a time, and returns
// the pools in the order of names, leaving out nil ones, with every error
// joined.
func describeAll(names []string, describe func(name string) (*nodepools.Pool, error)) ([]nodepools.Pool, error) {
	found := make([]*nodepools.Pool, len(names))
	errs := make([]error, len(names))
	var g errgroup.Group
	g.SetLimit(maxDescribes)
	for i, name := range names {
		g.Go(func() error {
			found[i], errs[i] = describe(name)
			return nil
		})
	}
	_ = g.Wait() // errors are collected per name
	pools := make([]nodepools.Pool, 0, len(names))
	for _, p := range found {
		if p != nil {
			pools = append(pools, *p)
		}
	}
	return pools, errors.Join(errs...)
}

func nodeGroupPool(ng *ekstypes.Nodegroup) nodepools.Pool {
	name := aws.ToString(ng.NodegroupName)
	p := nodepools.Pool{
		Name:    name,
		Kind:    nodepools.KindManagedNodeGroup,
		RoleARN: aws.ToString(ng.NodeRole),
		Labels:  maps.Clone(ng.Labels),
	}
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	// EKS's and the kubelet's labels win over the group's own: they are
	// what the nodes end up with.
	p.Labels[LabelNodegroup] = name
	if ng.CapacityType != "" {
		p.Labels[LabelCapacityType] = string(ng.CapacityType)
	}
	if platform, ok := amiTypePlatform(ng.AmiType); ok {
		p.Platforms = []nodepools.Platform{platform}
		maps.Copy(p.Labels, platformLabels(platform))
	}
	for _, t := range ng.Taints {
		p.Taints = append(p.Taints, corev1.Taint{
			Key:    aws.ToString(t.Key),
			Value:  aws.ToString(t.Value),
			Effect: taintEffect(t.Effect),
		})
	}
	return p
}

// taintEffect maps an EKS taint effect to the Kubernetes one. An effect
// EKS adds later is kept as EKS spells it: the scheduler ignores effects it
// does not know, and so will the matcher.
func taintEffect(e ekstypes.TaintEffect) corev1.TaintEffect {
	switch e {
	case ekstypes.TaintEffectNoSchedule:
		return corev1.TaintEffectNoSchedule
	case ekstypes.TaintEffectNoExecute:
		return corev1.TaintEffectNoExecute
	case ekstypes.TaintEffectPreferNoSchedule:
		return corev1.TaintEffectPreferNoSchedule
	}
	return corev1.TaintEffect(e)
}

func fargateProfilePool(fp *ekstypes.FargateProfile) nodepools.Pool {
	p := nodepools.Pool{
		Name:      aws.ToString(fp.FargateProfileName),
		Kind:      nodepools.KindFargate,
		RoleARN:   aws.ToString(fp.PodExecutionRoleArn),
		Platforms: []nodepools.Platform{linuxAMD64},
	}
	for _, s := range fp.Selectors {
		p.Fargate = append(p.Fargate, nodepools.FargateSelector{
			Namespace: aws.ToString(s.Namespace),
			Labels:    maps.Clone(s.Labels),
		})
	}
	return p
}
