package nodepools

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

var (
	linuxAMD64   = Platform{OS: "linux", Architecture: "amd64"}
	linuxARM64   = Platform{OS: "linux", Architecture: "arm64"}
	windowsAMD64 = Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348.2340"}
)

// Node pools whose labels the node-affinity cases read.
var (
	web = Pool{Name: "web", Kind: KindManagedNodeGroup, Platforms: []Platform{linuxAMD64},
		Labels: map[string]string{"team": "web", "cores": "8"}}
	batch = Pool{Name: "batch", Kind: KindSelfManaged, Platforms: []Platform{linuxAMD64},
		Labels: map[string]string{"team": "batch", "cores": "64"}}
	// kp is a Karpenter NodePool allowing two architectures and two teams.
	kp = Pool{Name: "kp", Kind: KindKarpenter, Platforms: []Platform{linuxAMD64, linuxARM64},
		Requirements: []corev1.NodeSelectorRequirement{
			req(corev1.LabelArchStable, corev1.NodeSelectorOpIn, "amd64", "arm64"),
			req("team", corev1.NodeSelectorOpIn, "ml", "data"),
			req(LabelKarpenterCapacityType, corev1.NodeSelectorOpIn, "spot", "on-demand"),
			req("tier", corev1.NodeSelectorOpNotIn, "free"),
		}}
	zonal = Pool{Name: "zonal", Kind: KindManagedNodeGroup, Platforms: []Platform{linuxAMD64},
		Labels: map[string]string{corev1.LabelTopologyZone: "us-west-2b"}}
	// unknown is a static pool configured with a role only.
	unknown = Pool{Name: "unknown", Kind: KindStatic}
)

// Node pools of every kind saying nothing of the labels their nodes carry,
// for the labels OpenLabel leaves open per kind.
var (
	mngBare   = Pool{Name: "mng", Kind: KindManagedNodeGroup}
	selfBare  = Pool{Name: "self", Kind: KindSelfManaged}
	kpBare    = Pool{Name: "karpenter", Kind: KindKarpenter}
	staticTag = Pool{Name: "static-team", Kind: KindStatic, Labels: map[string]string{"team": "ml"}}
)

// The static pools of the pools file example in docs/node-pools.md.
var (
	docsGPU = Pool{Name: "gpu", Kind: KindStatic, Platforms: []Platform{linuxAMD64},
		Labels: map[string]string{"team": "ml"},
		Taints: []corev1.Taint{{Key: "nvidia.com/gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}}}
	docsBatch = Pool{Name: "batch", Kind: KindStatic,
		Fargate: []FargateSelector{{Namespace: "batch", Labels: map[string]string{"team": "ml"}}}}
	// toleratingGPU tolerates docsGPU's taint.
	toleratingGPU = corev1.Toleration{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists}
)

// Pools for taints and for spec.os.name.
var (
	gpu = Pool{Name: "gpu", Kind: KindManagedNodeGroup,
		Taints: []corev1.Taint{{Key: "nvidia.com/gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}}}
	draining = Pool{Name: "draining", Kind: KindSelfManaged,
		Taints: []corev1.Taint{{Key: "maintenance", Effect: corev1.TaintEffectNoExecute}}}
	spotty = Pool{Name: "spotty", Kind: KindKarpenter,
		Taints: []corev1.Taint{{Key: "spot", Value: "true", Effect: corev1.TaintEffectPreferNoSchedule}}}
	infra = Pool{Name: "infra", Kind: KindStatic,
		Taints: []corev1.Taint{{Key: "dedicated", Value: "infra", Effect: corev1.TaintEffectNoSchedule}}}
	win = Pool{Name: "win", Kind: KindManagedNodeGroup, Platforms: []Platform{windowsAMD64}}
	// linuxByLabel knows its OS from a label, not from Platforms.
	linuxByLabel = Pool{Name: "linux-by-label", Kind: KindSelfManaged,
		Labels: map[string]string{corev1.LabelOSStable: "linux"}}
	mixedOS = Pool{Name: "mixed-os", Kind: KindStatic, Platforms: []Platform{linuxAMD64, windowsAMD64}}
)

// Fargate profiles.
var (
	fgApps  = Pool{Name: "apps", Kind: KindFargate, Fargate: []FargateSelector{{Namespace: "apps"}}}
	fgAppsB = Pool{Name: "apps-b", Kind: KindFargate, Fargate: []FargateSelector{{Namespace: "apps"}}}
	fgJobs  = Pool{Name: "jobs", Kind: KindFargate, Fargate: []FargateSelector{
		{Namespace: "kube-system", Labels: map[string]string{"k8s-app": "kube-dns"}},
		{Namespace: "jobs", Labels: map[string]string{"compute": "fargate", "tier": "batch"}},
	}}
	fgProd = Pool{Name: "prod", Kind: KindFargate, Fargate: []FargateSelector{
		{Namespace: "prod-*", Labels: map[string]string{"app": "?pi"}},
	}}
)

func req(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func term(exprs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: exprs}
}

// requiring is a pod spec with required node affinity of the terms.
func requiring(terms ...corev1.NodeSelectorTerm) *corev1.PodSpec {
	return &corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
	}}}
}

// requiringOne is a pod spec whose required node affinity is one term.
func requiringOne(exprs ...corev1.NodeSelectorRequirement) *corev1.PodSpec {
	return requiring(term(exprs...))
}

func selecting(kv ...string) *corev1.PodSpec {
	s := &corev1.PodSpec{NodeSelector: map[string]string{}}
	for i := 0; i < len(kv); i += 2 {
		s.NodeSelector[kv[i]] = kv[i+1]
	}
	return s
}

func tolerating(tols ...corev1.Toleration) *corev1.PodSpec {
	return &corev1.PodSpec{Tolerations: tols}
}

func onOS(name corev1.OSName) *corev1.PodSpec {
	return &corev1.PodSpec{OS: &corev1.PodOS{Name: name}}
}

func inNamespace(ns string, spec *corev1.PodSpec, kv ...string) Template {
	labels := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		labels[kv[i]] = kv[i+1]
	}
	return Template{Namespace: ns, Labels: labels, Spec: spec}
}

func pod(spec *corev1.PodSpec) Template { return inNamespace("default", spec) }

func pools(ps ...Pool) []Pool { return ps }

// manyValues is n values v0…v(n-1).
func manyValues(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("v%d", i)
	}
	return out
}

// capped allows 10 values on each of a, b and c: 1000 combinations, past
// maxShapes, so c is left open.
var capped = Pool{Name: "capped", Kind: KindKarpenter, Requirements: []corev1.NodeSelectorRequirement{
	req("a", corev1.NodeSelectorOpIn, manyValues(10)...),
	req("b", corev1.NodeSelectorOpIn, manyValues(10)...),
	req("c", corev1.NodeSelectorOpIn, manyValues(10)...),
}}

func TestCandidates(t *testing.T) {
	tests := map[string]struct {
		pools []Pool
		t     Template
		want  []string // candidate names, in order
		// platforms are the PlatformList of candidates whose platforms are
		// checked.
		platforms map[string]string
		// excluded maps every excluded pool to its reason.
		excluded map[string]string
	}{
		"a pod with no constraints may land on every node pool": {
			pools: pools(web, batch, kp, unknown),
			t:     pod(nil),
			want:  []string{"web", "batch", "kp", "unknown"},
			platforms: map[string]string{
				"kp": "linux/amd64, linux/arm64", "web": "linux/amd64", "unknown": "unknown",
			},
		},

		// Node affinity operators against fixed labels, requirements and open keys.
		"In on a fixed label keeps the pools carrying the value": {
			pools: pools(web, batch, kp),
			t:     pod(requiringOne(req("team", corev1.NodeSelectorOpIn, "web"))),
			want:  []string{"web"},
			excluded: map[string]string{
				"batch": "node affinity: team In [web]",
				"kp":    "node affinity: team In [web]",
			},
		},
		"In on a requirement keeps the pool that allows the value": {
			pools: pools(web, batch, kp),
			t:     pod(requiringOne(req("team", corev1.NodeSelectorOpIn, "data", "other"))),
			want:  []string{"kp"},
			excluded: map[string]string{
				"web":   "node affinity: team In [data other]",
				"batch": "node affinity: team In [data other]",
			},
		},
		"NotIn on fixed labels and requirements": {
			pools: pools(web, batch, kp),
			t:     pod(requiringOne(req("team", corev1.NodeSelectorOpNotIn, "web", "ml"))),
			want:  []string{"batch", "kp"},
			excluded: map[string]string{
				"web": "node affinity: team NotIn [web ml]",
			},
		},
		"NotIn ruling out every value a requirement allows": {
			pools: pools(web, kp),
			t:     pod(requiringOne(req("team", corev1.NodeSelectorOpNotIn, "ml", "data"))),
			want:  []string{"web"},
			excluded: map[string]string{
				"kp": "node affinity: team NotIn [ml data]",
			},
		},
		"NotIn on a key a pool's nodes do not carry is met": {
			pools: pools(web, kp),
			t:     pod(requiringOne(req("cores", corev1.NodeSelectorOpNotIn, "8"))),
			want:  []string{"kp"},
			excluded: map[string]string{
				"web": "node affinity: cores NotIn [8]",
			},
		},
		"Exists on fixed labels, requirements and absent keys": {
			pools: pools(web, batch, kp),
			t:     pod(requiringOne(req("cores", corev1.NodeSelectorOpExists))),
			want:  []string{"web", "batch"},
			excluded: map[string]string{
				"kp": "node affinity: cores Exists",
			},
		},
		"Exists on a key a requirement constrains": {
			pools: pools(web, kp),
			t:     pod(requiringOne(req(LabelKarpenterCapacityType, corev1.NodeSelectorOpExists))),
			// A managed node group's nodes never carry Karpenter's labels.
			want: []string{"kp"},
			excluded: map[string]string{
				"web": "node affinity: karpenter.sh/capacity-type Exists",
			},
		},
		"DoesNotExist on a fixed label": {
			pools: pools(web, batch, kp),
			t:     pod(requiringOne(req("cores", corev1.NodeSelectorOpDoesNotExist))),
			want:  []string{"kp"},
			excluded: map[string]string{
				"web":   "node affinity: cores DoesNotExist",
				"batch": "node affinity: cores DoesNotExist",
			},
		},
		"DoesNotExist on a key a requirement allows values for": {
			pools: pools(web, kp),
			t:     pod(requiringOne(req("team", corev1.NodeSelectorOpDoesNotExist))),
			want:  nil,
			excluded: map[string]string{
				"web": "node affinity: team DoesNotExist",
				"kp":  "node affinity: team DoesNotExist",
			},
		},
		"Gt compares fixed label values as integers": {
			pools: pools(web, batch, kp),
			t:     pod(requiringOne(req("cores", corev1.NodeSelectorOpGt, "16"))),
			want:  []string{"batch"},
			excluded: map[string]string{
				"web": "node affinity: cores Gt [16]",
				"kp":  "node affinity: cores Gt [16]",
			},
		},
		"Lt compares fixed label values as integers": {
			pools: pools(web, batch, kp),
			t:     pod(requiringOne(req("cores", corev1.NodeSelectorOpLt, "16"))),
			want:  []string{"web"},
			excluded: map[string]string{
				"batch": "node affinity: cores Lt [16]",
				"kp":    "node affinity: cores Lt [16]",
			},
		},
		"Gt and Lt on values a requirement allows": {
			pools: pools(Pool{Name: "sized", Kind: KindKarpenter, Requirements: []corev1.NodeSelectorRequirement{
				req("gen", corev1.NodeSelectorOpIn, "5", "6", "7"),
			}}, Pool{Name: "old", Kind: KindKarpenter, Requirements: []corev1.NodeSelectorRequirement{
				req("gen", corev1.NodeSelectorOpIn, "3", "4"),
			}}),
			t: pod(requiringOne(
				req("gen", corev1.NodeSelectorOpGt, "5"),
				req("gen", corev1.NodeSelectorOpLt, "7"),
			)),
			want:     []string{"sized"},
			excluded: map[string]string{"old": "node affinity: gen Gt [5]"},
		},
		"several In requirements on one key allow the values they share": {
			pools: pools(Pool{Name: "racks", Kind: KindKarpenter, Requirements: []corev1.NodeSelectorRequirement{
				req("rack", corev1.NodeSelectorOpIn, "a", "b", "c"),
				req("rack", corev1.NodeSelectorOpIn, "b", "c", "d"),
			}}),
			t:        pod(requiringOne(req("rack", corev1.NodeSelectorOpIn, "a", "d"))),
			excluded: map[string]string{"racks": "node affinity: rack In [a d]"},
		},
		"In requirements sharing no value leave the key open": {
			pools: pools(Pool{Name: "racks", Kind: KindKarpenter, Requirements: []corev1.NodeSelectorRequirement{
				req("rack", corev1.NodeSelectorOpIn, "a"),
				req("rack", corev1.NodeSelectorOpIn, "b"),
			}}),
			t:    pod(requiringOne(req("rack", corev1.NodeSelectorOpIn, "z"))),
			want: []string{"racks"},
		},
		"In, NotIn, Gt and DoesNotExist on open keys may all be met": {
			pools: pools(kp, unknown),
			t: pod(requiringOne(
				req(corev1.LabelTopologyZone, corev1.NodeSelectorOpIn, "us-west-2a"),
				req(corev1.LabelInstanceTypeStable, corev1.NodeSelectorOpNotIn, "t3.micro"),
				req("karpenter.k8s.aws/instance-memory", corev1.NodeSelectorOpGt, "16384"),
				req(corev1.LabelHostname, corev1.NodeSelectorOpDoesNotExist),
			)),
			want: []string{"kp", "unknown"},
		},
		"Lt on a key under a requirement other than In is open": {
			pools: pools(web, kp),
			t:     pod(requiringOne(req("tier", corev1.NodeSelectorOpLt, "3"))),
			want:  []string{"kp"},
			excluded: map[string]string{
				"web": "node affinity: tier Lt [3]",
			},
		},
		"a well-known key a pool fixes is judged on its value": {
			pools: pools(web, zonal),
			t:     pod(requiringOne(req(corev1.LabelTopologyZone, corev1.NodeSelectorOpIn, "us-west-2a"))),
			want:  []string{"web"},
			excluded: map[string]string{
				"zonal": "node affinity: topology.kubernetes.io/zone In [us-west-2a]",
			},
		},
		"expressions of a term are ANDed": {
			pools: pools(web, batch),
			t: pod(requiringOne(
				req("team", corev1.NodeSelectorOpExists),
				req("cores", corev1.NodeSelectorOpGt, "16"),
			)),
			want:     []string{"batch"},
			excluded: map[string]string{"web": "node affinity: cores Gt [16]"},
		},
		"expressions that only fail together are named together": {
			pools: pools(kp),
			t: pod(requiringOne(
				req("team", corev1.NodeSelectorOpIn, "ml"),
				req("team", corev1.NodeSelectorOpIn, "data"),
			)),
			excluded: map[string]string{"kp": "node affinity: team In [ml] and team In [data]"},
		},
		"terms are ORed": {
			pools: pools(web, batch, kp),
			t: pod(requiring(
				term(req("team", corev1.NodeSelectorOpIn, "web")),
				term(req("team", corev1.NodeSelectorOpIn, "ml")),
			)),
			want: []string{"web", "kp"},
			excluded: map[string]string{
				"batch": "node affinity: no term matches: team In [web]; team In [ml]",
			},
		},
		"a term whose every expression is on open keys matches any node": {
			pools: pools(batch),
			t: pod(requiring(
				term(req("team", corev1.NodeSelectorOpIn, "web")),
				term(req(corev1.LabelTopologyZone, corev1.NodeSelectorOpIn, "us-west-2a")),
			)),
			want: []string{"batch"},
		},
		"an empty term matches no node, as in the scheduler": {
			pools:    pools(web),
			t:        pod(requiring(corev1.NodeSelectorTerm{})),
			excluded: map[string]string{"web": "node affinity: an empty term matches no node"},
		},
		"a selection nodeaffinity cannot parse never excludes": {
			pools: pools(web),
			t:     pod(requiringOne(req("team", "Near", "web"))),
			want:  []string{"web"},
		},

		// Open keys depend on the pool's kind.
		"well-known per-node labels are open on every node pool kind": {
			pools: pools(mngBare, selfBare, kpBare, staticTag),
			t: pod(requiringOne(
				req(corev1.LabelHostname, corev1.NodeSelectorOpIn, "ip-10-0-1-7.ec2.internal"),
				req(corev1.LabelTopologyZone, corev1.NodeSelectorOpIn, "us-west-2a"),
				req(corev1.LabelTopologyRegion, corev1.NodeSelectorOpIn, "us-west-2"),
				req(corev1.LabelInstanceTypeStable, corev1.NodeSelectorOpIn, "m7g.large"),
				req(LabelZoneID, corev1.NodeSelectorOpIn, "usw2-az1"),
				req(corev1.LabelArchStable, corev1.NodeSelectorOpIn, "arm64"),
			)),
			want: []string{"mng", "self", "karpenter", "static-team"},
		},
		"karpenter.sh/capacity-type is open only on Karpenter pools": {
			pools: pools(mngBare, selfBare, kpBare, staticTag, unknown),
			t:     pod(requiringOne(req(LabelKarpenterCapacityType, corev1.NodeSelectorOpIn, "spot"))),
			want:  []string{"karpenter", "unknown"},
			excluded: map[string]string{
				"mng":         "node affinity: karpenter.sh/capacity-type In [spot]",
				"self":        "node affinity: karpenter.sh/capacity-type In [spot]",
				"static-team": "node affinity: karpenter.sh/capacity-type In [spot]",
			},
		},
		"karpenter.k8s.aws labels are open only on Karpenter pools": {
			pools: pools(mngBare, selfBare, kpBare, staticTag),
			t:     pod(selecting("karpenter.k8s.aws/instance-family", "m7g")),
			want:  []string{"karpenter"},
			excluded: map[string]string{
				"mng":         "nodeSelector karpenter.k8s.aws/instance-family=m7g",
				"self":        "nodeSelector karpenter.k8s.aws/instance-family=m7g",
				"static-team": "nodeSelector karpenter.k8s.aws/instance-family=m7g",
			},
		},
		"EKS Auto Mode's instance labels are open only on Karpenter pools": {
			pools: pools(mngBare, selfBare, kpBare, staticTag),
			t:     pod(requiringOne(req("eks.amazonaws.com/instance-category", corev1.NodeSelectorOpIn, "c", "m"))),
			want:  []string{"karpenter"},
			excluded: map[string]string{
				"mng":         "node affinity: eks.amazonaws.com/instance-category In [c m]",
				"self":        "node affinity: eks.amazonaws.com/instance-category In [c m]",
				"static-team": "node affinity: eks.amazonaws.com/instance-category In [c m]",
			},
		},
		"eks.amazonaws.com/compute-type auto selects Auto Mode NodePools, never node groups": {
			pools: pools(mngBare, kpBare),
			t:     pod(selecting("eks.amazonaws.com/compute-type", "auto")),
			want:  []string{"karpenter"},
			excluded: map[string]string{
				"mng": "nodeSelector eks.amazonaws.com/compute-type=auto",
			},
		},
		"eks.amazonaws.com/capacityType is open only on managed node groups": {
			pools: pools(mngBare, selfBare, kpBare, staticTag, unknown),
			t:     pod(selecting(LabelCapacityType, "SPOT")),
			want:  []string{"mng", "unknown"},
			excluded: map[string]string{
				"self":        "nodeSelector eks.amazonaws.com/capacityType=SPOT",
				"karpenter":   "nodeSelector eks.amazonaws.com/capacityType=SPOT",
				"static-team": "nodeSelector eks.amazonaws.com/capacityType=SPOT",
			},
		},
		"the AMI label EKS sets is open only on managed node groups": {
			pools: pools(mngBare, selfBare, kpBare),
			t:     pod(requiringOne(req("eks.amazonaws.com/nodegroup-image", corev1.NodeSelectorOpExists))),
			want:  []string{"mng"},
			excluded: map[string]string{
				"self":      "node affinity: eks.amazonaws.com/nodegroup-image Exists",
				"karpenter": "node affinity: eks.amazonaws.com/nodegroup-image Exists",
			},
		},
		"a label a pool fixes wins over the key being open for its kind": {
			pools: pools(Pool{Name: "on-demand", Kind: KindManagedNodeGroup,
				Labels: map[string]string{LabelCapacityType: "ON_DEMAND"}}),
			t:        pod(selecting(LabelCapacityType, "SPOT")),
			excluded: map[string]string{"on-demand": "nodeSelector eks.amazonaws.com/capacityType=SPOT"},
		},

		"preferred node affinity never excludes": {
			pools: pools(web, batch),
			t: pod(&corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
					{Weight: 100, Preference: term(req("team", corev1.NodeSelectorOpIn, "nobody"))},
				},
			}}}),
			want: []string{"web", "batch"},
		},

		// nodeSelector.
		"nodeSelector keeps the pools carrying every entry": {
			pools: pools(web, batch, kp),
			t:     pod(selecting("team", "batch", "cores", "64")),
			want:  []string{"batch"},
			excluded: map[string]string{
				"web": "nodeSelector cores=64",
				"kp":  "nodeSelector cores=64",
			},
		},
		"nodeSelector on a value a requirement allows": {
			pools:    pools(web, kp),
			t:        pod(selecting("team", "ml")),
			want:     []string{"kp"},
			excluded: map[string]string{"web": "nodeSelector team=ml"},
		},
		"nodeSelector on the labels EKS and Karpenter put on their nodes": {
			pools: pools(web, kp),
			t:     pod(selecting(LabelNodegroup, "web")),
			want:  []string{"web"},
			excluded: map[string]string{
				"kp": "nodeSelector eks.amazonaws.com/nodegroup=web",
			},
		},
		"nodeSelector on karpenter.sh/nodepool": {
			pools:    pools(web, kp),
			t:        pod(selecting(LabelKarpenterNodePool, "kp")),
			want:     []string{"kp"},
			excluded: map[string]string{"web": "nodeSelector karpenter.sh/nodepool=kp"},
		},
		"nodeSelector and required affinity must both hold": {
			pools: pools(web, batch),
			t: func() Template {
				s := requiringOne(req("cores", corev1.NodeSelectorOpGt, "16"))
				s.NodeSelector = map[string]string{"team": "web"}
				return pod(s)
			}(),
			excluded: map[string]string{
				"web":   "node affinity: cores Gt [16]",
				"batch": "nodeSelector team=web",
			},
		},

		// Taints and tolerations.
		"NoSchedule and NoExecute taints keep pods off, PreferNoSchedule does not": {
			pools: pools(gpu, draining, spotty),
			t:     pod(nil),
			want:  []string{"spotty"},
			excluded: map[string]string{
				"gpu":      "taint nvidia.com/gpu=true:NoSchedule is not tolerated",
				"draining": "taint maintenance:NoExecute is not tolerated",
			},
		},
		"an Equal toleration tolerates the taint with its value": {
			pools: pools(gpu, draining),
			t: pod(tolerating(corev1.Toleration{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpEqual,
				Value: "true", Effect: corev1.TaintEffectNoSchedule})),
			want:     []string{"gpu"},
			excluded: map[string]string{"draining": "taint maintenance:NoExecute is not tolerated"},
		},
		"an Equal toleration with another value does not": {
			pools: pools(gpu),
			t: pod(tolerating(corev1.Toleration{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpEqual,
				Value: "false", Effect: corev1.TaintEffectNoSchedule})),
			excluded: map[string]string{"gpu": "taint nvidia.com/gpu=true:NoSchedule is not tolerated"},
		},
		"an empty operator means Equal": {
			pools: pools(gpu),
			t: pod(tolerating(corev1.Toleration{Key: "nvidia.com/gpu", Value: "true",
				Effect: corev1.TaintEffectNoSchedule})),
			want: []string{"gpu"},
		},
		"an Exists toleration tolerates any value of its key": {
			pools: pools(gpu, draining),
			t: pod(tolerating(corev1.Toleration{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists,
				Effect: corev1.TaintEffectNoSchedule})),
			want:     []string{"gpu"},
			excluded: map[string]string{"draining": "taint maintenance:NoExecute is not tolerated"},
		},
		"an empty key with Exists tolerates every taint": {
			pools: pools(gpu, draining, infra),
			t:     pod(tolerating(corev1.Toleration{Operator: corev1.TolerationOpExists})),
			want:  []string{"gpu", "draining", "infra"},
		},
		"a toleration without effect tolerates every effect of its key": {
			pools: pools(gpu, draining),
			t:     pod(tolerating(corev1.Toleration{Key: "maintenance", Operator: corev1.TolerationOpExists})),
			want:  []string{"draining"},
			excluded: map[string]string{
				"gpu": "taint nvidia.com/gpu=true:NoSchedule is not tolerated",
			},
		},
		"a toleration for another effect does not tolerate the taint": {
			pools: pools(draining),
			t: pod(tolerating(corev1.Toleration{Key: "maintenance", Operator: corev1.TolerationOpExists,
				Effect: corev1.TaintEffectNoSchedule})),
			excluded: map[string]string{"draining": "taint maintenance:NoExecute is not tolerated"},
		},

		// spec.os.name.
		"spec.os.name windows keeps Windows pools and pools of unknown OS": {
			pools: pools(web, win, linuxByLabel, unknown),
			t:     pod(onOS(corev1.Windows)),
			want:  []string{"win", "unknown"},
			excluded: map[string]string{
				"web":            "spec.os.name windows",
				"linux-by-label": "spec.os.name windows",
			},
		},
		"spec.os.name linux keeps Linux pools": {
			pools:     pools(web, win, linuxByLabel, mixedOS),
			t:         pod(onOS(corev1.Linux)),
			want:      []string{"web", "linux-by-label", "mixed-os"},
			platforms: map[string]string{"mixed-os": "linux/amd64"},
			excluded:  map[string]string{"win": "spec.os.name linux"},
		},
		"spec.os.name narrows a pool of two operating systems": {
			pools:     pools(mixedOS),
			t:         pod(onOS(corev1.Windows)),
			want:      []string{"mixed-os"},
			platforms: map[string]string{"mixed-os": "windows/amd64 (10.0.20348.2340)"},
		},

		// Fargate.
		"a Fargate profile selecting the namespace wins over node pools": {
			pools: pools(web, fgApps, kp),
			t:     inNamespace("apps", selecting("team", "web")),
			want:  []string{"apps"},
			excluded: map[string]string{
				"web": "Fargate profile apps selects the pod",
				"kp":  "Fargate profile apps selects the pod",
			},
		},
		"a Fargate selector's labels must be a subset of the pod's": {
			pools: pools(web, fgJobs),
			t:     inNamespace("jobs", nil, "compute", "fargate", "tier", "batch", "app", "etl"),
			want:  []string{"jobs"},
			excluded: map[string]string{
				"web": "Fargate profile jobs selects the pod",
			},
		},
		"a Fargate selector label with another value does not select the pod": {
			pools: pools(web, fgJobs),
			t:     inNamespace("jobs", nil, "compute", "fargate", "tier", "web"),
			want:  []string{"web"},
			excluded: map[string]string{
				"jobs": "no selector matches namespace jobs and the pod's labels",
			},
		},
		"a Fargate selector label the pod lacks does not select it": {
			pools: pools(web, fgJobs),
			t:     inNamespace("jobs", nil, "compute", "fargate"),
			want:  []string{"web"},
			excluded: map[string]string{
				"jobs": "no selector matches namespace jobs and the pod's labels",
			},
		},
		"a Fargate profile never matches through node labels": {
			pools: pools(fgApps),
			t:     pod(nil),
			excluded: map[string]string{
				"apps": "no selector matches namespace default and the pod's labels",
			},
		},
		"two matching Fargate profiles are both candidates": {
			pools: pools(fgApps, web, fgAppsB),
			t:     inNamespace("apps", nil),
			want:  []string{"apps", "apps-b"},
			excluded: map[string]string{
				"web": "Fargate profiles apps, apps-b select the pod",
			},
		},
		"the fargate-profile label picks one of two matching profiles": {
			pools: pools(fgApps, web, fgAppsB),
			t:     inNamespace("apps", nil, LabelFargateProfile, "apps-b"),
			want:  []string{"apps-b"},
			excluded: map[string]string{
				"apps": "pod label eks.amazonaws.com/fargate-profile=apps-b picks another profile",
				"web":  "Fargate profile apps-b selects the pod",
			},
		},
		"a fargate-profile label naming no matching profile leaves every matching one": {
			pools: pools(fgApps, fgAppsB),
			t:     inNamespace("apps", nil, LabelFargateProfile, "gone"),
			want:  []string{"apps", "apps-b"},
		},
		"Fargate selectors match with * and ? wildcards": {
			pools: pools(fgProd, web),
			t:     inNamespace("prod-eu", nil, "app", "api"),
			want:  []string{"prod"},
			excluded: map[string]string{
				"web": "Fargate profile prod selects the pod",
			},
		},
		"a ? wildcard stands for exactly one character": {
			pools: pools(fgProd, web),
			t:     inNamespace("prod-eu", nil, "app", "gateway-api"),
			want:  []string{"web"},
			excluded: map[string]string{
				"prod": "no selector matches namespace prod-eu and the pod's labels",
			},
		},

		// Pools with Fargate selectors, whatever their kind.
		"a static pool with Fargate selectors never matches through node labels": {
			pools: pools(docsGPU, docsBatch),
			t:     inNamespace("default", tolerating(toleratingGPU), "team", "ml"),
			want:  []string{"gpu"},
			excluded: map[string]string{
				"batch": "no selector matches namespace default and the pod's labels",
			},
		},
		"a static pool with Fargate selectors wins as a Fargate profile does": {
			pools: pools(docsGPU, docsBatch),
			t:     inNamespace("batch", tolerating(toleratingGPU), "team", "ml"),
			want:  []string{"batch"},
			excluded: map[string]string{
				"gpu": "Fargate profile batch selects the pod",
			},
		},
		"a static Fargate-like pool and a Fargate profile selecting the pod are both candidates": {
			pools: pools(docsBatch, fgApps, Pool{Name: "batch-profile", Kind: KindFargate,
				Fargate: []FargateSelector{{Namespace: "batch"}}}),
			t:    inNamespace("batch", nil, "team", "ml"),
			want: []string{"batch", "batch-profile"},
			excluded: map[string]string{
				"apps": "Fargate profiles batch, batch-profile select the pod",
			},
		},
		"a Fargate profile whose selectors are unknown matches nothing": {
			pools: pools(Pool{Name: "seen-as-nodes", Kind: KindFargate, Nodes: 2}, web),
			t:     inNamespace("apps", nil),
			want:  []string{"web"},
			excluded: map[string]string{
				"seen-as-nodes": "its Fargate selectors are unknown",
			},
		},

		// Platforms.
		"a multi-arch Karpenter pool is narrowed to the architecture the pod requires": {
			pools:     pools(web, kp),
			t:         pod(requiringOne(req(corev1.LabelArchStable, corev1.NodeSelectorOpIn, "arm64"))),
			want:      []string{"kp"},
			platforms: map[string]string{"kp": "linux/arm64"},
			excluded: map[string]string{
				"web": "node affinity: kubernetes.io/arch In [arm64]",
			},
		},
		"the beta arch label narrows as the stable one does": {
			pools:     pools(web, kp),
			t:         pod(selecting(labelBetaArch, "amd64")),
			want:      []string{"web", "kp"},
			platforms: map[string]string{"kp": "linux/amd64", "web": "linux/amd64"},
		},
		"narrowing keeps the platforms on which any term holds": {
			pools: pools(kp),
			t: pod(requiring(
				term(req(corev1.LabelArchStable, corev1.NodeSelectorOpIn, "arm64"), req("team", corev1.NodeSelectorOpIn, "ml")),
				term(req(corev1.LabelArchStable, corev1.NodeSelectorOpIn, "amd64"), req("team", corev1.NodeSelectorOpIn, "web")),
			)),
			want:      []string{"kp"},
			platforms: map[string]string{"kp": "linux/arm64"},
		},
		"a pool without platforms is judged on its arch label": {
			pools: pools(
				Pool{Name: "graviton", Kind: KindSelfManaged, Labels: map[string]string{corev1.LabelArchStable: "arm64"}},
				Pool{Name: "x86", Kind: KindSelfManaged, Labels: map[string]string{corev1.LabelArchStable: "amd64"}},
				Pool{Name: "any", Kind: KindSelfManaged},
			),
			t:    pod(selecting(corev1.LabelArchStable, "arm64")),
			want: []string{"graviton", "any"},
			excluded: map[string]string{
				"x86": "nodeSelector kubernetes.io/arch=arm64",
			},
		},

		// Static pools.
		"a static pool with no labels accepts every selector but its taints apply": {
			pools: pools(unknown, infra, web),
			t: func() Template {
				s := requiringOne(req("cores", corev1.NodeSelectorOpGt, "100"), req("gpu", corev1.NodeSelectorOpExists))
				s.NodeSelector = map[string]string{"team": "ml"}
				return pod(s)
			}(),
			want: []string{"unknown"},
			excluded: map[string]string{
				"infra": "taint dedicated=infra:NoSchedule is not tolerated",
				"web":   "nodeSelector team=ml",
			},
		},
		"a static pool's configured platforms still apply": {
			pools:    pools(Pool{Name: "arm-static", Kind: KindStatic, Platforms: []Platform{linuxARM64}}),
			t:        pod(selecting(corev1.LabelArchStable, "amd64")),
			excluded: map[string]string{"arm-static": "nodeSelector kubernetes.io/arch=amd64"},
		},

		// The expansion cap.
		"a key whose values would pass the cap is treated as open": {
			pools: pools(capped),
			t: pod(requiringOne(
				req("a", corev1.NodeSelectorOpIn, "v9"),
				req("b", corev1.NodeSelectorOpNotIn, "v0"),
				req("c", corev1.NodeSelectorOpIn, "not-allowed"),
			)),
			want: []string{"capped"},
		},
		"keys within the cap are still judged": {
			pools:    pools(capped),
			t:        pod(requiringOne(req("b", corev1.NodeSelectorOpIn, "v10"))),
			excluded: map[string]string{"capped": "node affinity: b In [v10]"},
		},
		"a requirement listing more values than the cap is open": {
			pools: pools(Pool{Name: "wide", Kind: KindKarpenter, Requirements: []corev1.NodeSelectorRequirement{
				req("x", corev1.NodeSelectorOpIn, manyValues(300)...),
			}}),
			t:    pod(selecting("x", "v1000")),
			want: []string{"wide"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			before := mustJSON(t, tc.pools, tc.t)
			got, excluded := Candidates(tc.pools, tc.t)
			if after := mustJSON(t, tc.pools, tc.t); after != before {
				t.Errorf("Candidates modified its input:\nbefore %s\nafter  %s", before, after)
			}

			var names []string
			for _, c := range got {
				names = append(names, c.Name)
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("candidates = %q, want %q", names, tc.want)
			}
			for _, c := range got {
				if want, ok := tc.platforms[c.Name]; ok && c.PlatformList() != want {
					t.Errorf("%s platforms = %s, want %s", c, c.PlatformList(), want)
				}
			}
			reasons := map[string]string{}
			for _, e := range excluded {
				reasons[e.Pool.Name] = e.Reason
			}
			if !maps.Equal(reasons, tc.excluded) {
				t.Errorf("exclusions = %q, want %q", reasons, tc.excluded)
			}
			if len(got)+len(excluded) != len(tc.pools) {
				t.Errorf("%d candidates and %d exclusions for %d pools", len(got), len(excluded), len(tc.pools))
			}
		})
	}
}

func mustJSON(t *testing.T, vs ...any) string {
	t.Helper()
	b, err := json.Marshal(vs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCandidatesNarrowsACopy(t *testing.T) {
	in := []Pool{kp}
	in[0].Platforms = slices.Clone(kp.Platforms)
	got, _ := Candidates(in, pod(selecting(corev1.LabelArchStable, "arm64")))
	if len(got) != 1 {
		t.Fatalf("got %d candidates, want 1", len(got))
	}
	got[0].Platforms[0] = windowsAMD64
	if in[0].PlatformList() != "linux/amd64, linux/arm64" {
		t.Errorf("writing a candidate's narrowed platforms changed the input pool: %s", in[0].PlatformList())
	}
}

func TestOpenLabel(t *testing.T) {
	tests := map[string]struct {
		kind Kind
		key  string
		want bool
	}{
		"the hostname varies on a self-managed pool":          {KindSelfManaged, corev1.LabelHostname, true},
		"the zone varies on a static pool":                    {KindStatic, corev1.LabelTopologyZone, true},
		"the beta zone varies on a managed node group":        {KindManagedNodeGroup, corev1.LabelFailureDomainBetaZone, true},
		"the region varies on a Karpenter pool":               {KindKarpenter, corev1.LabelTopologyRegion, true},
		"the instance type varies on a managed node group":    {KindManagedNodeGroup, corev1.LabelInstanceTypeStable, true},
		"the beta instance type varies on a self-managed one": {KindSelfManaged, corev1.LabelInstanceType, true},
		"the zone ID varies on a self-managed pool":           {KindSelfManaged, LabelZoneID, true},
		"arch is open when no platform decides it":            {KindStatic, corev1.LabelArchStable, true},
		"the beta os is open when no platform decides it":     {KindSelfManaged, labelBetaOS, true},

		"a managed node group's capacity type varies":              {KindManagedNodeGroup, LabelCapacityType, true},
		"a managed node group's AMI varies while it updates":       {KindManagedNodeGroup, labelNodegroupImage, true},
		"a managed node group's launch template version varies":    {KindManagedNodeGroup, labelSourceLaunchTemplateVersion, true},
		"self-managed nodes carry no EKS capacity type":            {KindSelfManaged, LabelCapacityType, false},
		"Karpenter nodes carry no EKS capacity type":               {KindKarpenter, LabelCapacityType, false},
		"a static pool's nodes carry no EKS capacity type":         {KindStatic, LabelCapacityType, false},
		"a managed node group's nodes carry no compute type":       {KindManagedNodeGroup, labelComputeType, false},
		"a managed node group's nodes carry no Auto Mode labels":   {KindManagedNodeGroup, "eks.amazonaws.com/instance-family", false},
		"a Karpenter node's capacity type varies":                  {KindKarpenter, LabelKarpenterCapacityType, true},
		"a Karpenter node's instance family varies":                {KindKarpenter, "karpenter.k8s.aws/instance-family", true},
		"an Auto Mode node's instance category varies":             {KindKarpenter, "eks.amazonaws.com/instance-category", true},
		"an Auto Mode node carries a compute type":                 {KindKarpenter, labelComputeType, true},
		"self-managed nodes carry no Karpenter capacity type":      {KindSelfManaged, LabelKarpenterCapacityType, false},
		"a managed node group's nodes carry no Karpenter label":    {KindManagedNodeGroup, LabelKarpenterCapacityType, false},
		"a static pool's nodes carry no Karpenter instance labels": {KindStatic, "karpenter.k8s.aws/instance-cpu", false},
		"Fargate nodes carry no Karpenter label":                   {KindFargate, LabelKarpenterCapacityType, false},
		"Karpenter nodes carry no node group launch template":      {KindKarpenter, labelSourceLaunchTemplateID, false},
		"a label of the cluster's own is open on no kind":          {KindKarpenter, "team", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := OpenLabel(tc.kind, tc.key); got != tc.want {
				t.Errorf("OpenLabel(%s, %s) = %v, want %v", tc.kind, tc.key, got, tc.want)
			}
		})
	}
}

func TestWildcardMatch(t *testing.T) {
	tests := map[string]struct {
		pattern, s string
		want       bool
	}{
		"a plain pattern matches itself":             {"apps", "apps", true},
		"a plain pattern does not match a prefix":    {"apps", "app", false},
		"* matches nothing":                          {"prod*", "prod", true},
		"* matches a run":                            {"prod*", "prod-metrics", true},
		"* in the middle":                            {"team-*-prod", "team-a-b-prod", true},
		"* needs the rest to match":                  {"team-*-prod", "team-a-dev", false},
		"? matches one character":                    {"value?", "valuea", true},
		"? does not match none":                      {"value?", "value", false},
		"? does not match two":                       {"value?", "value-a", false},
		"* crosses a slash in a label key":           {"example.com/*", "example.com/team", true},
		"backtracking finds the later match":         {"*ab", "aab", true},
		"an empty pattern matches only empty":        {"", "x", false},
		"a lone * matches everything, empty as well": {"*", "", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := wildcardMatch(tc.pattern, tc.s); got != tc.want {
				t.Errorf("wildcardMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
			}
		})
	}
}

// benchPools are ten pools of every kind, as a mid-sized cluster has.
var benchPools = []Pool{
	fgApps, fgJobs, web, batch, kp, zonal, gpu, win, spotty,
	{Name: "static", Kind: KindStatic, RoleARN: "arn:aws:iam::111122223333:role/Node"},
}

func BenchmarkCandidates(b *testing.B) {
	cases := map[string]Template{
		"no selectors": pod(tolerating(corev1.Toleration{Key: "spot", Operator: corev1.TolerationOpExists})),
		"arm64 affinity": pod(requiringOne(
			req(corev1.LabelArchStable, corev1.NodeSelectorOpIn, "arm64"),
			req(corev1.LabelTopologyZone, corev1.NodeSelectorOpIn, "us-west-2a"),
		)),
		"Fargate": inNamespace("apps", nil),
	}
	for name, tpl := range cases {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Candidates(benchPools, tpl)
			}
		})
	}
}
