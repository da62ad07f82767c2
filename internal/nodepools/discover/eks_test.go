package discover

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	corev1 "k8s.io/api/core/v1"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

const testCluster = "prod"

func TestEveryAMITypeOfTheSDKHasAPlatform(t *testing.T) {
	for _, ami := range ekstypes.AMITypes("").Values() {
		_, ok := amiTypePlatform(ami)
		if ok == (ami == ekstypes.AMITypesCustom) {
			t.Errorf("amiTypePlatform(%s) ok = %v: every AMI type but CUSTOM needs a platform", ami, ok)
		}
	}
}

func TestAMITypePlatform(t *testing.T) {
	arm64 := nodepools.Platform{OS: "linux", Architecture: "arm64"}
	amd64 := nodepools.Platform{OS: "linux", Architecture: "amd64"}
	for name, tc := range map[string]struct {
		ami    ekstypes.AMITypes
		want   nodepools.Platform
		wantOK bool
	}{
		"Amazon Linux 2 on x86":                 {ami: "AL2_x86_64", want: amd64, wantOK: true},
		"Amazon Linux 2 with GPU is still x86":  {ami: "AL2_x86_64_GPU", want: amd64, wantOK: true},
		"Amazon Linux 2 on Graviton":            {ami: "AL2_ARM_64", want: arm64, wantOK: true},
		"AL2023 standard on x86":                {ami: "AL2023_x86_64_STANDARD", want: amd64, wantOK: true},
		"AL2023 Neuron is x86":                  {ami: "AL2023_x86_64_NEURON", want: amd64, wantOK: true},
		"AL2023 NVIDIA on x86":                  {ami: "AL2023_x86_64_NVIDIA", want: amd64, wantOK: true},
		"AL2023 standard on Graviton":           {ami: "AL2023_ARM_64_STANDARD", want: arm64, wantOK: true},
		"AL2023 NVIDIA on Graviton":             {ami: "AL2023_ARM_64_NVIDIA", want: arm64, wantOK: true},
		"Bottlerocket on Graviton":              {ami: "BOTTLEROCKET_ARM_64", want: arm64, wantOK: true},
		"Bottlerocket FIPS on x86":              {ami: "BOTTLEROCKET_x86_64_FIPS", want: amd64, wantOK: true},
		"Bottlerocket NVIDIA FIPS on Graviton":  {ami: "BOTTLEROCKET_ARM_64_NVIDIA_FIPS", want: arm64, wantOK: true},
		"Windows Server 2019 Core":              {ami: "WINDOWS_CORE_2019_x86_64", want: windowsAMD64("10.0.17763"), wantOK: true},
		"Windows Server 2019 Full":              {ami: "WINDOWS_FULL_2019_x86_64", want: windowsAMD64("10.0.17763"), wantOK: true},
		"Windows Server 2022 Core":              {ami: "WINDOWS_CORE_2022_x86_64", want: windowsAMD64("10.0.20348"), wantOK: true},
		"Windows Server 2022 Full":              {ami: "WINDOWS_FULL_2022_x86_64", want: windowsAMD64("10.0.20348"), wantOK: true},
		"Windows Server 2025 Core":              {ami: "WINDOWS_CORE_2025_x86_64", want: windowsAMD64("10.0.26100"), wantOK: true},
		"Windows Server 2025 Full":              {ami: "WINDOWS_FULL_2025_x86_64", want: windowsAMD64("10.0.26100"), wantOK: true},
		"a custom AMI's platform is unknown":    {ami: "CUSTOM"},
		"an AMI type EKS adds later is unknown": {ami: "AL2029_RISCV_64_STANDARD"},
	} {
		t.Run(name, func(t *testing.T) {
			got, ok := amiTypePlatform(tc.ami)
			if ok != tc.wantOK || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("amiTypePlatform(%s) = %+v, %v; want %+v, %v", tc.ami, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestNodeGroupsMapping(t *testing.T) {
	for name, tc := range map[string]struct {
		group ekstypes.Nodegroup
		want  nodepools.Pool
	}{
		"a Graviton spot group with labels and every taint effect": {
			group: ekstypes.Nodegroup{
				NodeRole: aws.String("arn:aws:iam::123456789012:role/NodeRoleArm"), AmiType: "AL2023_ARM_64_STANDARD",
				CapacityType: "SPOT", Labels: map[string]string{"team": "ml"},
				Taints: []ekstypes.Taint{
					{Key: aws.String("dedicated"), Value: aws.String("ml"), Effect: "NO_SCHEDULE"},
					{Key: aws.String("spot"), Effect: "NO_EXECUTE"},
					{Key: aws.String("soft"), Value: aws.String("yes"), Effect: "PREFER_NO_SCHEDULE"},
				},
			},
			want: nodepools.Pool{
				Name: "group", Kind: nodepools.KindManagedNodeGroup, RoleARN: "arn:aws:iam::123456789012:role/NodeRoleArm",
				Platforms: []nodepools.Platform{{OS: "linux", Architecture: "arm64"}},
				Labels: map[string]string{"team": "ml", "eks.amazonaws.com/nodegroup": "group", "eks.amazonaws.com/capacityType": "SPOT",
					"kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64"},
				Taints: []corev1.Taint{
					{Key: "dedicated", Value: "ml", Effect: corev1.TaintEffectNoSchedule},
					{Key: "spot", Effect: corev1.TaintEffectNoExecute},
					{Key: "soft", Value: "yes", Effect: corev1.TaintEffectPreferNoSchedule},
				},
			},
		},
		"a Windows group carries the build label the kubelet sets": {
			group: ekstypes.Nodegroup{NodeRole: aws.String("arn:aws:iam::123456789012:role/Win"), AmiType: "WINDOWS_CORE_2022_x86_64", CapacityType: "ON_DEMAND"},
			want: nodepools.Pool{
				Name: "group", Kind: nodepools.KindManagedNodeGroup, RoleARN: "arn:aws:iam::123456789012:role/Win",
				Platforms: []nodepools.Platform{{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348"}},
				Labels: map[string]string{"eks.amazonaws.com/nodegroup": "group", "eks.amazonaws.com/capacityType": "ON_DEMAND",
					"kubernetes.io/os": "windows", "kubernetes.io/arch": "amd64", "node.kubernetes.io/windows-build": "10.0.20348"},
			},
		},
		"a custom AMI has no platform and no platform labels": {
			group: ekstypes.Nodegroup{NodeRole: aws.String("arn:aws:iam::123456789012:role/Custom"), AmiType: "CUSTOM", CapacityType: "CAPACITY_BLOCK"},
			want: nodepools.Pool{
				Name: "group", Kind: nodepools.KindManagedNodeGroup, RoleARN: "arn:aws:iam::123456789012:role/Custom",
				Labels: map[string]string{"eks.amazonaws.com/nodegroup": "group", "eks.amazonaws.com/capacityType": "CAPACITY_BLOCK"},
			},
		},
		"EKS's labels win over a group label of the same key": {
			group: ekstypes.Nodegroup{NodeRole: aws.String("arn:aws:iam::123456789012:role/X"), AmiType: "AL2_x86_64",
				Labels: map[string]string{"kubernetes.io/arch": "arm64", "eks.amazonaws.com/nodegroup": "other"}},
			want: nodepools.Pool{
				Name: "group", Kind: nodepools.KindManagedNodeGroup, RoleARN: "arn:aws:iam::123456789012:role/X",
				Platforms: []nodepools.Platform{{OS: "linux", Architecture: "amd64"}},
				Labels:    map[string]string{"eks.amazonaws.com/nodegroup": "group", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
			},
		},
		"a group scaled to zero is still a pool": {
			group: ekstypes.Nodegroup{NodeRole: aws.String("arn:aws:iam::123456789012:role/Zero"), AmiType: "BOTTLEROCKET_x86_64",
				ScalingConfig: &ekstypes.NodegroupScalingConfig{MinSize: aws.Int32(0), DesiredSize: aws.Int32(0), MaxSize: aws.Int32(5)}},
			want: nodepools.Pool{
				Name: "group", Kind: nodepools.KindManagedNodeGroup, RoleARN: "arn:aws:iam::123456789012:role/Zero",
				Platforms: []nodepools.Platform{{OS: "linux", Architecture: "amd64"}},
				Labels:    map[string]string{"eks.amazonaws.com/nodegroup": "group", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
			},
		},
		"a taint effect EKS adds later is kept as EKS spells it": {
			group: ekstypes.Nodegroup{NodeRole: aws.String("arn:aws:iam::123456789012:role/X"), AmiType: "CUSTOM",
				Taints: []ekstypes.Taint{{Key: aws.String("k"), Effect: "NO_SOMETHING_NEW"}}},
			want: nodepools.Pool{
				Name: "group", Kind: nodepools.KindManagedNodeGroup, RoleARN: "arn:aws:iam::123456789012:role/X",
				Labels: map[string]string{"eks.amazonaws.com/nodegroup": "group"},
				Taints: []corev1.Taint{{Key: "k", Effect: "NO_SOMETHING_NEW"}},
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			api := &fakeEKS{Cluster: testCluster, NodeGroups: map[string]ekstypes.Nodegroup{"group": tc.group}}
			got, err := NewCluster(api, testCluster).NodeGroups(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Errorf("NodeGroups() =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func poolNames(pools []nodepools.Pool) string {
	names := make([]string, len(pools))
	for i, p := range pools {
		names[i] = p.Name
	}
	return strings.Join(names, ",")
}

func threeGroups() map[string]ekstypes.Nodegroup {
	return map[string]ekstypes.Nodegroup{
		"a": {NodeRole: aws.String("arn:aws:iam::123456789012:role/A"), AmiType: "AL2_x86_64", Status: "ACTIVE"},
		"b": {NodeRole: aws.String("arn:aws:iam::123456789012:role/B"), AmiType: "AL2_ARM_64", Status: "DEGRADED"},
		"c": {NodeRole: aws.String("arn:aws:iam::123456789012:role/C"), AmiType: "AL2_x86_64", Status: "CREATING"},
	}
}

func TestNodeGroupsFollowsEveryPage(t *testing.T) {
	api := &fakeEKS{Cluster: testCluster, NodeGroups: threeGroups(), PageSize: 1}
	got, err := NewCluster(api, testCluster).NodeGroups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if names := poolNames(got); names != "a,b,c" {
		t.Errorf("pools = %s, want a,b,c in list order", names)
	}
	if n := api.Calls("ListNodegroups"); n != 3 {
		t.Errorf("ListNodegroups calls = %d, want 3 (one per page)", n)
	}
	if n := api.Calls("DescribeNodegroup"); n != 3 {
		t.Errorf("DescribeNodegroup calls = %d, want 3", n)
	}
}

func TestNodeGroupsLeavesOutGroupsThatRunNoPod(t *testing.T) {
	groups := threeGroups()
	groups["deleting"] = ekstypes.Nodegroup{NodeRole: aws.String("arn:aws:iam::123456789012:role/D"), Status: "DELETING"}
	groups["failed"] = ekstypes.Nodegroup{NodeRole: aws.String("arn:aws:iam::123456789012:role/F"), Status: "CREATE_FAILED"}
	got, err := NewCluster(&fakeEKS{Cluster: testCluster, NodeGroups: groups}, testCluster).NodeGroups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if names := poolNames(got); names != "a,b,c" {
		t.Errorf("pools = %s, want a,b,c: a group being deleted or never created is no pool", names)
	}
}

func TestNodeGroupsKeepsWhatItCouldRead(t *testing.T) {
	api := &fakeEKS{Cluster: testCluster, NodeGroups: threeGroups()}
	vanished := &ekstypes.ResourceNotFoundException{Message: aws.String("gone meanwhile")}
	throttled := errors.New("ThrottlingException: rate exceeded")
	api.SetErr("DescribeNodegroup/b", vanished)
	api.SetErr("DescribeNodegroup/c", throttled)

	got, err := NewCluster(api, testCluster).NodeGroups(context.Background())
	if names := poolNames(got); names != "a" {
		t.Errorf("pools = %s, want a: the groups that could be read", names)
	}
	if err == nil {
		t.Fatal("want an error naming the groups that could not be read")
	}
	for _, want := range []string{"describing node group b in cluster prod", "describing node group c in cluster prod"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	var notFound *ekstypes.ResourceNotFoundException
	if !errors.As(err, &notFound) || !errors.Is(err, throttled) {
		t.Errorf("error %v does not wrap the causes", err)
	}
}

func TestNodeGroupsListFailureGivesNoPool(t *testing.T) {
	api := &fakeEKS{Cluster: testCluster, NodeGroups: threeGroups(), PageSize: 1}
	cause := errors.New("AccessDeniedException")
	api.SetErr("ListNodegroups", cause)
	got, err := NewCluster(api, testCluster).NodeGroups(context.Background())
	if got != nil || !errors.Is(err, cause) || !strings.Contains(err.Error(), "listing node groups in cluster prod") {
		t.Errorf("NodeGroups() = %v, %v; want no pool and the wrapped list error", got, err)
	}
	if n := api.Calls("DescribeNodegroup"); n != 0 {
		t.Errorf("DescribeNodegroup calls = %d, want none after the list failed", n)
	}
}

func TestNodeGroupsOfAClusterWithoutGroups(t *testing.T) {
	got, err := NewCluster(&fakeEKS{Cluster: testCluster}, testCluster).NodeGroups(context.Background())
	if err != nil || len(got) != 0 {
		t.Errorf("NodeGroups() = %v, %v; want none and no error", got, err)
	}
}

func TestFargateProfiles(t *testing.T) {
	api := &fakeEKS{Cluster: testCluster, PageSize: 1, FargateProfiles: map[string]ekstypes.FargateProfile{
		"batch": {
			PodExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/FargatePods"), Status: "ACTIVE",
			Selectors: []ekstypes.FargateProfileSelector{
				{Namespace: aws.String("batch"), Labels: map[string]string{"fargate": "yes"}},
				{Namespace: aws.String("jobs-*")},
			},
		},
		"going":  {PodExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/Old"), Status: "DELETING"},
		"system": {PodExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/System"), Status: "CREATING", Selectors: []ekstypes.FargateProfileSelector{{Namespace: aws.String("kube-system")}}},
	}}
	got, err := NewCluster(api, testCluster).FargateProfiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	amd64 := []nodepools.Platform{{OS: "linux", Architecture: "amd64"}}
	want := []nodepools.Pool{
		{Name: "batch", Kind: nodepools.KindFargate, RoleARN: "arn:aws:iam::123456789012:role/FargatePods", Platforms: amd64,
			Fargate: []nodepools.FargateSelector{{Namespace: "batch", Labels: map[string]string{"fargate": "yes"}}, {Namespace: "jobs-*"}}},
		{Name: "system", Kind: nodepools.KindFargate, RoleARN: "arn:aws:iam::123456789012:role/System", Platforms: amd64,
			Fargate: []nodepools.FargateSelector{{Namespace: "kube-system"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FargateProfiles() =\n%+v\nwant\n%+v", got, want)
	}
	if n := api.Calls("ListFargateProfiles"); n != 3 {
		t.Errorf("ListFargateProfiles calls = %d, want 3 (one per page)", n)
	}
}

func TestFargateProfilesKeepsWhatItCouldRead(t *testing.T) {
	api := &fakeEKS{Cluster: testCluster, FargateProfiles: map[string]ekstypes.FargateProfile{
		"a": {PodExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/A")},
		"b": {PodExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/B")},
	}}
	cause := errors.New("AccessDeniedException")
	api.SetErr("DescribeFargateProfile/a", cause)
	got, err := NewCluster(api, testCluster).FargateProfiles(context.Background())
	if poolNames(got) != "b" || !errors.Is(err, cause) || !strings.Contains(err.Error(), "describing Fargate profile a in cluster prod") {
		t.Errorf("FargateProfiles() = %s, %v; want b and an error naming a", poolNames(got), err)
	}

	api.SetErr("ListFargateProfiles", cause)
	got, err = NewCluster(api, testCluster).FargateProfiles(context.Background())
	if got != nil || !errors.Is(err, cause) || !strings.Contains(err.Error(), "listing Fargate profiles in cluster prod") {
		t.Errorf("FargateProfiles() = %v, %v; want no pool and the wrapped list error", got, err)
	}
}
