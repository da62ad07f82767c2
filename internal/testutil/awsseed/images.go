package awsseed

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
)

// PushDistinctImage creates repo if needed and pushes under tag a manifest
// whose one layer is unique to n, returning the digest ECR assigned. moto
// keeps a repeated manifest as one image with one more tag (and derives
// digests from layers), so images that must be distinct need distinct n.
func (a *Account) PushDistinctImage(ctx context.Context, repo, tag string, n int) (string, error) {
	if err := a.createRepository(ctx, repo); err != nil {
		return "", err
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",`+
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},`+
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":3,"digest":"sha256:%064x"}]}`, n)
	out, err := a.ECR.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageTag: aws.String(tag), ImageManifest: aws.String(m)})
	if err != nil {
		return "", fmt.Errorf("pushing image %d to %s:%s: %w", n, repo, tag, err)
	}
	return aws.ToString(out.Image.ImageId.ImageDigest), nil
}
