package awsclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// maxImagesPerPage is DescribeImages' largest maxResults (ECR's default is
// 100): listing a repository of up to 1,000 images takes one call.
const maxImagesPerPage = 1000

// LifecyclePolicy returns the repository's lifecycle policy (JSON, as
// GetLifecyclePolicy returns it); found is false when the repository has
// none (LifecyclePolicyNotFoundException). A repository that does not exist
// gives an error wrapping ErrRepositoryNotFound; other failures are a
// LookupError for ecr:GetLifecyclePolicy.
//
// A policy is cached for TTLs.Policy and its absence for TTLs.NotFound, as
// repository policies are; WithFresh(ctx, KindLifecyclePolicy) asks again.
func (l *Lookups) LifecyclePolicy(ctx context.Context, r Repository) (text string, found bool, err error) {
	return repositoryPolicy[*ecrtypes.LifecyclePolicyNotFoundException](ctx, l, r, repositoryPolicyGet{
		kind: KindLifecyclePolicy, keyPrefix: "lifecycle", policy: "lifecycle policy", operation: "GetLifecyclePolicy",
		get: func(ctx context.Context, c ECRAPI) (*string, error) {
			out, err := c.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String(r.Name), RegistryId: aws.String(r.Account)})
			if err != nil {
				return nil, err
			}
			return out.LifecyclePolicyText, nil
		},
	})
}

// repositoryImages is what is cached per repository: its images, or the
// repository's known absence.
type repositoryImages struct {
	images      []ImageDetail
	repoMissing bool
}

// RepositoryImages returns every image of the repository, in ECR's order,
// whatever its status: an image in the archive tier is included with
// Status "ARCHIVED" (or "ACTIVATING" while restored), since lifecycle rules
// count and act on archived images too (storageClass "archive"). Each
// ImageDetail's ID is its digest. It pages through DescribeImages (up to
// 1,000 images per call); a failure on any page fails the whole listing.
//
// A repository that does not exist gives an error wrapping
// ErrRepositoryNotFound; other failures are a LookupError for
// ecr:DescribeImages.
//
// The listing is cached per repository for TTLs.ImageByTag, the freshness
// of the tags it carries (a missing repository for TTLs.NotFound), shared
// by concurrent callers, and asked for again under
// WithFresh(ctx, KindRepositoryImages). The slice and its images are
// shared with other callers: do not modify them.
func (l *Lookups) RepositoryImages(ctx context.Context, r Repository) ([]ImageDetail, error) {
	what := fmt.Sprintf("listing the images of %s", r.Name)
	ttl := func(a repositoryImages) time.Duration {
		if a.repoMissing {
			return l.opts.TTL.NotFound
		}
		return l.opts.TTL.ImageByTag
	}
	a, err := cached(ctx, l, KindRepositoryImages, key("repoimages", r.Region, r.Account, r.Name), what, ttl,
		func(ctx context.Context) (repositoryImages, error) {
			return l.listImages(ctx, what, r)
		})
	if err == nil && a.repoMissing {
		err = &LookupError{What: what, Action: "ecr:DescribeImages", Class: ClassNotFound, Err: ErrRepositoryNotFound}
	}
	return a.images, err
}

// listImages asks ECR for every page of the repository's images.
func (l *Lookups) listImages(ctx context.Context, what string, r Repository) (repositoryImages, error) {
	client, err := l.clients.ECR(r.Region, r.Account)
	if err != nil {
		return repositoryImages{}, fmt.Errorf("%s: %w", what, err)
	}
	in := &ecr.DescribeImagesInput{
		RepositoryName: aws.String(r.Name),
		RegistryId:     aws.String(r.Account),
		Filter:         anyStatus(),
		MaxResults:     aws.Int32(maxImagesPerPage),
	}
	images := []ImageDetail{}
	err = eachPage(ctx, l, "DescribeImages", ecr.NewDescribeImagesPaginator(client, in),
		func(out *ecr.DescribeImagesOutput) {
			for _, d := range out.ImageDetails {
				images = append(images, toDetail(ImageID{Digest: aws.ToString(d.ImageDigest)}, d))
			}
		})
	var noRepo *ecrtypes.RepositoryNotFoundException
	switch {
	case errors.As(err, &noRepo):
		return repositoryImages{repoMissing: true}, nil
	case err != nil:
		return repositoryImages{}, lookupError(what, "ecr:DescribeImages", err)
	}
	return repositoryImages{images: images}, nil
}
