package imageplatform_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/imageplatform"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/ecrstub"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

// TestPlatformsThroughLookups resolves images stored in moto (manifests)
// and the ECR stub (config blobs, as moto serves no layer URLs) through
// awsclient.Lookups, as the webhook does: DescribeImages gives the media
// type, the Resolver reads the rest once.
func TestPlatformsThroughLookups(t *testing.T) {
	stub := ecrstub.Start(t, moto.Start(t))
	ctx := moto.Context(t)
	cfg := stub.Config()
	factory, err := awsclient.NewFactory(cfg, awsclient.FactoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// moto takes over a second to answer its first calls on a busy machine.
	lookups := awsclient.NewLookups(factory, awsclient.Options{CallTimeout: 10 * time.Second})
	repo := awsclient.Repository{Registry: awsclient.Registry{Region: moto.Region, Account: moto.DefaultAccount}, Name: "team/multi"}
	ecrc := ecr.NewFromConfig(cfg)
	if _, err := ecrc.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo.Name)}); err != nil {
		t.Fatal(err)
	}
	put := func(tag, mediaType, body string) string {
		t.Helper()
		in := &ecr.PutImageInput{RepositoryName: aws.String(repo.Name), ImageManifest: aws.String(body), ImageManifestMediaType: aws.String(mediaType)}
		if tag != "" {
			in.ImageTag = aws.String(tag)
		}
		out, err := ecrc.PutImage(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Image.ImageId.ImageDigest) // moto's digest: never computed here
	}

	amd64Config := config(linux("amd64", ""))
	configDigest := digestOf(amd64Config)
	stub.PutBlob(repo.Name, configDigest, amd64Config)
	amd64 := put("amd64", dockerImage, fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"size":%d,"digest":%q},`+
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":3,"digest":"sha256:%064d"}]}`,
		dockerImage, dockerConfig, len(amd64Config), configDigest, 1))
	index := put("v1", ociIndex, fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[`+
		`{"mediaType":%q,"digest":"sha256:%064d","size":2,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},`+
		`{"mediaType":%q,"digest":%q,"size":2},`+
		`{"mediaType":%q,"digest":"sha256:%064d","size":2,"platform":{"architecture":"unknown","os":"unknown"},`+
		`"annotations":{"vnd.docker.reference.type":"attestation-manifest"}}]}`,
		ociIndex, ociManifest, 2, dockerImage, amd64, ociManifest, 3))

	found, missing, err := lookups.DescribeImages(ctx, repo, []awsclient.ImageID{{Tag: "v1"}, {Tag: "amd64"}})
	if err != nil || len(missing) != 0 || len(found) != 2 {
		t.Fatalf("DescribeImages: found %+v, missing %v, err %v", found, missing, err)
	}
	described := map[string]string{}
	for _, d := range found {
		described[d.Digest] = d.ManifestMediaType
	}
	if described[index] != ociIndex || described[amd64] != dockerImage {
		t.Fatalf("DescribeImages gave media types %v, want the index's and the image's", described)
	}

	tests := map[string]struct {
		mode          imageplatform.Mode
		digest        string
		wantPlatforms string
		wantKnown     bool
	}{
		"index mode reads the index, not its entry without a platform": {
			mode: imageplatform.ModeIndex, digest: index, wantPlatforms: "linux/arm64/v8",
		},
		"full mode reads the entry without a platform from its config": {
			mode: imageplatform.ModeFull, digest: index, wantPlatforms: "linux/arm64/v8 linux/amd64", wantKnown: true,
		},
		"full mode reads a single-architecture image's config": {
			mode: imageplatform.ModeFull, digest: amd64, wantPlatforms: "linux/amd64", wantKnown: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res := imageplatform.NewResolver(lookups, tc.mode)
			for look := range 2 {
				before := stub.Calls("BatchGetImage") + stub.Calls("GetDownloadUrlForLayer")
				img, err := res.Platforms(ctx, repo, tc.digest, described[tc.digest])
				if err != nil {
					t.Fatal(err)
				}
				if got := formatAll(img.Platforms); got != tc.wantPlatforms || img.Known != tc.wantKnown {
					t.Errorf("look %d: platforms %q, known %t; want %q, %t", look, got, img.Known, tc.wantPlatforms, tc.wantKnown)
				}
				if calls := stub.Calls("BatchGetImage") + stub.Calls("GetDownloadUrlForLayer") - before; look == 1 && calls != 0 {
					t.Errorf("the second look made %d ECR calls, want none", calls)
				}
			}
		})
	}
}
