package fake

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
)

// Repository is a fake ECR repository.
type Repository struct {
	Images []types.ImageDetail
	// Policy is the repository policy JSON; nil for none.
	Policy *string
	// LifecyclePolicy is the lifecycle policy JSON; nil for none.
	LifecyclePolicy *string
	// Manifests holds what BatchGetImage answers, by image digest. An
	// image of Images that has no entry here is answered as missing.
	Manifests map[string]Manifest
	// LayerURLs holds what GetDownloadUrlForLayer answers, by layer (or
	// config) digest.
	LayerURLs map[string]string
}

// Manifest is an image manifest as ECR stores it.
type Manifest struct {
	MediaType string
	Body      string
}

// ECR is an in-memory ECR registry.
type ECR struct {
	awsclient.ECRAPI
	recorder

	// Repositories by name.
	Repositories map[string]*Repository
	// RegistryPolicy is the registry policy JSON; nil for none.
	RegistryPolicy *string
	// AccountSettings by name, e.g. "REGISTRY_POLICY_SCOPE": "V2".
	AccountSettings map[string]string
	// PullThroughCacheRules are returned by DescribePullThroughCacheRules.
	PullThroughCacheRules []types.PullThroughCacheRule

	// DescribeImagesInputs records every DescribeImages input.
	DescribeImagesInputs []*ecr.DescribeImagesInput
	// BatchGetImageInputs records every BatchGetImage input.
	BatchGetImageInputs []*ecr.BatchGetImageInput
}

var _ awsclient.ECRAPI = (*ECR)(nil)

// Image returns an ACTIVE ImageDetail for tests.
func Image(digest string, tags ...string) types.ImageDetail {
	return types.ImageDetail{ImageDigest: aws.String(digest), ImageTags: tags, ImageStatus: types.ImageStatusActive,
		ImageManifestMediaType: aws.String("application/vnd.oci.image.manifest.v1+json")}
}

// WithStatus returns d in status, e.g. an image in ECR's archive tier:
// WithStatus(Image(digest, "v1"), types.ImageStatusArchived).
func WithStatus(d types.ImageDetail, status types.ImageStatus) types.ImageDetail {
	d.ImageStatus = status
	return d
}

// SetImageStatus changes the status of repo's image with digest while
// tests run, as archiving or restoring it in ECR would. It reports whether
// the image exists.
func (f *ECR) SetImageStatus(repo, digest string, status types.ImageStatus) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.Repositories[repo]
	if !ok {
		return false
	}
	i := slices.IndexFunc(r.Images, func(d types.ImageDetail) bool { return aws.ToString(d.ImageDigest) == digest })
	if i < 0 {
		return false
	}
	r.Images[i].ImageStatus = status
	return true
}

// DescribeImages implements awsclient.ECRAPI. Like ECR, it answers only
// for ACTIVE images (an image with no status counts as ACTIVE) unless the
// request's filter asks for another ImageStatus or ANY: a request naming an
// archived image without such a filter fails with ImageNotFoundException.
func (f *ECR) DescribeImages(_ context.Context, in *ecr.DescribeImagesInput, _ ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error) {
	err := f.begin("DescribeImages")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.DescribeImagesInputs = append(f.DescribeImagesInputs, in)
	if err != nil {
		return nil, err
	}
	repo, ok := f.Repositories[aws.ToString(in.RepositoryName)]
	if !ok {
		return nil, &types.RepositoryNotFoundException{Message: aws.String(fmt.Sprintf("repository %s not found", aws.ToString(in.RepositoryName)))}
	}
	images := visibleImages(repo.Images, in.Filter)
	if len(in.ImageIds) == 0 {
		return &ecr.DescribeImagesOutput{ImageDetails: images}, nil
	}
	out := &ecr.DescribeImagesOutput{}
	for _, id := range in.ImageIds {
		i := slices.IndexFunc(images, func(d types.ImageDetail) bool {
			return (id.ImageDigest == nil || aws.ToString(d.ImageDigest) == *id.ImageDigest) &&
				(id.ImageTag == nil || slices.Contains(d.ImageTags, *id.ImageTag))
		})
		if i < 0 {
			// As ECR does: one missing image fails the whole call.
			return nil, &types.ImageNotFoundException{Message: aws.String("image not found")}
		}
		if !slices.ContainsFunc(out.ImageDetails, func(d types.ImageDetail) bool {
			return aws.ToString(d.ImageDigest) == aws.ToString(images[i].ImageDigest)
		}) {
			out.ImageDetails = append(out.ImageDetails, images[i])
		}
	}
	return out, nil
}

// visibleImages returns the images that a DescribeImages request with
// filter sees, in a new slice.
func visibleImages(images []types.ImageDetail, filter *types.DescribeImagesFilter) []types.ImageDetail {
	want := types.ImageStatusFilterActive
	if filter != nil && filter.ImageStatus != "" {
		want = filter.ImageStatus
	}
	var out []types.ImageDetail
	for _, d := range images {
		status := d.ImageStatus
		if status == "" {
			status = types.ImageStatusActive
		}
		if want == types.ImageStatusFilterAny || string(want) == string(status) {
			out = append(out, d)
		}
	}
	return out
}

// GetRepositoryPolicy implements awsclient.ECRAPI.
func (f *ECR) GetRepositoryPolicy(_ context.Context, in *ecr.GetRepositoryPolicyInput, _ ...func(*ecr.Options)) (*ecr.GetRepositoryPolicyOutput, error) {
	if err := f.begin("GetRepositoryPolicy"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	repo, ok := f.Repositories[aws.ToString(in.RepositoryName)]
	switch {
	case !ok:
		return nil, &types.RepositoryNotFoundException{Message: aws.String("repository not found")}
	case repo.Policy == nil:
		return nil, &types.RepositoryPolicyNotFoundException{Message: aws.String("no repository policy")}
	}
	return &ecr.GetRepositoryPolicyOutput{PolicyText: repo.Policy, RepositoryName: in.RepositoryName, RegistryId: in.RegistryId}, nil
}

// GetLifecyclePolicy implements awsclient.ECRAPI. Like ECR, it answers a
// repository without a lifecycle policy with
// LifecyclePolicyNotFoundException.
func (f *ECR) GetLifecyclePolicy(_ context.Context, in *ecr.GetLifecyclePolicyInput, _ ...func(*ecr.Options)) (*ecr.GetLifecyclePolicyOutput, error) {
	if err := f.begin("GetLifecyclePolicy"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	repo, ok := f.Repositories[aws.ToString(in.RepositoryName)]
	switch {
	case !ok:
		return nil, &types.RepositoryNotFoundException{Message: aws.String("repository not found")}
	case repo.LifecyclePolicy == nil:
		return nil, &types.LifecyclePolicyNotFoundException{Message: aws.String("no lifecycle policy")}
	}
	return &ecr.GetLifecyclePolicyOutput{LifecyclePolicyText: repo.LifecyclePolicy, RepositoryName: in.RepositoryName, RegistryId: in.RegistryId}, nil
}

// GetRegistryPolicy implements awsclient.ECRAPI.
func (f *ECR) GetRegistryPolicy(context.Context, *ecr.GetRegistryPolicyInput, ...func(*ecr.Options)) (*ecr.GetRegistryPolicyOutput, error) {
	if err := f.begin("GetRegistryPolicy"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.RegistryPolicy == nil {
		return nil, &types.RegistryPolicyNotFoundException{Message: aws.String("no registry policy")}
	}
	return &ecr.GetRegistryPolicyOutput{PolicyText: f.RegistryPolicy}, nil
}

// GetAccountSetting implements awsclient.ECRAPI.
func (f *ECR) GetAccountSetting(_ context.Context, in *ecr.GetAccountSettingInput, _ ...func(*ecr.Options)) (*ecr.GetAccountSettingOutput, error) {
	if err := f.begin("GetAccountSetting"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return &ecr.GetAccountSettingOutput{Name: in.Name, Value: aws.String(f.AccountSettings[aws.ToString(in.Name)])}, nil
}

// DescribePullThroughCacheRules implements awsclient.ECRAPI. It returns
// one rule per page, to exercise pagination.
func (f *ECR) DescribePullThroughCacheRules(_ context.Context, in *ecr.DescribePullThroughCacheRulesInput, _ ...func(*ecr.Options)) (*ecr.DescribePullThroughCacheRulesOutput, error) {
	if err := f.begin("DescribePullThroughCacheRules"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := 0
	if in.NextToken != nil {
		if _, err := fmt.Sscan(*in.NextToken, &i); err != nil {
			return nil, err
		}
	}
	out := &ecr.DescribePullThroughCacheRulesOutput{}
	if i < len(f.PullThroughCacheRules) {
		out.PullThroughCacheRules = f.PullThroughCacheRules[i : i+1]
	}
	if i+1 < len(f.PullThroughCacheRules) {
		out.NextToken = aws.String(fmt.Sprint(i + 1))
	}
	return out, nil
}

// BatchGetImage implements awsclient.ECRAPI. Like ECR, it answers an image
// it does not hold (by digest, or by a tag of Images) with a failures entry
// ImageNotFound rather than an error, and a missing repository with
// RepositoryNotFoundException. It ignores acceptedMediaTypes, as moto does:
// every manifest is answered as stored.
func (f *ECR) BatchGetImage(_ context.Context, in *ecr.BatchGetImageInput, _ ...func(*ecr.Options)) (*ecr.BatchGetImageOutput, error) {
	err := f.begin("BatchGetImage")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.BatchGetImageInputs = append(f.BatchGetImageInputs, in)
	if err != nil {
		return nil, err
	}
	repo, ok := f.Repositories[aws.ToString(in.RepositoryName)]
	if !ok {
		return nil, &types.RepositoryNotFoundException{Message: aws.String(fmt.Sprintf("repository %s not found", aws.ToString(in.RepositoryName)))}
	}
	out := &ecr.BatchGetImageOutput{}
	for _, id := range in.ImageIds {
		digest := aws.ToString(id.ImageDigest)
		if id.ImageTag != nil {
			i := slices.IndexFunc(repo.Images, func(d types.ImageDetail) bool { return slices.Contains(d.ImageTags, *id.ImageTag) })
			if i >= 0 && (digest == "" || digest == aws.ToString(repo.Images[i].ImageDigest)) {
				digest = aws.ToString(repo.Images[i].ImageDigest)
			} else {
				digest = ""
			}
		}
		m, ok := repo.Manifests[digest]
		if !ok {
			out.Failures = append(out.Failures, types.ImageFailure{ImageId: &types.ImageIdentifier{ImageDigest: id.ImageDigest, ImageTag: id.ImageTag},
				FailureCode: types.ImageFailureCodeImageNotFound, FailureReason: aws.String("Requested image not found")})
			continue
		}
		out.Images = append(out.Images, types.Image{
			ImageId:                &types.ImageIdentifier{ImageDigest: aws.String(digest), ImageTag: id.ImageTag},
			ImageManifest:          aws.String(m.Body),
			ImageManifestMediaType: aws.String(m.MediaType),
			RepositoryName:         in.RepositoryName,
			RegistryId:             in.RegistryId,
		})
	}
	return out, nil
}

// GetDownloadUrlForLayer implements awsclient.ECRAPI: it answers the
// repository's LayerURLs entry, LayersNotFoundException for a digest
// without one, and RepositoryNotFoundException for a missing repository.
func (f *ECR) GetDownloadUrlForLayer(_ context.Context, in *ecr.GetDownloadUrlForLayerInput, _ ...func(*ecr.Options)) (*ecr.GetDownloadUrlForLayerOutput, error) {
	if err := f.begin("GetDownloadUrlForLayer"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	repo, ok := f.Repositories[aws.ToString(in.RepositoryName)]
	if !ok {
		return nil, &types.RepositoryNotFoundException{Message: aws.String(fmt.Sprintf("repository %s not found", aws.ToString(in.RepositoryName)))}
	}
	u, ok := repo.LayerURLs[aws.ToString(in.LayerDigest)]
	if !ok {
		return nil, &types.LayersNotFoundException{Message: aws.String("layer not found")}
	}
	return &ecr.GetDownloadUrlForLayerOutput{DownloadUrl: aws.String(u), LayerDigest: in.LayerDigest}, nil
}
