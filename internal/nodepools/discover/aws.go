package discover

import (
	"context"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// EKSAPI is the part of the EKS API that lists a cluster's managed node
// groups and Fargate profiles. Its methods have the exact signatures of
// *eks.Client. IAM actions: eks:ListNodegroups, eks:DescribeNodegroup,
// eks:ListFargateProfiles, eks:DescribeFargateProfile.
type EKSAPI interface {
	ListNodegroups(ctx context.Context, params *eks.ListNodegroupsInput, optFns ...func(*eks.Options)) (*eks.ListNodegroupsOutput, error)
	DescribeNodegroup(ctx context.Context, params *eks.DescribeNodegroupInput, optFns ...func(*eks.Options)) (*eks.DescribeNodegroupOutput, error)
	ListFargateProfiles(ctx context.Context, params *eks.ListFargateProfilesInput, optFns ...func(*eks.Options)) (*eks.ListFargateProfilesOutput, error)
	DescribeFargateProfile(ctx context.Context, params *eks.DescribeFargateProfileInput, optFns ...func(*eks.Options)) (*eks.DescribeFargateProfileOutput, error)
}

// EC2API is the part of the EC2 API that finds a node's instance profile.
// Its method has the exact signature of *ec2.Client. IAM action:
// ec2:DescribeInstances.
type EC2API interface {
	DescribeInstances(ctx context.Context, params *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// IAMAPI is the part of the IAM API that resolves instance profiles and
// role names to role ARNs. Its methods have the exact signatures of
// *iam.Client. IAM actions: iam:GetInstanceProfile, iam:GetRole.
type IAMAPI interface {
	GetInstanceProfile(ctx context.Context, params *iam.GetInstanceProfileInput, optFns ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	GetRole(ctx context.Context, params *iam.GetRoleInput, optFns ...func(*iam.Options)) (*iam.GetRoleOutput, error)
}

// The real SDK clients must satisfy the interfaces: if an SDK upgrade changes
// a signature, the build breaks here rather than in the wiring.
var (
	_ EKSAPI = (*eks.Client)(nil)
	_ EC2API = (*ec2.Client)(nil)
	_ IAMAPI = (*iam.Client)(nil)
)

var (
	// instanceIDPattern is an EC2 instance ID: "i-" and 8 (old) or 17 hex
	// digits.
	instanceIDPattern = regexp.MustCompile(`^i-[0-9a-f]{8}(?:[0-9a-f]{9})?$`)
	// zonePattern splits a zone name into its region and the rest: a
	// letter for an Availability Zone (us-west-2a, us-gov-west-1b), a
	// "-location-Na" suffix for a Local Zone (us-west-2-lax-1a) and a
	// "-wlN-location-wlz-N" suffix for a Wavelength Zone
	// (us-east-1-wl1-bos-wlz-1). The region is the shortest prefix ending
	// in "-N": regions never contain a digit elsewhere.
	zonePattern = regexp.MustCompile(`^([a-z]{2}(?:-[a-z]+)+?-[0-9]+)(?:[a-z]|-[a-z0-9-]+)$`)
)

// ParseProviderID reads a Node's spec.providerID as the AWS cloud provider
// and Karpenter write it for an EC2 instance, "aws:///ZONE/INSTANCE-ID"
// (aws:///us-west-2a/i-0123456789abcdef0), and returns the zone, the region
// the zone belongs to and the instance ID. The zone may be an Availability
// Zone, a Local Zone (us-west-2-lax-1a: region us-west-2) or a Wavelength
// Zone (us-east-1-wl1-bos-wlz-1: region us-east-1). ok is false for
// anything else: a Fargate node ("aws:///us-west-2a/<id>/fargate-ip-..."),
// which has no instance, another provider's ID, or a malformed one.
func ParseProviderID(id string) (region, zone, instanceID string, ok bool) {
	rest, found := strings.CutPrefix(id, "aws:///")
	if !found {
		return "", "", "", false
	}
	zone, instanceID, found = strings.Cut(rest, "/")
	if !found || !instanceIDPattern.MatchString(instanceID) {
		return "", "", "", false
	}
	m := zonePattern.FindStringSubmatch(zone)
	if m == nil {
		return "", "", "", false
	}
	return m[1], zone, instanceID, true
}
