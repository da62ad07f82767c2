package discover

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/yaml"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

// object reads one Kubernetes object from YAML.
func object(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("test object: %v", err)
	}
	return &unstructured.Unstructured{Object: m}
}

func TestNodePoolPool(t *testing.T) {
	arch := func(values ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: corev1.LabelArchStable, Operator: corev1.NodeSelectorOpIn, Values: values}
	}
	osIn := func(values ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: corev1.LabelOSStable, Operator: corev1.NodeSelectorOpIn, Values: values}
	}
	linux := func(arch string) nodepools.Platform { return nodepools.Platform{OS: "linux", Architecture: arch} }
	windows := func(build string) nodepools.Platform {
		return nodepools.Platform{OS: "windows", Architecture: "amd64", OSVersion: build}
	}
	tests := map[string]struct {
		nodePool, nodeClass string
		want                nodepools.Pool
	}{
		"an open NodePool launches linux on either architecture": {
			nodePool:  `{}`,
			nodeClass: `{spec: {amiSelectorTerms: [{alias: al2023@latest}]}}`,
			want: nodepools.Pool{
				Labels:       map[string]string{labelKarpenterNodePool: "np"},
				Requirements: []corev1.NodeSelectorRequirement{arch("amd64", "arm64"), osIn("linux")},
				Platforms:    []nodepools.Platform{linux("amd64"), linux("arm64")},
			},
		},
		"template labels, single-value requirements and taints, not startup taints": {
			nodePool: `
spec:
  template:
    metadata: {labels: {team: ml}}
    spec:
      requirements:
      - {key: kubernetes.io/arch, operator: In, values: [arm64]}
      - {key: karpenter.sh/capacity-type, operator: In, values: [spot, on-demand]}
      - {key: karpenter.k8s.aws/instance-family, operator: In, values: [c7g], minValues: 1}
      taints: [{key: dedicated, value: ml, effect: NoSchedule}]
      startupTaints: [{key: cilium.io/agent-not-ready, effect: NoExecute}]`,
			want: nodepools.Pool{
				Labels: map[string]string{
					labelKarpenterNodePool: "np", "team": "ml",
					corev1.LabelArchStable: "arm64", "karpenter.k8s.aws/instance-family": "c7g",
				},
				Requirements: []corev1.NodeSelectorRequirement{
					arch("arm64"),
					{Key: "karpenter.sh/capacity-type", Operator: corev1.NodeSelectorOpIn, Values: []string{"spot", "on-demand"}},
					{Key: "karpenter.k8s.aws/instance-family", Operator: corev1.NodeSelectorOpIn, Values: []string{"c7g"}},
					osIn("linux"),
				},
				Taints:    []corev1.Taint{{Key: "dedicated", Value: "ml", Effect: corev1.TaintEffectNoSchedule}},
				Platforms: []nodepools.Platform{linux("arm64")},
			},
		},
		"NotIn on the architecture leaves the other": {
			nodePool: `{spec: {template: {spec: {requirements: [{key: kubernetes.io/arch, operator: NotIn, values: [arm64]}]}}}}`,
			want: nodepools.Pool{
				Labels: map[string]string{labelKarpenterNodePool: "np"},
				Requirements: []corev1.NodeSelectorRequirement{
					{Key: corev1.LabelArchStable, Operator: corev1.NodeSelectorOpNotIn, Values: []string{"arm64"}},
					osIn("linux"),
				},
				Platforms: []nodepools.Platform{linux("amd64")},
			},
		},
		"a Windows AMI alias gives windows/amd64 with its build": {
			nodePool:  `{}`,
			nodeClass: `{spec: {amiSelectorTerms: [{alias: windows2022@latest}]}}`,
			want: nodepools.Pool{
				Labels:       map[string]string{labelKarpenterNodePool: "np"},
				Requirements: []corev1.NodeSelectorRequirement{arch("amd64", "arm64"), osIn("windows")},
				Platforms:    []nodepools.Platform{windows("10.0.20348")},
			},
		},
		"a Windows amiFamily without an alias gives the build too": {
			nodePool:  `{spec: {template: {spec: {requirements: [{key: kubernetes.io/os, operator: In, values: [windows]}]}}}}`,
			nodeClass: `{spec: {amiFamily: Windows2019, amiSelectorTerms: [{id: ami-0123}]}}`,
			want: nodepools.Pool{
				Labels:       map[string]string{labelKarpenterNodePool: "np", corev1.LabelOSStable: "windows"},
				Requirements: []corev1.NodeSelectorRequirement{osIn("windows"), arch("amd64", "arm64")},
				Platforms:    []nodepools.Platform{windows("10.0.17763")},
			},
		},
		"a windows-build requirement names the builds": {
			nodePool: `
spec:
  template:
    spec:
      requirements:
      - {key: kubernetes.io/os, operator: In, values: [windows]}
      - {key: node.kubernetes.io/windows-build, operator: In, values: [10.0.20348, 10.0.26100]}`,
			want: nodepools.Pool{
				Labels: map[string]string{labelKarpenterNodePool: "np", corev1.LabelOSStable: "windows"},
				Requirements: []corev1.NodeSelectorRequirement{
					osIn("windows"),
					{Key: corev1.LabelWindowsBuild, Operator: corev1.NodeSelectorOpIn, Values: []string{"10.0.20348", "10.0.26100"}},
					arch("amd64", "arm64"),
				},
				Platforms: []nodepools.Platform{windows("10.0.20348"), windows("10.0.26100")},
			},
		},
		"a requirement for both systems gives both": {
			nodePool:  `{spec: {template: {spec: {requirements: [{key: kubernetes.io/os, operator: Exists}, {key: kubernetes.io/os, operator: NotIn, values: [plan9]}]}}}}`,
			nodeClass: `{spec: {amiSelectorTerms: [{alias: bottlerocket@latest}]}}`,
			want: nodepools.Pool{
				Labels: map[string]string{labelKarpenterNodePool: "np"},
				Requirements: []corev1.NodeSelectorRequirement{
					{Key: corev1.LabelOSStable, Operator: corev1.NodeSelectorOpExists},
					{Key: corev1.LabelOSStable, Operator: corev1.NodeSelectorOpNotIn, Values: []string{"plan9"}},
					arch("amd64", "arm64"),
				},
				Platforms: []nodepools.Platform{linux("amd64"), linux("arm64"), windows("")},
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// Decoded as karpenterPools decodes objects, so unknown fields
			// (minValues, startupTaints) are dropped the same way.
			var np nodePool
			var nc ec2NodeClass
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(object(t, tc.nodePool).Object, &np); err != nil {
				t.Fatal(err)
			}
			if tc.nodeClass != "" {
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(object(t, tc.nodeClass).Object, &nc); err != nil {
					t.Fatal(err)
				}
			}
			got := nodePoolPool("np", np, nc)
			tc.want.Name, tc.want.Kind = "np", nodepools.KindKarpenter
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("nodePoolPool =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

const (
	nodeClassByRole = `
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata: {name: by-role}
spec: {role: KarpenterNodeRole, amiSelectorTerms: [{alias: al2023@latest}]}
status: {instanceProfile: cluster_1234}`
	nodeClassByProfile = `
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata: {name: by-profile}
spec: {instanceProfile: GpuProfile}`
	nodeClassByStatus = `
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata: {name: by-status}
status: {instanceProfile: made-by-karpenter}`
	nodeClassByARN = `
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata: {name: by-arn}
spec: {role: "arn:aws:iam::111122223333:role/eks/NodeRoleB"}`
)

func nodePoolObject(t *testing.T, name, group, kind, class string) *unstructured.Unstructured {
	return object(t, `
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: `+name+`}
spec:
  template:
    spec:
      requirements: [{key: kubernetes.io/arch, operator: In, values: [amd64]}]
      nodeClassRef: {group: `+group+`, kind: `+kind+`, name: `+class+`}`)
}

func TestKarpenterPools(t *testing.T) {
	const ec2 = "karpenter.k8s.aws"
	r := fakeReader(t,
		object(t, nodeClassByRole), object(t, nodeClassByProfile), object(t, nodeClassByStatus), object(t, nodeClassByARN),
		nodePoolObject(t, "default", ec2, "EC2NodeClass", "by-role"),
		nodePoolObject(t, "default-2", ec2, "EC2NodeClass", "by-role"),
		nodePoolObject(t, "gpu", ec2, "EC2NodeClass", "by-profile"),
		nodePoolObject(t, "status", ec2, "EC2NodeClass", "by-status"),
		nodePoolObject(t, "arn", ec2, "EC2NodeClass", "by-arn"),
		nodePoolObject(t, "missing", ec2, "EC2NodeClass", "nowhere"),
		nodePoolObject(t, "auto", "eks.amazonaws.com", "NodeClass", "default"),
	)
	roles := &fakeRoles{
		roles:    map[string]string{"KarpenterNodeRole": roleA},
		profiles: map[string]string{"GpuProfile": roleB, "made-by-karpenter": roleA},
	}
	a, installed := karpenterPools(context.Background(), r, roles)
	if !installed || a.err != nil {
		t.Fatalf("karpenterPools: installed %v, err %v", installed, a.err)
	}
	got := map[string]string{}
	for _, p := range a.pools {
		got[p.Name] = p.RoleARN
		if p.Kind != nodepools.KindKarpenter || p.Labels[labelKarpenterNodePool] != p.Name {
			t.Errorf("pool %s: kind %s, labels %v", p.Name, p.Kind, p.Labels)
		}
	}
	want := map[string]string{
		"default": roleA, "default-2": roleA, "gpu": roleB, "status": roleA, "arn": roleB,
		"missing": "", "auto": "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("roles = %v, want %v", got, want)
	}
	wantErrs := map[string]string{
		"karpenter-nodepool/missing": "EC2NodeClass nowhere not found",
		"karpenter-nodepool/auto":    "nodeClassRef eks.amazonaws.com/NodeClass default is an EKS Auto Mode node class, whose role is known only from its nodes",
	}
	if len(a.roleErrs) != len(wantErrs) {
		t.Errorf("roleErrs = %v, want %v", a.roleErrs, wantErrs)
	}
	for key, msg := range wantErrs {
		if err := a.roleErrs[key]; err == nil || err.Error() != msg {
			t.Errorf("roleErrs[%s] = %v, want %q", key, err, msg)
		}
	}
	// One lookup per node class, however many NodePools share it; an ARN
	// needs none.
	calls := roles.Calls()
	slices.Sort(calls)
	wantCalls := []string{"InstanceProfileRole GpuProfile", "InstanceProfileRole made-by-karpenter", "RoleARN KarpenterNodeRole"}
	if !slices.Equal(calls, wantCalls) {
		t.Errorf("calls = %v, want %v", calls, wantCalls)
	}
}

// noKind fails every List of a Karpenter kind as the API server's REST
// mapping does when the CRD is not installed; kinds lists those that are.
func noKind(kinds ...string) interceptor.Funcs {
	return interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		gvk := list.GetObjectKind().GroupVersionKind()
		if strings.HasPrefix(gvk.Group, "karpenter.") && !slices.Contains(kinds, gvk.Kind) {
			return &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: gvk.Group, Kind: strings.TrimSuffix(gvk.Kind, "List")}, SearchedVersions: []string{gvk.Version}}
		}
		return c.List(ctx, list, opts...)
	}}
}

func TestKarpenterNotInstalled(t *testing.T) {
	r := fake.NewClientBuilder().WithInterceptorFuncs(noKind()).Build()
	a, installed := karpenterPools(context.Background(), r, &fakeRoles{})
	if installed || a.err != nil || len(a.pools) != 0 {
		t.Errorf("karpenterPools = %+v, installed %v; want nothing, not installed", a, installed)
	}
}

func TestKarpenterWithoutEC2NodeClass(t *testing.T) {
	r := fake.NewClientBuilder().
		WithObjects(nodePoolObject(t, "default", "karpenter.k8s.aws", "EC2NodeClass", "default")).
		WithInterceptorFuncs(noKind("NodePoolList")).Build()
	a, installed := karpenterPools(context.Background(), r, &fakeRoles{})
	if !installed || a.err != nil || len(a.pools) != 1 || a.pools[0].RoleARN != "" {
		t.Fatalf("karpenterPools = %+v, installed %v; want one pool without a role", a, installed)
	}
	if err := a.roleErrs["karpenter-nodepool/default"]; err == nil || !strings.Contains(err.Error(), "no matches for kind") {
		t.Errorf("roleErrs = %v, want the missing kind named", a.roleErrs)
	}
}

func TestKarpenterNodeClassesUnreadable(t *testing.T) {
	// EC2NodeClasses cannot be listed: NodePools are all there, without
	// roles, and the source has not failed (no NodePool is missing).
	r := fake.NewClientBuilder().
		WithObjects(object(t, nodeClassByRole), nodePoolObject(t, "default", "karpenter.k8s.aws", "EC2NodeClass", "by-role")).
		WithInterceptorFuncs(interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if list.GetObjectKind().GroupVersionKind().Kind == "EC2NodeClassList" {
				return apierrors.NewForbidden(schema.GroupResource{Group: "karpenter.k8s.aws", Resource: "ec2nodeclasses"}, "", errors.New("RBAC"))
			}
			return c.List(ctx, list, opts...)
		}}).Build()
	a, installed := karpenterPools(context.Background(), r, &fakeRoles{roles: map[string]string{"KarpenterNodeRole": roleA}})
	if !installed || a.err != nil || len(a.pools) != 1 || a.pools[0].RoleARN != "" {
		t.Fatalf("karpenterPools = %+v, installed %v; want one pool without a role, no error", a, installed)
	}
	if err := a.roleErrs["karpenter-nodepool/default"]; err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("roleErrs = %v, want the failed list named", a.roleErrs)
	}
}

func TestKarpenterNodePoolUnreadable(t *testing.T) {
	// A NodePool that cannot be read is a pool missing: the source failed,
	// in words of its own.
	bad := object(t, `
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: bad}
spec: {template: {spec: {taints: "dedicated=ml:NoSchedule"}}}`)
	r := fakeReader(t, bad, object(t, nodeClassByRole), nodePoolObject(t, "default", "karpenter.k8s.aws", "EC2NodeClass", "by-role"))
	a, _ := karpenterPools(context.Background(), r, &fakeRoles{roles: map[string]string{"KarpenterNodeRole": roleA}})
	if len(a.pools) != 1 || a.pools[0].Name != "default" {
		t.Errorf("pools = %+v, want default alone", a.pools)
	}
	if a.err == nil || cause(a.err) != "NodePool bad unreadable" || !strings.Contains(a.err.Error(), "reading NodePool bad") {
		t.Errorf("err = %v (cause %q), want NodePool bad named", a.err, cause(a.err))
	}
}
