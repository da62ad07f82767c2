package fake_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient/fake"
)

const (
	active   = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	archived = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	waking   = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
)

func newECR() *fake.ECR {
	return &fake.ECR{Repositories: map[string]*fake.Repository{"app": {Images: []types.ImageDetail{
		fake.Image(active, "v1"),
		fake.WithStatus(fake.Image(archived, "v0"), types.ImageStatusArchived),
		fake.WithStatus(fake.Image(waking, "v2"), types.ImageStatusActivating),
	}}}}
}

func TestDescribeImagesHidesImagesNotInTheFilteredStatus(t *testing.T) {
	tests := map[string]struct {
		filter *types.DescribeImagesFilter
		want   []string
	}{
		"no filter sees only ACTIVE images": {want: []string{active}},
		"a filter without a status sees only ACTIVE images": {
			filter: &types.DescribeImagesFilter{TagStatus: types.TagStatusTagged}, want: []string{active},
		},
		"ACTIVE":   {filter: &types.DescribeImagesFilter{ImageStatus: types.ImageStatusFilterActive}, want: []string{active}},
		"ARCHIVED": {filter: &types.DescribeImagesFilter{ImageStatus: types.ImageStatusFilterArchived}, want: []string{archived}},
		"ACTIVATING": {
			filter: &types.DescribeImagesFilter{ImageStatus: types.ImageStatusFilterActivating}, want: []string{waking},
		},
		"ANY": {filter: &types.DescribeImagesFilter{ImageStatus: types.ImageStatusFilterAny}, want: []string{active, archived, waking}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := newECR().DescribeImages(context.Background(), &ecr.DescribeImagesInput{RepositoryName: aws.String("app"), Filter: tc.filter})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range out.ImageDetails {
				got = append(got, aws.ToString(d.ImageDigest))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("digests = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDescribeImagesNamingAHiddenImageIsImageNotFound(t *testing.T) {
	f := newECR()
	in := &ecr.DescribeImagesInput{RepositoryName: aws.String("app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}, {ImageTag: aws.String("v0")}}}
	var notFound *types.ImageNotFoundException
	if _, err := f.DescribeImages(context.Background(), in); !errors.As(err, &notFound) {
		t.Fatalf("without a filter: err = %v, want ImageNotFoundException", err)
	}
	in.Filter = &types.DescribeImagesFilter{ImageStatus: types.ImageStatusFilterAny}
	out, err := f.DescribeImages(context.Background(), in)
	if err != nil || len(out.ImageDetails) != 2 || out.ImageDetails[1].ImageStatus != types.ImageStatusArchived {
		t.Fatalf("with ANY: %+v, err %v; want v1 and the ARCHIVED v0", out, err)
	}
}

func TestSetImageStatusRestoresAnImage(t *testing.T) {
	f := newECR()
	if f.SetImageStatus("app", "sha256:nope", types.ImageStatusActive) || f.SetImageStatus("ghost", archived, types.ImageStatusActive) {
		t.Fatal("SetImageStatus reported a missing image or repository as set")
	}
	if !f.SetImageStatus("app", archived, types.ImageStatusActive) {
		t.Fatal("SetImageStatus did not find the archived image")
	}
	in := &ecr.DescribeImagesInput{RepositoryName: aws.String("app"), ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(archived)}}}
	if out, err := f.DescribeImages(context.Background(), in); err != nil || len(out.ImageDetails) != 1 {
		t.Fatalf("restored image without a filter: %+v, err %v", out, err)
	}
}
