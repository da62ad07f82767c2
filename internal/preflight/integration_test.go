package preflight_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/awsseed"
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
