package awsclient_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

const (
	manifest = `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",` +
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},` +
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":3,"digest":"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}]}`
	repoPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"NodesPull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}`
	// The Sid has a space, a plus and a percent sign: URL-decoding must
	// give them back unchanged.
	motoInlineDoc   = `{"Version":"2012-10-17","Statement":[{"Sid":"Deny secret+50% off","Effect":"Deny","Action":"ecr:BatchGetImage","Resource":"arn:aws:ecr:*:*:repository/secret/*"}]}`
	motoBoundaryDoc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:*","sts:*"],"Resource":"*"}]}`
	otherAccount    = "210987654321"
	// motoCallTimeout replaces the 2 s default of Options.CallTimeout: moto
	// takes over a second to answer its first DescribeImages, and again the
	// first after another account was used, which a busy machine stretches
	// past 2 s. These tests check answers, not deadlines.
	motoCallTimeout = 10 * time.Second
)

// jsonEqual compares documents by meaning: moto may re-serialise them.
func jsonEqual(t *testing.T, got, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Errorf("not JSON: %q: %v", got, err)
		return false
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(g, w)
}

func TestLookupsAgainstMoto(t *testing.T) {
	s := moto.Start(t)
	ctx := moto.Context(t)
	cfg := s.Config()
	cfg.Retryer = awsclient.NewRetryer(awsclient.RetryOptions{})

	// --- ECR: a repository with an image and a policy ---
	ecrc := ecr.NewFromConfig(cfg)
	if _, err := ecrc.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("team/app")}); err != nil {
		t.Fatal(err)
	}
	put, err := ecrc.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(manifest), ImageTag: aws.String("v1")})
	if err != nil {
		t.Fatal(err)
	}
	digest := aws.ToString(put.Image.ImageId.ImageDigest) // moto's digest is not the manifest's sha256: never compute it
	if _, err := ecrc.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("team/app"), PolicyText: aws.String(repoPolicy)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ecrc.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("bare")}); err != nil {
		t.Fatal(err)
	}

	// --- IAM: a node role with a managed, an inline and a boundary policy and tags ---
	iamc := iam.NewFromConfig(cfg)
	boundary, err := iamc.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("node-boundary"), PolicyDocument: aws.String(motoBoundaryDoc)})
	if err != nil {
		t.Fatal(err)
	}
	role, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName: aws.String("node"), Path: aws.String("/eks/"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`),
		PermissionsBoundary:      boundary.Policy.Arn,
		Tags:                     []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String("platform")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iamc.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("node"), PolicyArn: aws.String(readOnlyARN)}); err != nil {
		t.Fatal(err)
	}
	if _, err := iamc.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("node"), PolicyName: aws.String("deny-secret"), PolicyDocument: aws.String(motoInlineDoc)}); err != nil {
		t.Fatal(err)
	}
	if _, err := iamc.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String("node"), Tags: []iamtypes.Tag{{Key: aws.String("env"), Value: aws.String("prod")}}}); err != nil {
		t.Fatal(err)
	}

	// --- a second account's registry, read through an assumed role ---
	other := ecr.NewFromConfig(s.ConfigAs(otherAccount))
	if _, err := other.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("shared/base")}); err != nil {
		t.Fatal(err)
	}
	otherPut, err := other.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("shared/base"), ImageManifest: aws.String(manifest), ImageTag: aws.String("2026")})
	if err != nil {
		t.Fatal(err)
	}

	factory, err := awsclient.NewFactory(cfg, awsclient.FactoryOptions{
		AssumeRoles: map[string]string{otherAccount: "arn:aws:iam::" + otherAccount + ":role/preflight-reader"},
	})
	if err != nil {
		t.Fatal(err)
	}
	l := awsclient.NewLookups(factory, awsclient.Options{CallTimeout: motoCallTimeout})

	t.Run("an image by tag is found with moto's digest", func(t *testing.T) {
		found, missing, err := l.DescribeImages(ctx, awsclient.Repository{Registry: awsclient.Registry{Region: moto.Region, Account: moto.DefaultAccount}, Name: "team/app"}, []awsclient.ImageID{{Tag: "v1"}})
		if err != nil || len(missing) != 0 || len(found) != 1 || found[0].Digest != digest || !slices.Contains(found[0].Tags, "v1") {
			t.Fatalf("found %+v, missing %v, err %v; want v1 with digest %s", found, missing, err, digest)
		}
	})
	t.Run("missing tag and digest are told apart from present ones in one batch", func(t *testing.T) {
		absent := "sha256:" + strings.Repeat("0", 64)
		found, missing, err := l.DescribeImages(ctx, awsclient.Repository{Registry: awsclient.Registry{Region: moto.Region, Account: moto.DefaultAccount}, Name: "team/app"},
			[]awsclient.ImageID{{Digest: digest}, {Tag: "v9"}, {Digest: absent}})
		if err != nil {
			t.Fatal(err)
		}
		if len(found) != 1 || found[0].Digest != digest {
			t.Errorf("found = %+v, want the pushed digest", found)
		}
		if want := []awsclient.ImageID{{Tag: "v9"}, {Digest: absent}}; !slices.Equal(missing, want) {
			t.Errorf("missing = %v, want %v", missing, want)
		}
	})
	t.Run("a missing repository is ErrRepositoryNotFound", func(t *testing.T) {
		_, _, err := l.DescribeImages(ctx, awsclient.Repository{Registry: awsclient.Registry{Region: moto.Region, Account: moto.DefaultAccount}, Name: "ghost"}, []awsclient.ImageID{{Tag: "v1"}})
		if !errors.Is(err, awsclient.ErrRepositoryNotFound) {
			t.Fatalf("err = %v, want ErrRepositoryNotFound", err)
		}
	})
	t.Run("repository policies: present, absent, repository missing", func(t *testing.T) {
		text, found, err := l.RepositoryPolicy(ctx, awsclient.Repository{Registry: awsclient.Registry{Region: moto.Region, Account: moto.DefaultAccount}, Name: "team/app"})
		if err != nil || !found || !jsonEqual(t, text, repoPolicy) {
			t.Errorf("team/app: %q, %v, %v", text, found, err)
		}
		if _, found, err := l.RepositoryPolicy(ctx, awsclient.Repository{Registry: awsclient.Registry{Region: moto.Region, Account: moto.DefaultAccount}, Name: "bare"}); err != nil || found {
			t.Errorf("bare: found %v, err %v; want no policy", found, err)
		}
		if _, _, err := l.RepositoryPolicy(ctx, awsclient.Repository{Registry: awsclient.Registry{Region: moto.Region, Account: moto.DefaultAccount}, Name: "ghost"}); !errors.Is(err, awsclient.ErrRepositoryNotFound) {
			t.Errorf("ghost: err %v, want ErrRepositoryNotFound", err)
		}
	})
	t.Run("a role's policies come back URL-decoded with boundary and tags", func(t *testing.T) {
		rp, err := l.RolePolicies(ctx, aws.ToString(role.Role.Arn))
		if err != nil {
			t.Fatal(err)
		}
		if len(rp.Attached) != 1 || rp.Attached[0].Name != "AmazonEC2ContainerRegistryReadOnly" ||
			!strings.Contains(rp.Attached[0].Document, `"ecr:GetAuthorizationToken"`) || !json.Valid([]byte(rp.Attached[0].Document)) {
			t.Errorf("Attached = %+v, want the AWS managed read-only policy as JSON", rp.Attached)
		}
		if len(rp.Inline) != 1 || rp.Inline[0].Name != "deny-secret" || !jsonEqual(t, rp.Inline[0].Document, motoInlineDoc) {
			t.Errorf("Inline = %+v, want deny-secret decoded exactly", rp.Inline)
		}
		if rp.Boundary == nil || rp.Boundary.ARN != aws.ToString(boundary.Policy.Arn) || !jsonEqual(t, rp.Boundary.Document, motoBoundaryDoc) {
			t.Errorf("Boundary = %+v", rp.Boundary)
		}
		if rp.Tags["team"] != "platform" || rp.Tags["env"] != "prod" {
			t.Errorf("Tags = %v", rp.Tags)
		}
		// The decoding above is exercised only if moto encodes, as IAM does.
		raw, err := iamc.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("node"), PolicyName: aws.String("deny-secret")})
		if err != nil {
			t.Fatal(err)
		}
		if doc := aws.ToString(raw.PolicyDocument); !strings.HasPrefix(doc, "%7B") {
			t.Errorf("moto returned the inline policy as %q, not URL-encoded: the decoding is untested", doc)
		}
	})
	t.Run("a missing role is ErrRoleNotFound", func(t *testing.T) {
		if _, err := l.RolePolicies(ctx, "arn:aws:iam::123456789012:role/ghost"); !errors.Is(err, awsclient.ErrRoleNotFound) {
			t.Fatalf("err = %v, want ErrRoleNotFound", err)
		}
	})
	t.Run("the own registry has no registry policy", func(t *testing.T) {
		if _, found, err := l.RegistryPolicy(ctx, awsclient.Registry{Region: moto.Region, Account: moto.DefaultAccount}); err != nil || found {
			t.Fatalf("found %v, err %v; want none", found, err)
		}
	})
	t.Run("another account's registry is read through the assumed role", func(t *testing.T) {
		found, _, err := l.DescribeImages(ctx, awsclient.Repository{Registry: awsclient.Registry{Region: moto.Region, Account: otherAccount}, Name: "shared/base"}, []awsclient.ImageID{{Tag: "2026"}})
		if err != nil || len(found) != 1 || found[0].Digest != aws.ToString(otherPut.Image.ImageId.ImageDigest) {
			t.Fatalf("found %+v, err %v", found, err)
		}
		if _, found, err := l.RegistryPolicy(ctx, awsclient.Registry{Region: moto.Region, Account: otherAccount}); err != nil || found {
			t.Fatalf("registry policy of the assumed account: found %v, err %v", found, err)
		}
	})
	t.Run("an account without an assumed role has unreadable registry settings", func(t *testing.T) {
		if _, _, err := l.RegistryPolicy(ctx, awsclient.Registry{Region: moto.Region, Account: "333333333333"}); !errors.Is(err, awsclient.ErrNotOwnAccount) {
			t.Fatalf("err = %v, want ErrNotOwnAccount", err)
		}
	})
	// moto 5 does not implement these: they must fail as "unavailable" (a
	// could-not-check), never as an answer. If moto gains them, this test
	// fails and the engine's tests can start relying on them.
	t.Run("operations moto lacks are reported unavailable", func(t *testing.T) {
		_, err := l.RegistryPolicyScope(ctx, awsclient.Registry{Region: moto.Region, Account: moto.DefaultAccount})
		if awsclient.ClassOf(err) != awsclient.ClassUnavailable {
			t.Errorf("RegistryPolicyScope err = %v (class %s), want unavailable", err, awsclient.ClassOf(err))
		}
		t.Logf("GetAccountSetting on moto: %v", err)
		_, err = l.PullThroughCacheRules(ctx, awsclient.Registry{Region: moto.Region, Account: moto.DefaultAccount})
		if awsclient.ClassOf(err) != awsclient.ClassUnavailable {
			t.Errorf("PullThroughCacheRules err = %v (class %s), want unavailable", err, awsclient.ClassOf(err))
		}
		t.Logf("DescribePullThroughCacheRules on moto: %v", err)
	})
}
