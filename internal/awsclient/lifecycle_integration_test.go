package awsclient_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/awsseed"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/ecrstub"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

const (
	// classicLifecycle uses only the grammar moto 5.2.1 accepts: expire
	// actions counted by sinceImagePushed or imageCountMoreThan. moto
	// rejects the newer grammar (storageClass, transition actions,
	// sinceImagePulled, sinceImageTransitioned), which the lifecycle
	// evaluator's own tests cover in pure Go; this test is about the API
	// plumbing only.
	classicLifecycle = `{"rules":[` +
		`{"rulePriority":1,"description":"untagged after two weeks","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}},` +
		`{"rulePriority":2,"description":"keep three releases","selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":3},"action":{"type":"expire"}}]}`
	// archiveLifecycle is a rule in the newer grammar: archive images not
	// pulled for 90 days.
	archiveLifecycle = `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","storageClass":"standard","countType":"sinceImagePulled","countUnit":"days","countNumber":90},"action":{"type":"transition","targetStorageClass":"archive"}}]}`
)

// putDistinctImage pushes a manifest whose layer is unique to n under tag
// ("" for an untagged image) and returns moto's digest. moto derives an
// image's digest from its layers' digests and stores a repeated manifest
// as one image with one more tag (as awsseed.PushImage's fixed manifest
// does), so distinct images need distinct layers.
func putDistinctImage(ctx context.Context, c *ecr.Client, repo, tag string, n int) (string, error) {
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",`+
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},`+
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":3,"digest":"sha256:%064x"}]}`, n)
	in := &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageManifest: aws.String(m)}
	if tag != "" {
		in.ImageTag = aws.String(tag)
	}
	out, err := c.PutImage(ctx, in)
	if err != nil {
		return "", fmt.Errorf("pushing image %d to %s: %w", n, repo, err)
	}
	return aws.ToString(out.Image.ImageId.ImageDigest), nil
}

func TestLifecycleReadsAgainstMoto(t *testing.T) {
	stub := ecrstub.Start(t, moto.Start(t))
	ctx := moto.Context(t)
	newLookups := func(t *testing.T, cfg aws.Config) *awsclient.Lookups {
		t.Helper()
		// The webhook's retryer decides the attempts: Config's
		// RetryMaxAttempts (1, for moto) would override it.
		cfg.Retryer, cfg.RetryMaxAttempts = awsclient.NewRetryer(awsclient.RetryOptions{}), 0
		factory, err := awsclient.NewFactory(cfg, awsclient.FactoryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return awsclient.NewLookups(factory, awsclient.Options{CallTimeout: motoCallTimeout})
	}
	repo := func(name string) awsclient.Repository {
		return awsclient.Repository{Registry: awsclient.Registry{Region: moto.Region, Account: moto.DefaultAccount}, Name: name}
	}

	// --- team/app: a lifecycle policy and four images, one with two tags ---
	direct := stub.Moto.Config()
	seed := awsseed.NewAccount(direct, moto.DefaultAccount)
	pushStart := time.Now().Truncate(time.Second) // moto keeps push times in whole seconds
	v1, err := seed.PushImage(ctx, "team/app", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := seed.PushImage(ctx, "team/app", "latest"); err != nil || again != v1 {
		t.Fatalf("pushing the same manifest as latest: digest %s, err %v; want v1's %s", again, err, v1)
	}
	want := map[string][]string{v1: {"v1", "latest"}}
	for i, tag := range []string{"v2", "v3", ""} {
		d, err := putDistinctImage(ctx, seed.ECR, "team/app", tag, i+1)
		if err != nil {
			t.Fatal(err)
		}
		want[d] = nil
		if tag != "" {
			want[d] = []string{tag}
		}
	}
	if len(want) != 4 {
		t.Fatalf("pushed %d distinct images, want 4: %v", len(want), want)
	}
	if _, err := seed.ECR.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("team/app"), LifecyclePolicyText: aws.String(classicLifecycle)}); err != nil {
		t.Fatal(err)
	}
	if _, err := seed.PushImage(ctx, "bare", "v1"); err != nil {
		t.Fatal(err)
	}

	t.Run("the lifecycle policy comes back as put", func(t *testing.T) {
		text, found, err := newLookups(t, direct).LifecyclePolicy(ctx, repo("team/app"))
		if err != nil || !found || !jsonEqual(t, text, classicLifecycle) {
			t.Fatalf("= %q, %v, %v; want the policy put", text, found, err)
		}
	})
	t.Run("a repository without a lifecycle policy has none", func(t *testing.T) {
		if text, found, err := newLookups(t, direct).LifecyclePolicy(ctx, repo("bare")); err != nil || found || text != "" {
			t.Fatalf("= %q, %v, %v; want not found", text, found, err)
		}
	})
	t.Run("a missing repository is ErrRepositoryNotFound", func(t *testing.T) {
		l := newLookups(t, direct)
		if _, _, err := l.LifecyclePolicy(ctx, repo("ghost")); !errors.Is(err, awsclient.ErrRepositoryNotFound) {
			t.Errorf("LifecyclePolicy: err = %v, want ErrRepositoryNotFound", err)
		}
		if _, err := l.RepositoryImages(ctx, repo("ghost")); !errors.Is(err, awsclient.ErrRepositoryNotFound) {
			t.Errorf("RepositoryImages: err = %v, want ErrRepositoryNotFound", err)
		}
	})
	t.Run("every image is listed with its digest, tags and push time", func(t *testing.T) {
		images, err := newLookups(t, direct).RepositoryImages(ctx, repo("team/app"))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for _, d := range images {
			got[d.Digest] = d.Tags
			if d.ID.Digest != d.Digest {
				t.Errorf("%s: ID = %+v, want its digest", d.Digest, d.ID)
			}
			if d.PushedAt.Before(pushStart) || d.PushedAt.After(time.Now()) {
				t.Errorf("%s: pushed at %v, want since %v", d.Digest, d.PushedAt, pushStart)
			}
			// What moto fills beyond digest, tags and push time: reported,
			// not required, since the evaluator's tests supply the rest.
			t.Logf("moto: %s tags %v media type %q status %q pulled %v archived %v activated %v",
				d.Digest, d.Tags, d.ManifestMediaType, d.Status, d.LastPulledAt, d.LastArchivedAt, d.LastActivatedAt)
		}
		for d, tags := range want {
			if g, ok := got[d]; !ok || !slices.Equal(g, tags) {
				t.Errorf("image %s: tags %v (listed: %v), want %v", d, g, ok, tags)
			}
		}
		if len(got) != len(want) {
			t.Errorf("listed %d images, want %d: %v", len(got), len(want), got)
		}
	})
	// moto ignores a DescribeImages request's imageStatus filter and
	// reports no status; the stub gives both as ECR does, so an archived
	// image is listed only if the request asks for every status.
	t.Run("archived images are listed, in one request, then from the cache", func(t *testing.T) {
		stub.SetImageStatus("team/app", v1, ecrtypes.ImageStatusArchived)
		t.Cleanup(func() { stub.SetImageStatus("team/app", v1, ecrtypes.ImageStatusActive) })
		l := newLookups(t, stub.Config())
		before := stub.Calls("DescribeImages")
		for range 2 {
			images, err := l.RepositoryImages(ctx, repo("team/app"))
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(images, func(d awsclient.ImageDetail) bool { return d.Digest == v1 })
			if len(images) != 4 || i < 0 || images[i].Status != "ARCHIVED" {
				t.Fatalf("listed %+v; want 4 images, %s ARCHIVED", images, v1)
			}
		}
		if got := stub.Calls("DescribeImages") - before; got != 1 {
			t.Errorf("%d DescribeImages requests for two listings, want 1", got)
		}
	})
	t.Run("ECR's refusals name the permission", func(t *testing.T) {
		stub.Fail("GetLifecyclePolicy", ecrstub.AccessDenied("GetLifecyclePolicy"))
		defer stub.Clear("GetLifecyclePolicy")
		_, _, err := newLookups(t, stub.Config()).LifecyclePolicy(ctx, repo("team/app"))
		var le *awsclient.LookupError
		if !errors.As(err, &le) || le.Class != awsclient.ClassAccessDenied || le.Action != "ecr:GetLifecyclePolicy" {
			t.Fatalf("err = %v, want access denied to ecr:GetLifecyclePolicy", err)
		}
	})
	// If moto learns the newer grammar, this fails, and the test above can
	// put a policy that archives.
	t.Run("moto rejects the newer lifecycle grammar", func(t *testing.T) {
		_, err := seed.ECR.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("bare"), LifecyclePolicyText: aws.String(archiveLifecycle)})
		var invalid *ecrtypes.InvalidParameterException
		if !errors.As(err, &invalid) || !strings.Contains(err.Error(), "Lifecycle policy validation failure") {
			t.Fatalf("err = %v, want moto's InvalidParameterException for the newer grammar", err)
		}
	})
}
