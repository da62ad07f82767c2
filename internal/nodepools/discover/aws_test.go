package discover

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

func TestParseProviderID(t *testing.T) {
	type want struct {
		region, zone, instance string
		ok                     bool
	}
	for name, tc := range map[string]struct {
		id   string
		want want
	}{
		"an EC2 instance in an Availability Zone": {
			id: "aws:///us-west-2a/i-0123456789abcdef0", want: want{"us-west-2", "us-west-2a", "i-0123456789abcdef0", true}},
		"an instance with an old 8-digit ID": {
			id: "aws:///eu-central-1c/i-0a1b2c3d", want: want{"eu-central-1", "eu-central-1c", "i-0a1b2c3d", true}},
		"a GovCloud zone, whose region has three words": {
			id: "aws:///us-gov-west-1b/i-0123456789abcdef0", want: want{"us-gov-west-1", "us-gov-west-1b", "i-0123456789abcdef0", true}},
		"a China zone": {
			id: "aws:///cn-north-1a/i-0123456789abcdef0", want: want{"cn-north-1", "cn-north-1a", "i-0123456789abcdef0", true}},
		"a Local Zone belongs to its parent region": {
			id: "aws:///us-west-2-lax-1a/i-0123456789abcdef0", want: want{"us-west-2", "us-west-2-lax-1a", "i-0123456789abcdef0", true}},
		"a Wavelength Zone belongs to its parent region": {
			id: "aws:///us-east-1-wl1-bos-wlz-1/i-0123456789abcdef0", want: want{"us-east-1", "us-east-1-wl1-bos-wlz-1", "i-0123456789abcdef0", true}},
		"a Fargate node has no instance": {
			id: "aws:///us-west-2b/0123456789abcdef0123456789abcdef/fargate-ip-192-168-1-2.us-west-2.compute.internal"},
		"another cloud provider": {id: "gce://project/us-central1-a/node-1"},
		"an EKS hybrid node":     {id: "eks-hybrid:///us-west-2/my-cluster/node-1"},
		"no zone":                {id: "aws:///i-0123456789abcdef0"},
		"a zone ID instead of a zone name": {
			id: "aws:///usw2-az1/i-0123456789abcdef0"},
		"a region instead of a zone": {id: "aws:///us-west-2/i-0123456789abcdef0"},
		"an instance ID of the wrong length": {
			id: "aws:///us-west-2a/i-0123456789"},
		"upper-case hex is not an instance ID": {
			id: "aws:///us-west-2a/i-0123456789ABCDEF0"},
		"empty": {id: ""},
	} {
		t.Run(name, func(t *testing.T) {
			region, zone, instance, ok := ParseProviderID(tc.id)
			if got := (want{region, zone, instance, ok}); got != tc.want {
				t.Errorf("ParseProviderID(%q) = %+v, want %+v", tc.id, got, tc.want)
			}
		})
	}
}

// fakeCalls counts calls per operation, returns injected errors and can
// hold calls in flight. An error under "Op/name" fails only the call about
// name (a node group, an instance profile).
type fakeCalls struct {
	mu sync.Mutex
	// WantErr maps an operation ("DescribeNodegroup") or an operation on
	// one resource ("DescribeNodegroup/arm") to the error it returns.
	WantErr map[string]error
	// Delay is slept before each answer, to hold calls in flight.
	Delay time.Duration
	calls map[string]int
}

func (r *fakeCalls) begin(op, name string) error {
	if r.Delay > 0 {
		time.Sleep(r.Delay)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls == nil {
		r.calls = map[string]int{}
	}
	r.calls[op]++
	if err, ok := r.WantErr[op+"/"+name]; ok {
		return err
	}
	return r.WantErr[op]
}

// SetErr makes op (or "op/name") return err; nil clears it.
func (r *fakeCalls) SetErr(op string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.WantErr == nil {
		r.WantErr = map[string]error{}
	}
	if err == nil {
		delete(r.WantErr, op)
		return
	}
	r.WantErr[op] = err
}

// Calls is how many times op was called.
func (r *fakeCalls) Calls(op string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[op]
}

// Total is the number of calls to every operation.
func (r *fakeCalls) Total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		n += c
	}
	return n
}

// page returns items[from token] up to size and the next token ("" when
// done). Tokens are positions.
func page[T any](items []T, token *string, size int) ([]T, *string) {
	start, _ := strconv.Atoi(aws.ToString(token))
	if size <= 0 || start+size >= len(items) {
		return items[start:], nil
	}
	return items[start : start+size], aws.String(strconv.Itoa(start + size))
}

// fakeEKS is one EKS cluster's node groups and Fargate profiles.
type fakeEKS struct {
	EKSAPI
	fakeCalls

	Cluster         string
	NodeGroups      map[string]ekstypes.Nodegroup
	FargateProfiles map[string]ekstypes.FargateProfile
	// PageSize, if set, limits list answers per page.
	PageSize int
}

func (f *fakeEKS) notFound(what string) error {
	return &ekstypes.ResourceNotFoundException{Message: aws.String(what + " not found")}
}

func (f *fakeEKS) ListNodegroups(_ context.Context, in *eks.ListNodegroupsInput, _ ...func(*eks.Options)) (*eks.ListNodegroupsOutput, error) {
	if err := f.begin("ListNodegroups", ""); err != nil {
		return nil, err
	}
	if aws.ToString(in.ClusterName) != f.Cluster {
		return nil, f.notFound("cluster")
	}
	names, next := page(slices.Sorted(maps.Keys(f.NodeGroups)), in.NextToken, f.PageSize)
	return &eks.ListNodegroupsOutput{Nodegroups: names, NextToken: next}, nil
}

func (f *fakeEKS) DescribeNodegroup(_ context.Context, in *eks.DescribeNodegroupInput, _ ...func(*eks.Options)) (*eks.DescribeNodegroupOutput, error) {
	name := aws.ToString(in.NodegroupName)
	if err := f.begin("DescribeNodegroup", name); err != nil {
		return nil, err
	}
	ng, ok := f.NodeGroups[name]
	if !ok || aws.ToString(in.ClusterName) != f.Cluster {
		return nil, f.notFound("node group")
	}
	ng.NodegroupName = aws.String(name)
	return &eks.DescribeNodegroupOutput{Nodegroup: &ng}, nil
}

func (f *fakeEKS) ListFargateProfiles(_ context.Context, in *eks.ListFargateProfilesInput, _ ...func(*eks.Options)) (*eks.ListFargateProfilesOutput, error) {
	if err := f.begin("ListFargateProfiles", ""); err != nil {
		return nil, err
	}
	if aws.ToString(in.ClusterName) != f.Cluster {
		return nil, f.notFound("cluster")
	}
	names, next := page(slices.Sorted(maps.Keys(f.FargateProfiles)), in.NextToken, f.PageSize)
	return &eks.ListFargateProfilesOutput{FargateProfileNames: names, NextToken: next}, nil
}

func (f *fakeEKS) DescribeFargateProfile(_ context.Context, in *eks.DescribeFargateProfileInput, _ ...func(*eks.Options)) (*eks.DescribeFargateProfileOutput, error) {
	name := aws.ToString(in.FargateProfileName)
	if err := f.begin("DescribeFargateProfile", name); err != nil {
		return nil, err
	}
	fp, ok := f.FargateProfiles[name]
	if !ok || aws.ToString(in.ClusterName) != f.Cluster {
		return nil, f.notFound("Fargate profile")
	}
	fp.FargateProfileName = aws.String(name)
	return &eks.DescribeFargateProfileOutput{FargateProfile: &fp}, nil
}

// fakeEC2 holds instances and answers DescribeInstances as EC2 does: an
// unknown ID in InstanceIds fails the whole call, the instance-id filter
// ignores unknown IDs but takes at most 200 values, and MaxResults cannot
// go with InstanceIds.
type fakeEC2 struct {
	EC2API
	fakeCalls

	// Instances maps an instance ID to its instance profile ARN, "" for
	// none.
	Instances map[string]string
	// PageSize, if set, limits instances per page.
	PageSize int

	inputs []*ec2.DescribeInstancesInput
}

func (f *fakeEC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	if err := f.begin("DescribeInstances", ""); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.inputs = append(f.inputs, in)
	f.mu.Unlock()
	var ids []string
	switch {
	case len(in.InstanceIds) > 0 && in.MaxResults != nil:
		return nil, &smithy.GenericAPIError{Code: "InvalidParameterCombination", Message: "MaxResults with InstanceIds"}
	case len(in.InstanceIds) > 0:
		for _, id := range in.InstanceIds {
			if _, ok := f.Instances[id]; !ok {
				return nil, &smithy.GenericAPIError{Code: "InvalidInstanceID.NotFound", Message: "The instance ID '" + id + "' does not exist"}
			}
		}
		ids = in.InstanceIds
	case len(in.Filters) == 1 && aws.ToString(in.Filters[0].Name) == "instance-id":
		if len(in.Filters[0].Values) > maxFilterValues {
			return nil, &smithy.GenericAPIError{Code: "FilterLimitExceeded", Message: "The maximum number of filter values specified on a single call is 200"}
		}
		for _, id := range in.Filters[0].Values {
			if _, ok := f.Instances[id]; ok {
				ids = append(ids, id)
			}
		}
	default:
		return nil, &smithy.GenericAPIError{Code: "Unsupported", Message: "the fake answers only InstanceIds or one instance-id filter"}
	}
	ids, next := page(ids, in.NextToken, f.PageSize)
	out := &ec2.DescribeInstancesOutput{NextToken: next}
	for _, id := range ids {
		inst := ec2types.Instance{InstanceId: aws.String(id)}
		if arn := f.Instances[id]; arn != "" {
			inst.IamInstanceProfile = &ec2types.IamInstanceProfile{Arn: aws.String(arn)}
		}
		out.Reservations = append(out.Reservations, ec2types.Reservation{Instances: []ec2types.Instance{inst}})
	}
	return out, nil
}

// Inputs returns the DescribeInstances inputs so far.
func (f *fakeEC2) Inputs() []*ec2.DescribeInstancesInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.inputs)
}

// fakeIAM holds instance profiles and roles.
type fakeIAM struct {
	IAMAPI
	fakeCalls

	// Profiles maps an instance profile name to its role's ARN, "" for a
	// profile without a role.
	Profiles map[string]string
	// Roles maps a role name to its ARN.
	Roles map[string]string
}

func (f *fakeIAM) GetInstanceProfile(_ context.Context, in *iam.GetInstanceProfileInput, _ ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error) {
	name := aws.ToString(in.InstanceProfileName)
	if err := f.begin("GetInstanceProfile", name); err != nil {
		return nil, err
	}
	role, ok := f.Profiles[name]
	if !ok {
		return nil, &iamtypes.NoSuchEntityException{Message: aws.String("Instance profile " + name + " not found")}
	}
	out := &iam.GetInstanceProfileOutput{InstanceProfile: &iamtypes.InstanceProfile{InstanceProfileName: in.InstanceProfileName}}
	if role != "" {
		out.InstanceProfile.Roles = []iamtypes.Role{{Arn: aws.String(role)}}
	}
	return out, nil
}

func (f *fakeIAM) GetRole(_ context.Context, in *iam.GetRoleInput, _ ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	name := aws.ToString(in.RoleName)
	if err := f.begin("GetRole", name); err != nil {
		return nil, err
	}
	arn, ok := f.Roles[name]
	if !ok {
		return nil, &iamtypes.NoSuchEntityException{Message: aws.String("The role with name " + name + " cannot be found.")}
	}
	return &iam.GetRoleOutput{Role: &iamtypes.Role{RoleName: in.RoleName, Arn: aws.String(arn)}}, nil
}

// TestDiscoveryAgainstMoto runs NodeGroups, FargateProfiles and Instances
// against moto's EKS, EC2 and IAM. moto 5.2.1 keeps a node group's amiType,
// capacityType, labels, taints and scalingConfig, a Fargate profile's
// selectors, and an instance's profile; it fails DescribeInstances naming an
// unknown ID with InvalidInstanceID.NotFound and supports the instance-id
// filter, as EC2 does. It attaches an instance profile only to the first
// instance of a RunInstances call, so instances are run one at a time, and
// it answers ListNodegroups for an unknown cluster with an HTTP 500 instead
// of ResourceNotFoundException. What moto cannot show (failures, throttling,
// concurrency, TTLs) is tested with the fakes.
func TestDiscoveryAgainstMoto(t *testing.T) {
	s := moto.Start(t)
	ctx := moto.Context(t)
	cfg := s.Config()
	iamc, eksc, ec2c := iam.NewFromConfig(cfg), eks.NewFromConfig(cfg), ec2.NewFromConfig(cfg)
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("setting up moto: %v\nmoto output:\n%s", err, s.Output())
		}
	}

	// --- IAM: node roles in instance profiles, and a pod execution role ---
	trust := aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	roleARNs := map[string]string{}
	for _, r := range []struct{ name, path string }{{"NodeRoleArm", "/eks/"}, {"NodeRoleX86", "/"}, {"FargatePods", "/"}} {
		out, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(r.name), Path: aws.String(r.path), AssumeRolePolicyDocument: trust})
		must(out, err)
		roleARNs[r.name] = aws.ToString(out.Role.Arn)
	}
	for _, p := range []struct{ profile, role string }{{"nodes-arm", "NodeRoleArm"}, {"nodes-x86", "NodeRoleX86"}, {"empty-profile", ""}} {
		must(iamc.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(p.profile), Path: aws.String("/eks/")}))
		if p.role != "" {
			must(iamc.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(p.profile), RoleName: aws.String(p.role)}))
		}
	}

	// --- EKS: a cluster with two node groups and a Fargate profile ---
	must(eksc.CreateCluster(ctx, &eks.CreateClusterInput{Name: aws.String("prod"), RoleArn: aws.String("arn:aws:iam::123456789012:role/cluster"),
		ResourcesVpcConfig: &ekstypes.VpcConfigRequest{SubnetIds: []string{"subnet-1"}}}))
	must(eksc.CreateNodegroup(ctx, &eks.CreateNodegroupInput{
		ClusterName: aws.String("prod"), NodegroupName: aws.String("spot-arm"), NodeRole: aws.String(roleARNs["NodeRoleArm"]), Subnets: []string{"subnet-1"},
		AmiType: ekstypes.AMITypesAl2023Arm64Standard, CapacityType: ekstypes.CapacityTypesSpot, Labels: map[string]string{"team": "ml"},
		Taints:        []ekstypes.Taint{{Key: aws.String("dedicated"), Value: aws.String("ml"), Effect: ekstypes.TaintEffectNoSchedule}},
		ScalingConfig: &ekstypes.NodegroupScalingConfig{MinSize: aws.Int32(0), DesiredSize: aws.Int32(0), MaxSize: aws.Int32(3)},
	}))
	must(eksc.CreateNodegroup(ctx, &eks.CreateNodegroupInput{
		ClusterName: aws.String("prod"), NodegroupName: aws.String("general"), NodeRole: aws.String(roleARNs["NodeRoleX86"]), Subnets: []string{"subnet-1"},
		AmiType: ekstypes.AMITypesAl2X8664, Labels: map[string]string{"tier": "general"},
		Taints: []ekstypes.Taint{{Key: aws.String("drain"), Effect: ekstypes.TaintEffectPreferNoSchedule}},
	}))
	must(eksc.CreateFargateProfile(ctx, &eks.CreateFargateProfileInput{
		ClusterName: aws.String("prod"), FargateProfileName: aws.String("batch"), PodExecutionRoleArn: aws.String(roleARNs["FargatePods"]),
		Selectors: []ekstypes.FargateProfileSelector{{Namespace: aws.String("batch"), Labels: map[string]string{"fargate": "yes"}}, {Namespace: aws.String("kube-system")}},
	}))

	// --- EC2: nodes of both groups, one without a profile, one whose profile has no role ---
	run := func(zone, profile string) string {
		t.Helper()
		in := &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			Placement: &ec2types.Placement{AvailabilityZone: aws.String(zone)}}
		if profile != "" {
			in.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Name: aws.String(profile)}
		}
		out, err := ec2c.RunInstances(ctx, in)
		must(out, err)
		return "aws:///" + zone + "/" + aws.ToString(out.Instances[0].InstanceId)
	}
	nodes := map[string]string{ // node name → providerID
		"arm-1": run("us-west-2a", "nodes-arm"), "arm-2": run("us-west-2b", "nodes-arm"), "x86-1": run("us-west-2c", "nodes-x86"),
		"bare": run("us-west-2a", ""), "empty": run("us-west-2a", "empty-profile"),
		"terminated": "aws:///us-west-2a/i-0123456789abcdef0",
	}

	t.Run("node groups", func(t *testing.T) {
		got, err := NewCluster(eksc, "prod").NodeGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		nodepools.Sort(got)
		want := []nodepools.Pool{
			{Name: "general", Kind: nodepools.KindManagedNodeGroup, RoleARN: roleARNs["NodeRoleX86"],
				Platforms: []nodepools.Platform{{OS: "linux", Architecture: "amd64"}},
				Labels: map[string]string{"tier": "general", "eks.amazonaws.com/nodegroup": "general", "eks.amazonaws.com/capacityType": "ON_DEMAND",
					"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
				Taints: []corev1.Taint{{Key: "drain", Effect: corev1.TaintEffectPreferNoSchedule}}},
			{Name: "spot-arm", Kind: nodepools.KindManagedNodeGroup, RoleARN: roleARNs["NodeRoleArm"],
				Platforms: []nodepools.Platform{{OS: "linux", Architecture: "arm64"}},
				Labels: map[string]string{"team": "ml", "eks.amazonaws.com/nodegroup": "spot-arm", "eks.amazonaws.com/capacityType": "SPOT",
					"kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64"},
				Taints: []corev1.Taint{{Key: "dedicated", Value: "ml", Effect: corev1.TaintEffectNoSchedule}}},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("NodeGroups() =\n%+v\nwant\n%+v", got, want)
		}
	})

	t.Run("Fargate profiles", func(t *testing.T) {
		got, err := NewCluster(eksc, "prod").FargateProfiles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []nodepools.Pool{{Name: "batch", Kind: nodepools.KindFargate, RoleARN: roleARNs["FargatePods"],
			Platforms: []nodepools.Platform{{OS: "linux", Architecture: "amd64"}},
			Fargate:   []nodepools.FargateSelector{{Namespace: "batch", Labels: map[string]string{"fargate": "yes"}}, {Namespace: "kube-system"}}}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("FargateProfiles() =\n%+v\nwant\n%+v", got, want)
		}
	})

	t.Run("instance roles from providerIDs", func(t *testing.T) {
		instances := NewInstances(func(string) (EC2API, error) { return ec2c, nil }, iamc, 0)
		var ids []string
		idOf := map[string]string{}
		for node, providerID := range nodes {
			region, _, id, ok := ParseProviderID(providerID)
			if !ok || region != moto.Region {
				t.Fatalf("ParseProviderID(%q) = %q, %q, %v", providerID, region, id, ok)
			}
			ids = append(ids, id)
			idOf[node] = id
		}
		got, err := instances.InstanceRoles(ctx, moto.Region, ids)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{idOf["arm-1"]: roleARNs["NodeRoleArm"], idOf["arm-2"]: roleARNs["NodeRoleArm"], idOf["x86-1"]: roleARNs["NodeRoleX86"]}
		if !maps.Equal(got, want) {
			t.Errorf("InstanceRoles() = %v, want %v (none for the bare, empty-profile and terminated nodes)", got, want)
		}
	})

	t.Run("Karpenter's instance profile and role names", func(t *testing.T) {
		instances := NewInstances(func(string) (EC2API, error) { return ec2c, nil }, iamc, 0)
		if arn, err := instances.InstanceProfileRole(ctx, "nodes-arm"); err != nil || arn != "arn:aws:iam::123456789012:role/eks/NodeRoleArm" {
			t.Errorf("InstanceProfileRole(nodes-arm) = %q, %v", arn, err)
		}
		if _, err := instances.InstanceProfileRole(ctx, "empty-profile"); !errors.Is(err, ErrNoRole) {
			t.Errorf("InstanceProfileRole(empty-profile) error = %v, want ErrNoRole", err)
		}
		var noEntity *iamtypes.NoSuchEntityException
		if _, err := instances.InstanceProfileRole(ctx, "missing"); !errors.As(err, &noEntity) {
			t.Errorf("InstanceProfileRole(missing) error = %v, want NoSuchEntityException", err)
		}
		if arn, err := instances.RoleARN(ctx, "NodeRoleArm"); err != nil || arn != "arn:aws:iam::123456789012:role/eks/NodeRoleArm" {
			t.Errorf("RoleARN(NodeRoleArm) = %q, %v", arn, err)
		}
		if _, err := instances.RoleARN(ctx, "Missing"); !errors.As(err, &noEntity) {
			t.Errorf("RoleARN(Missing) error = %v, want NoSuchEntityException", err)
		}
	})
}
