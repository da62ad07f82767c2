package awsseed

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// OCIIndexMediaType is the media type of an OCI image index.
const OCIIndexMediaType = "application/vnd.oci.image.index.v1+json"

// testAMI is an image ID moto accepts for RunInstances.
const testAMI = "ami-12c6146b"

// Platform is an index entry's platform: os and architecture.
type Platform struct{ OS, Architecture string }

// PushIndex pushes an OCI image index under tag whose manifests are for
// platforms, returning the digest ECR assigned. The entries' digests are
// made up: only the index is read (a platform check reads no further).
func (a *Account) PushIndex(ctx context.Context, repo, tag string, platforms ...Platform) (string, error) {
	if err := a.createRepository(ctx, repo); err != nil {
		return "", err
	}
	index := `{"schemaVersion":2,"mediaType":"` + OCIIndexMediaType + `","manifests":[`
	for i, p := range platforms {
		if i > 0 {
			index += ","
		}
		index += fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":500,"digest":"sha256:%064x","platform":{"os":%q,"architecture":%q}}`, i+1, p.OS, p.Architecture)
	}
	index += "]}"
	out, err := a.ECR.PutImage(ctx, &ecr.PutImageInput{
		RepositoryName: aws.String(repo), ImageTag: aws.String(tag), ImageManifest: aws.String(index),
		ImageManifestMediaType: aws.String(OCIIndexMediaType),
	})
	if err != nil {
		return "", fmt.Errorf("pushing index %s:%s: %w", repo, tag, err)
	}
	return aws.ToString(out.Image.ImageId.ImageDigest), nil
}

// RunNode runs an EC2 instance in zone with an instance profile (created
// here, named after the role) holding role, as a node of a node group
// is, and returns the Kubernetes providerID of its Node:
// aws:///ZONE/INSTANCE_ID.
func (a *Account) RunNode(ctx context.Context, zone, roleName string) (string, error) {
	profile := roleName + "-profile"
	if _, err := a.IAM.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(profile)}); err != nil {
		if _, err := a.IAM.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(profile)}); err != nil {
			return "", fmt.Errorf("creating instance profile %s: %w", profile, err)
		}
		if _, err := a.IAM.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{
			InstanceProfileName: aws.String(profile), RoleName: aws.String(roleName),
		}); err != nil {
			return "", fmt.Errorf("adding role %s to instance profile %s: %w", roleName, profile, err)
		}
	}
	// One instance per call: moto attaches the profile to the first
	// instance of a RunInstances only.
	out, err := a.EC2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(testAMI), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement:          &ec2types.Placement{AvailabilityZone: aws.String(zone)},
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String(profile)},
	})
	if err != nil {
		return "", fmt.Errorf("running an instance with profile %s: %w", profile, err)
	}
	return "aws:///" + zone + "/" + aws.ToString(out.Instances[0].InstanceId), nil
}
