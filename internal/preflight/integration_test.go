package preflight_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

// These tests drive the engine through the real SDK wire protocol against
// moto_server. moto stores policies but never enforces them: every verdict
// here is the engine's own evaluation.

const (
	readOnlyARN = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
	trustEC2    = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	manifest    = `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}`
)

// account is one AWS account as moto sees it, with the SDK clients to seed it.
type account struct {
	t   *testing.T
	id  string
	ecr *ecr.Client
	iam *iam.Client
}

func newAccount(t *testing.T, cfg aws.Config, id string) *account {
	return &account{t: t, id: id, ecr: ecr.NewFromConfig(cfg), iam: iam.NewFromConfig(cfg)}
}

// pushImage creates the repository if needed and pushes a manifest under
// tag, returning the digest moto assigned (never computed here).
func (a *account) pushImage(repo, tag string) string {
	a.t.Helper()
	ctx := moto.Context(a.t)
	_, _ = a.ecr.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo)})
	out, err := a.ecr.PutImage(ctx, &ecr.PutImageInput{
		RepositoryName: aws.String(repo), ImageTag: aws.String(tag), ImageManifest: aws.String(manifest),
	})
	if err != nil {
		a.t.Fatalf("pushing %s:%s: %v", repo, tag, err)
	}
	return aws.ToString(out.Image.ImageId.ImageDigest)
}

func (a *account) setRepositoryPolicy(repo, policy string) {
	a.t.Helper()
	if _, err := a.ecr.SetRepositoryPolicy(moto.Context(a.t), &ecr.SetRepositoryPolicyInput{
		RepositoryName: aws.String(repo), PolicyText: aws.String(policy),
	}); err != nil {
		a.t.Fatalf("setting the policy of %s: %v", repo, err)
	}
}

// createRole creates a node role with the given managed policies attached
// and inline policies (name -> document), returning its ARN.
func (a *account) createRole(name string, managed []string, inline map[string]string) string {
	a.t.Helper()
	ctx := moto.Context(a.t)
	out, err := a.iam.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trustEC2)})
	if err != nil {
		a.t.Fatalf("creating role %s: %v", name, err)
	}
	for _, arn := range managed {
		if _, err := a.iam.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(arn)}); err != nil {
			a.t.Fatalf("attaching %s: %v", arn, err)
		}
	}
	for pn, doc := range inline {
		if _, err := a.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn), PolicyDocument: aws.String(doc)}); err != nil {
			a.t.Fatalf("putting inline policy %s: %v", pn, err)
		}
	}
	return aws.ToString(out.Role.Arn)
}

func (a *account) image(repo, ref string) string {
	sep := ":"
	if strings.HasPrefix(ref, "sha256:") {
		sep = "@"
	}
	return fmt.Sprintf("%s.dkr.ecr.%s.amazonaws.com/%s%s%s", a.id, moto.Region, repo, sep, ref)
}

func newEngine(t *testing.T, cfg aws.Config, fo awsclient.FactoryOptions, context map[string][]string) *preflight.Engine {
	t.Helper()
	factory, err := awsclient.NewFactory(cfg, fo)
	if err != nil {
		t.Fatalf("building the client factory: %v", err)
	}
	e, err := preflight.New(preflight.Options{Lookups: awsclient.NewLookups(factory, awsclient.Options{}), Context: context})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func findingCodes(r preflight.Result) []preflight.Code {
	var out []preflight.Code
	for _, f := range r.Findings {
		out = append(out, f.Code)
	}
	return out
}

func expect(t *testing.T, r preflight.Result, verdict preflight.Verdict, codes ...preflight.Code) {
	t.Helper()
	if r.Verdict != verdict || !slices.Equal(findingCodes(r), codes) {
		t.Fatalf("%s: got %s %v, want %s %v\nfindings: %+v", r.Image, r.Verdict, findingCodes(r), verdict, codes, r.Findings)
	}
}

// TestSeedScenarioAgainstMoto replays shared/seed in its own account: the
// image exists, the node role has AmazonEC2ContainerRegistryReadOnly, and
// the repository policy's statement "new policy" denies the role.
func TestSeedScenarioAgainstMoto(t *testing.T) {
	srv := moto.Start(t)
	const seedAccount = "1234567890"
	cfg := srv.ConfigAs(seedAccount)
	acct := newAccount(t, cfg, seedAccount)
	const repo = "retail-sample-app-ui"
	acct.pushImage(repo, "1.2.1")
	role := acct.createRole("EksNodeGroupRole", []string{readOnlyARN}, nil)
	denyPolicy := `{"Version":"2012-10-17","Statement":[{"Sid":"new policy","Effect":"Deny","Principal":{"AWS":"` + role + `"},"Action":["ecr:UploadLayerPart","ecr:SetRepositoryPolicy","ecr:PutImage","ecr:ListImages","ecr:InitiateLayerUpload","ecr:GetRepositoryPolicy","ecr:GetDownloadUrlForLayer","ecr:DescribeRepositories","ecr:DeleteRepositoryPolicy","ecr:DeleteRepository","ecr:CompleteLayerUpload","ecr:BatchGetImage","ecr:BatchDeleteImage","ecr:BatchCheckLayerAvailability"]}]}`
	acct.setRepositoryPolicy(repo, denyPolicy)
	img := acct.image(repo, "1.2.1")

	e := newEngine(t, cfg, awsclient.FactoryOptions{}, nil)
	r := e.Check(moto.Context(t), []string{img}, []string{role})[0]
	expect(t, r, preflight.VerdictNotPullable, preflight.CodeRepositoryPolicyDenies)
	f := r.Findings[0]
	for _, want := range []string{`statement "new policy"`, "retail-sample-app-ui", "ecr:BatchGetImage", "EksNodeGroupRole"} {
		if !strings.Contains(f.Message, want) {
			t.Errorf("message %q does not name %q", f.Message, want)
		}
	}
	if f.Statement != "new policy" || f.Role != role || f.Action != "ecr:BatchGetImage" {
		t.Errorf("finding = %+v", f)
	}

	// The workshop's fix: Effect Allow. The same engine sees it at once,
	// because a rejection is always re-verified with fresh answers.
	acct.setRepositoryPolicy(repo, strings.Replace(denyPolicy, `"Deny"`, `"Allow"`, 1))
	r = e.Check(moto.Context(t), []string{img}, []string{role})[0]
	expect(t, r, preflight.VerdictPullable)
}

func TestEngineAgainstMoto(t *testing.T) {
	srv := moto.Start(t)
	cfg := srv.Config()
	home := newAccount(t, cfg, moto.DefaultAccount)
	digest := home.pushImage("app", "v1")
	reader := home.createRole("Reader", []string{readOnlyARN}, nil)
	empty := home.createRole("Empty", nil, nil)
	inlineDeny := home.createRole("InlineDeny", []string{readOnlyARN}, map[string]string{
		"no-app": `{"Version":"2012-10-17","Statement":[{"Sid":"NoApp","Effect":"Deny","Action":"ecr:BatchGetImage","Resource":"arn:aws:ecr:*:*:repository/app"}]}`,
	})
	home.pushImage("vpce-only", "v1")
	home.setRepositoryPolicy("vpce-only", `{"Version":"2012-10-17","Statement":[{"Sid":"DenyOutsideVpce","Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-0abc1234"}}}]}`)

	e := newEngine(t, cfg, awsclient.FactoryOptions{}, nil)
	check := func(img, role string) preflight.Result {
		t.Helper()
		var roles []string
		if role != "" {
			roles = []string{role}
		}
		return e.Check(moto.Context(t), []string{img}, roles)[0]
	}

	t.Run("an existing tag for a role with the read-only policy is pullable", func(t *testing.T) {
		expect(t, check(home.image("app", "v1"), reader), preflight.VerdictPullable)
	})
	t.Run("an existing digest is pullable", func(t *testing.T) {
		expect(t, check(home.image("app", digest), reader), preflight.VerdictPullable)
	})
	t.Run("a missing tag is ImageNotFound", func(t *testing.T) {
		expect(t, check(home.image("app", "v404"), reader), preflight.VerdictNotPullable, preflight.CodeImageNotFound)
	})
	t.Run("a missing digest is ImageNotFound", func(t *testing.T) {
		expect(t, check(home.image("app", "sha256:"+strings.Repeat("0", 64)), reader), preflight.VerdictNotPullable, preflight.CodeImageNotFound)
	})
	t.Run("a missing repository is RepositoryNotFound", func(t *testing.T) {
		expect(t, check(home.image("no-such-repo", "v1"), reader), preflight.VerdictNotPullable, preflight.CodeRepositoryNotFound)
	})
	t.Run("an inline Deny is IdentityPolicyDenies naming its Sid", func(t *testing.T) {
		r := check(home.image("app", "v1"), inlineDeny)
		expect(t, r, preflight.VerdictNotPullable, preflight.CodeIdentityPolicyDenies)
		if r.Findings[0].Statement != "NoApp" {
			t.Errorf("statement %q, want NoApp", r.Findings[0].Statement)
		}
	})
	t.Run("a role with no policies can get neither a token nor the image", func(t *testing.T) {
		expect(t, check(home.image("app", "v1"), empty), preflight.VerdictNotPullable, preflight.CodeAuthTokenNotAllowed, preflight.CodePullNotAllowed)
	})
	t.Run("a condition on a key unknown at admission time is Undetermined", func(t *testing.T) {
		r := check(home.image("vpce-only", "v1"), reader)
		expect(t, r, preflight.VerdictUnknown, preflight.CodeUndetermined)
		if !slices.Contains(r.Findings[0].UnknownKeys, "aws:SourceVpce") {
			t.Errorf("unknown keys %v do not name aws:SourceVpce", r.Findings[0].UnknownKeys)
		}
	})
	t.Run("the same condition is decided once the value is configured", func(t *testing.T) {
		withVpce := newEngine(t, cfg, awsclient.FactoryOptions{}, map[string][]string{"aws:SourceVpce": {"vpce-0abc1234"}})
		expect(t, withVpce.Check(moto.Context(t), []string{home.image("vpce-only", "v1")}, []string{reader})[0], preflight.VerdictPullable)
	})
	t.Run("images elsewhere are skipped", func(t *testing.T) {
		expect(t, check("docker.io/library/nginx:1.27", reader), preflight.VerdictSkipped, preflight.CodeSkipped)
	})
}

// TestCrossAccountAgainstMoto: the node role lives in the home account, the
// image in a registry account reached through an assumed role. Both sides
// must allow.
func TestCrossAccountAgainstMoto(t *testing.T) {
	srv := moto.Start(t)
	const registryAccount = "222233334444"
	home := newAccount(t, srv.Config(), moto.DefaultAccount)
	registry := newAccount(t, srv.ConfigAs(registryAccount), registryAccount)
	registry.pushImage("shared/base", "1")
	node := home.createRole("Node", []string{readOnlyARN}, nil)
	img := registry.image("shared/base", "1")

	e := newEngine(t, srv.Config(), awsclient.FactoryOptions{
		AssumeRoles: map[string]string{registryAccount: "arn:aws:iam::" + registryAccount + ":role/ecr-preflight-reader"},
	}, nil)

	t.Run("without a repository policy granting the node account it is CrossAccountNotAllowed", func(t *testing.T) {
		r := e.Check(context.Background(), []string{img}, []string{node})[0]
		expect(t, r, preflight.VerdictNotPullable, preflight.CodeCrossAccountNotAllowed)
		if !strings.Contains(r.Findings[0].Message, "does not grant") {
			t.Errorf("message %q does not say which side is missing", r.Findings[0].Message)
		}
	})
	t.Run("granted on both sides it is pullable", func(t *testing.T) {
		registry.setRepositoryPolicy("shared/base", `{"Version":"2012-10-17","Statement":[{"Sid":"NodeAccount","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+moto.DefaultAccount+`:root"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}`)
		expect(t, e.Check(context.Background(), []string{img}, []string{node})[0], preflight.VerdictPullable)
	})
}
