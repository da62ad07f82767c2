package preflight_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/awsseed"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/ecrstub"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

// These tests drive the engine through the real SDK wire protocol against
// moto_server. moto stores policies but never enforces them: every verdict
// here is the engine's own evaluation.

// account wraps awsseed.Account, failing the test on any seeding error.
type account struct {
	*awsseed.Account
	t *testing.T
}

func newAccount(t *testing.T, cfg aws.Config, id string) *account {
	return &account{Account: awsseed.NewAccount(cfg, id), t: t}
}

func (a *account) pushImage(repo, tag string) string {
	a.t.Helper()
	d, err := a.PushImage(moto.Context(a.t), repo, tag)
	if err != nil {
		a.t.Fatal(err)
	}
	return d
}

func (a *account) setRepositoryPolicy(repo, policy string) {
	a.t.Helper()
	if err := a.SetRepositoryPolicy(moto.Context(a.t), repo, policy); err != nil {
		a.t.Fatal(err)
	}
}

func (a *account) createRole(name string, managed []string, inline map[string]string) string {
	a.t.Helper()
	arn, err := a.CreateRole(moto.Context(a.t), name, managed, inline)
	if err != nil {
		a.t.Fatal(err)
	}
	return arn
}

const readOnlyARN = awsseed.ReadOnlyPolicyARN

func newEngine(t *testing.T, cfg aws.Config, fo awsclient.FactoryOptions, context map[string][]string) *preflight.Engine {
	t.Helper()
	factory, err := awsclient.NewFactory(cfg, fo)
	if err != nil {
		t.Fatalf("building the client factory: %v", err)
	}
	// These tests fix a policy and check again within milliseconds: every
	// re-verification asks AWS (FreshInterval negative), as a person's
	// re-apply after the default interval does.
	e, err := preflight.New(preflight.Options{Lookups: awsclient.NewLookups(factory, awsclient.Options{FreshInterval: -1}), Context: context})
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
	cfg := srv.ConfigAs(awsseed.SeedAccount)
	seed, err := awsseed.PlantSeed(moto.Context(t), awsseed.NewAccount(cfg, awsseed.SeedAccount))
	if err != nil {
		t.Fatal(err)
	}

	e := newEngine(t, cfg, awsclient.FactoryOptions{}, nil)
	r := e.Check(moto.Context(t), []string{seed.Image}, []string{seed.RoleARN})[0]
	expect(t, r, preflight.VerdictNotPullable, preflight.CodeRepositoryPolicyDenies)
	f := r.Findings[0]
	for _, want := range []string{`statement "new policy"`, "retail-sample-app-ui", "ecr:BatchGetImage", "EksNodeGroupRole"} {
		if !strings.Contains(f.Message, want) {
			t.Errorf("message %q does not name %q", f.Message, want)
		}
	}
	if f.Statement != "new policy" || f.Role != seed.RoleARN || f.Action != "ecr:BatchGetImage" {
		t.Errorf("finding = %+v", f)
	}

	// The workshop's fix: Effect Allow. The same engine sees it at once,
	// because a rejection is always re-verified with fresh answers.
	if err := seed.Fix(moto.Context(t)); err != nil {
		t.Fatal(err)
	}
	expect(t, e.Check(moto.Context(t), []string{seed.Image}, []string{seed.RoleARN})[0], preflight.VerdictPullable)
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
		expect(t, check(home.Image("app", "v1"), reader), preflight.VerdictPullable)
	})
	t.Run("an existing digest is pullable", func(t *testing.T) {
		expect(t, check(home.Image("app", digest), reader), preflight.VerdictPullable)
	})
	t.Run("a missing tag is ImageNotFound", func(t *testing.T) {
		expect(t, check(home.Image("app", "v404"), reader), preflight.VerdictNotPullable, preflight.CodeImageNotFound)
	})
	t.Run("a missing digest is ImageNotFound", func(t *testing.T) {
		expect(t, check(home.Image("app", "sha256:"+strings.Repeat("0", 64)), reader), preflight.VerdictNotPullable, preflight.CodeImageNotFound)
	})
	t.Run("a missing repository is RepositoryNotFound", func(t *testing.T) {
		expect(t, check(home.Image("no-such-repo", "v1"), reader), preflight.VerdictNotPullable, preflight.CodeRepositoryNotFound)
	})
	t.Run("an inline Deny is IdentityPolicyDenies naming its Sid", func(t *testing.T) {
		r := check(home.Image("app", "v1"), inlineDeny)
		expect(t, r, preflight.VerdictNotPullable, preflight.CodeIdentityPolicyDenies)
		if r.Findings[0].Statement != "NoApp" {
			t.Errorf("statement %q, want NoApp", r.Findings[0].Statement)
		}
	})
	t.Run("a role with no policies can get neither a token nor the image", func(t *testing.T) {
		expect(t, check(home.Image("app", "v1"), empty), preflight.VerdictNotPullable, preflight.CodeAuthTokenNotAllowed, preflight.CodePullNotAllowed)
	})
	t.Run("a condition on a key unknown at admission time is Undetermined", func(t *testing.T) {
		r := check(home.Image("vpce-only", "v1"), reader)
		expect(t, r, preflight.VerdictUnknown, preflight.CodeUndetermined)
		if !slices.Contains(r.Findings[0].UnknownKeys, "aws:SourceVpce") {
			t.Errorf("unknown keys %v do not name aws:SourceVpce", r.Findings[0].UnknownKeys)
		}
	})
	t.Run("the same condition is decided once the value is configured", func(t *testing.T) {
		withVpce := newEngine(t, cfg, awsclient.FactoryOptions{}, map[string][]string{"aws:SourceVpce": {"vpce-0abc1234"}})
		expect(t, withVpce.Check(moto.Context(t), []string{home.Image("vpce-only", "v1")}, []string{reader})[0], preflight.VerdictPullable)
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
	img := registry.Image("shared/base", "1")

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

// The tests below go through the ECR stub (package ecrstub) in front of
// moto, for what moto alone cannot answer: archived images, pull-through
// cache rules, and ECR failing a lookup.

const (
	// pullOnlyARN is the AWS managed policy that, unlike ReadOnly, grants
	// ecr:BatchImportUpstreamImage (moto loads the managed policies).
	pullOnlyARN = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly"
	// stubCallTimeout replaces the 2 s default of awsclient's CallTimeout:
	// moto takes over a second to answer its first DescribeImages (and the
	// first after another account was used), which two busy cores stretch
	// past 2 s. These tests check verdicts, not deadlines.
	stubCallTimeout = 10 * time.Second
)

// newStubEngine is an engine over cfg (the stub's) with lookups of its own
// (no answer cached from an earlier case) and a call timeout moto can meet.
func newStubEngine(t *testing.T, cfg aws.Config) *preflight.Engine {
	t.Helper()
	factory, err := awsclient.NewFactory(cfg, awsclient.FactoryOptions{})
	if err != nil {
		t.Fatalf("building the client factory: %v", err)
	}
	e, err := preflight.New(preflight.Options{Lookups: awsclient.NewLookups(factory, awsclient.Options{CallTimeout: stubCallTimeout})})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// checkOne runs a fresh engine over cfg on one image for roles.
func checkOne(t *testing.T, cfg aws.Config, image string, roles ...string) preflight.Result {
	t.Helper()
	return newStubEngine(t, cfg).Check(moto.Context(t), []string{image}, roles)[0]
}

// finding returns r's first finding with code, failing t when there is none.
func finding(t *testing.T, r preflight.Result, code preflight.Code) preflight.Finding {
	t.Helper()
	i := slices.IndexFunc(r.Findings, func(f preflight.Finding) bool { return f.Code == code })
	if i < 0 {
		t.Fatalf("%s: no %s finding among %+v", r.Image, code, r.Findings)
	}
	return r.Findings[i]
}

// expectUnordered is expect for findings whose order is not the point.
func expectUnordered(t *testing.T, r preflight.Result, verdict preflight.Verdict, codes ...preflight.Code) {
	t.Helper()
	got := slices.Sorted(slices.Values(findingCodes(r)))
	want := slices.Sorted(slices.Values(codes))
	if r.Verdict != verdict || !slices.Equal(got, want) {
		t.Fatalf("%s: got %s %v, want %s with %v (in any order)\nfindings: %+v", r.Image, r.Verdict, findingCodes(r), verdict, codes, r.Findings)
	}
}

// wantIn fails t for each of subs that text lacks.
func wantIn(t *testing.T, what, text string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(text, sub) {
			t.Errorf("%s %q does not contain %q", what, text, sub)
		}
	}
}

// TestArchivedImagesThroughTheECRStub: an image that a lifecycle rule
// archived exists (DescribeImages with imageStatus=ANY finds it) but cannot
// be pulled until restored; while it is being restored the answer is open.
func TestArchivedImagesThroughTheECRStub(t *testing.T) {
	stub := ecrstub.Start(t, moto.Start(t))
	cfg := stub.Config()
	home := newAccount(t, cfg, moto.DefaultAccount)
	digest := home.pushImage("team/cold", "v1")
	reader := home.createRole("Reader", []string{readOnlyARN}, nil)
	byTag, byDigest := home.Image("team/cold", "v1"), home.Image("team/cold", digest)

	setStatus := func(t *testing.T, status ecrtypes.ImageStatus) {
		stub.SetImageStatus("team/cold", digest, status)
		t.Cleanup(func() { stub.SetImageStatus("team/cold", digest, ecrtypes.ImageStatusActive) })
	}

	t.Run("an archived image is ImageArchived with the restore command", func(t *testing.T) {
		setStatus(t, ecrtypes.ImageStatusArchived)
		for _, img := range []string{byTag, byDigest} {
			r := checkOne(t, cfg, img, reader)
			expect(t, r, preflight.VerdictNotPullable, preflight.CodeImageArchived)
			f := r.Findings[0]
			if f.Severity != preflight.SeverityError {
				t.Errorf("%s: severity %s, want error", img, f.Severity)
			}
			wantIn(t, "message", f.Message, "archived", "team/cold", digest)
			wantIn(t, "fix", f.Fix, "aws ecr update-image-storage-class", "--repository-name team/cold",
				"--image-id imageDigest="+digest, "--target-storage-class STANDARD")
		}
	})
	t.Run("without a node role an archived image is still not pullable", func(t *testing.T) {
		setStatus(t, ecrtypes.ImageStatusArchived)
		expect(t, checkOne(t, cfg, byTag), preflight.VerdictNotPullable, preflight.CodeImageArchived)
	})
	t.Run("an image being restored is unknown, with an ImageArchived warning", func(t *testing.T) {
		setStatus(t, ecrtypes.ImageStatusActivating)
		r := checkOne(t, cfg, byTag, reader)
		expect(t, r, preflight.VerdictUnknown, preflight.CodeImageArchived)
		if f := r.Findings[0]; f.Severity != preflight.SeverityWarning || !strings.Contains(f.Message, "being restored") {
			t.Errorf("finding = %+v, want a warning that it is being restored", f)
		}
	})
	t.Run("once restored it is pullable again", func(t *testing.T) {
		setStatus(t, ecrtypes.ImageStatusActive)
		expect(t, checkOne(t, cfg, byTag, reader), preflight.VerdictPullable)
	})
}

// TestPullThroughCacheThroughTheECRStub: under a pull-through cache rule a
// missing tag is imported from the upstream on the first pull, which the
// node role must allow (ecr:BatchImportUpstreamImage, and
// ecr:CreateRepository when the cache repository does not exist yet).
func TestPullThroughCacheThroughTheECRStub(t *testing.T) {
	stub := ecrstub.Start(t, moto.Start(t))
	cfg := stub.Config()
	home := newAccount(t, cfg, moto.DefaultAccount)
	stub.SetPullThroughCacheRules(ecrstub.Rule{EcrRepositoryPrefix: "docker-hub", UpstreamRegistryURL: "registry-1.docker.io", UpstreamRegistry: "docker-hub"})

	// The roles' managed policies are moto's copies of AWS's: check that
	// the one this test is about is there, or the rest fails obscurely.
	if _, err := home.IAM.GetPolicy(moto.Context(t), &iam.GetPolicyInput{PolicyArn: aws.String(pullOnlyARN)}); err != nil {
		t.Fatalf("moto has no %s (it loads AWS managed policies with MOTO_IAM_LOAD_MANAGED_POLICIES): %v", pullOnlyARN, err)
	}
	pullOnly := home.createRole("PullOnlyNode", []string{pullOnlyARN}, nil)
	readOnly := home.createRole("ReadOnlyNode", []string{readOnlyARN}, nil)
	// The cache repository exists (another tag was pulled through it).
	home.pushImage("docker-hub/library/nginx", "1.25")
	home.pushImage("team/app", "v1")
	missingTag := home.Image("docker-hub/library/nginx", "1.27")
	notCreated := home.Image("docker-hub/library/redis", "7")

	t.Run("a missing tag with PullOnly is imported on the first pull: unknown", func(t *testing.T) {
		r := checkOne(t, cfg, missingTag, pullOnly)
		expect(t, r, preflight.VerdictUnknown, preflight.CodeImageImportedOnPull)
		f := r.Findings[0]
		if f.Severity != preflight.SeverityWarning {
			t.Errorf("severity %s, want warning", f.Severity)
		}
		wantIn(t, "message", f.Message, "registry-1.docker.io", "docker-hub/library/nginx", "1.27")
	})
	t.Run("a missing tag with ReadOnly cannot be imported: PullThroughCacheNotAllowed naming BatchImportUpstreamImage", func(t *testing.T) {
		r := checkOne(t, cfg, missingTag, readOnly)
		expectUnordered(t, r, preflight.VerdictNotPullable, preflight.CodeImageImportedOnPull, preflight.CodePullThroughCacheNotAllowed)
		f := finding(t, r, preflight.CodePullThroughCacheNotAllowed)
		if f.Severity != preflight.SeverityError || f.Action != preflight.ActionBatchImportUpstreamImage || f.Role != readOnly {
			t.Errorf("finding = %+v, want an error about %s for role %s", f, preflight.ActionBatchImportUpstreamImage, readOnly)
		}
		wantIn(t, "message", f.Message, "ecr:BatchImportUpstreamImage", "ReadOnlyNode", "registry-1.docker.io")
		wantIn(t, "fix", f.Fix, "AmazonEC2ContainerRegistryPullOnly")
	})
	t.Run("a cache repository not created yet with ReadOnly needs CreateRepository too", func(t *testing.T) {
		r := checkOne(t, cfg, notCreated, readOnly)
		expectUnordered(t, r, preflight.VerdictNotPullable, preflight.CodeRepositoryNotFound,
			preflight.CodePullThroughCacheNotAllowed, preflight.CodePullThroughCacheNotAllowed)
		if f := finding(t, r, preflight.CodeRepositoryNotFound); f.Severity != preflight.SeverityWarning || !strings.Contains(f.Message, `"docker-hub"`) {
			t.Errorf("RepositoryNotFound = %+v, want a warning naming the rule's prefix", f)
		}
		var actions []string
		for _, f := range r.Findings {
			if f.Code == preflight.CodePullThroughCacheNotAllowed {
				actions = append(actions, f.Action)
				wantIn(t, "message", f.Message, f.Action)
			}
		}
		slices.Sort(actions)
		if want := []string{preflight.ActionBatchImportUpstreamImage, preflight.ActionCreateRepository}; !slices.Equal(actions, want) {
			t.Errorf("PullThroughCacheNotAllowed actions %v, want %v", actions, want)
		}
	})
	t.Run("a cache repository not created yet with PullOnly still needs CreateRepository", func(t *testing.T) {
		r := checkOne(t, cfg, notCreated, pullOnly)
		expectUnordered(t, r, preflight.VerdictNotPullable, preflight.CodeRepositoryNotFound, preflight.CodePullThroughCacheNotAllowed)
		if f := finding(t, r, preflight.CodePullThroughCacheNotAllowed); f.Action != preflight.ActionCreateRepository {
			t.Errorf("finding = %+v, want one about %s", f, preflight.ActionCreateRepository)
		}
	})
	t.Run("a tag already in the cache repository is pullable with ReadOnly", func(t *testing.T) {
		expect(t, checkOne(t, cfg, home.Image("docker-hub/library/nginx", "1.25"), readOnly), preflight.VerdictPullable)
	})
	t.Run("a missing tag outside the rule's prefix is ImageNotFound", func(t *testing.T) {
		expect(t, checkOne(t, cfg, home.Image("team/app", "v404"), pullOnly), preflight.VerdictNotPullable, preflight.CodeImageNotFound)
	})
}

// TestUnreadRepositoryPolicyThroughTheECRStub: the seed with ECR failing
// GetRepositoryPolicy. An unread policy could allow or deny anything, so
// the answer is unknown with a LookupFailed warning: never not-pullable
// (the Deny was not read) and never pullable (the Allow was not read).
func TestUnreadRepositoryPolicyThroughTheECRStub(t *testing.T) {
	stub := ecrstub.Start(t, moto.Start(t))
	cfg := stub.ConfigAs(awsseed.SeedAccount)
	seed, err := awsseed.PlantSeed(moto.Context(t), awsseed.NewAccount(cfg, awsseed.SeedAccount))
	if err != nil {
		t.Fatal(err)
	}
	failures := map[string]ecrstub.Failure{
		"access denied":  ecrstub.AccessDenied("GetRepositoryPolicy"),
		"throttling":     ecrstub.Throttling(),
		"a server error": ecrstub.ServerError(),
	}
	// Both policies, the way the workshop has them: broken, then fixed.
	policies := []struct {
		name    string
		set     func(context.Context) error
		readOK  preflight.Verdict
		okCodes []preflight.Code
	}{
		{"the seed's Deny", seed.Break, preflight.VerdictNotPullable, []preflight.Code{preflight.CodeRepositoryPolicyDenies}},
		{"the fixed policy (Allow)", seed.Fix, preflight.VerdictPullable, nil},
	}
	for _, p := range policies {
		t.Run(p.name, func(t *testing.T) {
			if err := p.set(moto.Context(t)); err != nil {
				t.Fatal(err)
			}
			// The read working first: what the failure must not turn into
			// a rejection (or an acceptance).
			expect(t, checkOne(t, cfg, seed.Image, seed.RoleARN), p.readOK, p.okCodes...)

			for name, failure := range failures {
				t.Run("GetRepositoryPolicy fails with "+name, func(t *testing.T) {
					stub.Fail("GetRepositoryPolicy", failure)
					defer stub.Clear("GetRepositoryPolicy")
					before := stub.Calls("GetRepositoryPolicy")
					r := checkOne(t, cfg, seed.Image, seed.RoleARN)
					if stub.Calls("GetRepositoryPolicy") == before {
						t.Fatal("the engine never asked for the repository policy: the failure was not exercised")
					}
					expect(t, r, preflight.VerdictUnknown, preflight.CodeLookupFailed)
					f := r.Findings[0]
					if f.Severity != preflight.SeverityWarning || f.Fix == "" {
						t.Errorf("finding = %+v, want a warning with a fix", f)
					}
					wantIn(t, "message", f.Message, "repository policy", awsseed.SeedRepository)
					if name == "access denied" {
						wantIn(t, "message", f.Message, "ecr:GetRepositoryPolicy")
					}
				})
			}
		})
	}

	// The other way round, DescribeImages failing: the image's existence is
	// unknown, but a Deny that was read still stands.
	t.Run("DescribeImages failing", func(t *testing.T) {
		stub.Fail("DescribeImages", ecrstub.AccessDenied("DescribeImages"))
		defer stub.Clear("DescribeImages")
		t.Run("with the fixed policy is unknown", func(t *testing.T) {
			if err := seed.Fix(moto.Context(t)); err != nil {
				t.Fatal(err)
			}
			r := checkOne(t, cfg, seed.Image, seed.RoleARN)
			expect(t, r, preflight.VerdictUnknown, preflight.CodeLookupFailed)
			wantIn(t, "message", r.Findings[0].Message, "ecr:DescribeImages")
		})
		t.Run("with the seed's Deny is still RepositoryPolicyDenies", func(t *testing.T) {
			if err := seed.Break(moto.Context(t)); err != nil {
				t.Fatal(err)
			}
			r := checkOne(t, cfg, seed.Image, seed.RoleARN)
			expectUnordered(t, r, preflight.VerdictNotPullable, preflight.CodeLookupFailed, preflight.CodeRepositoryPolicyDenies)
			if f := finding(t, r, preflight.CodeRepositoryPolicyDenies); f.Statement != awsseed.SeedStatement {
				t.Errorf("finding = %+v, want statement %q", f, awsseed.SeedStatement)
			}
		})
	})
}
