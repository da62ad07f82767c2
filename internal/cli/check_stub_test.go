package cli_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecr-preflight/ecr-preflight/internal/cli"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/awsseed"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/ecrstub"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

// stubCallTimeout is --aws-call-timeout for checks against moto: its first
// DescribeImages takes over a second, which two busy cores stretch past
// the 2 s default. These tests check verdicts, not deadlines.
const stubCallTimeout = "--aws-call-timeout=10s"

// checkDoc runs `check --output json` and parses what it printed.
func checkDoc(t *testing.T, args ...string) (code int, doc checkJSON, out string) {
	t.Helper()
	code, out, stderr := run(append([]string{"check", "--output", "json", stubCallTimeout}, args...)...)
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("exit %d; output is not JSON: %v\nstdout: %s\nstderr: %s", code, err, out, stderr)
	}
	if len(doc.Images) != 1 {
		t.Fatalf("want one image in the document:\n%s", out)
	}
	return code, doc, out
}

// codesOf lists the codes of the document's first image's findings.
func codesOf(doc checkJSON) []string {
	var out []string
	for _, f := range doc.Images[0].Findings {
		out = append(out, f.Code)
	}
	return out
}

// TestCheckThroughTheECRStub runs `check` against moto behind the ECR
// stub, which fails lookups and archives images as ECR does.
func TestCheckThroughTheECRStub(t *testing.T) {
	stub := ecrstub.Start(t, moto.Start(t))
	useEndpoint(t, stub.URL)
	ctx := moto.Context(t)
	acct := awsseed.NewAccount(stub.Config(), moto.DefaultAccount)
	seed, err := awsseed.PlantSeed(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	role := "--node-role-arn=" + seed.RoleARN

	failures := map[string]func(op string) ecrstub.Failure{
		"access denied":  ecrstub.AccessDenied,
		"throttling":     func(string) ecrstub.Failure { return ecrstub.Throttling() },
		"a server error": func(string) ecrstub.Failure { return ecrstub.ServerError() },
	}
	policies := []struct {
		name string
		set  func(*testing.T)
	}{
		{"the seed's Deny", func(t *testing.T) {
			if err := seed.Break(moto.Context(t)); err != nil {
				t.Fatal(err)
			}
		}},
		{"the fixed policy", func(t *testing.T) {
			if err := seed.Fix(moto.Context(t)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, p := range policies {
		for _, op := range []string{"GetRepositoryPolicy", "DescribeImages"} {
			for name, failure := range failures {
				t.Run(p.name+": "+op+" failing with "+name, func(t *testing.T) {
					p.set(t)
					stub.Fail(op, failure(op))
					defer stub.Clear(op)
					before := stub.Calls(op)

					code, doc, out := checkDoc(t, role, seed.Image)
					if stub.Calls(op) == before {
						t.Fatalf("check never called %s: the failure was not exercised", op)
					}
					img := doc.Images[0]
					if !slices.Contains(codesOf(doc), "LookupFailed") {
						t.Errorf("no LookupFailed finding:\n%s", out)
					}
					if op == "DescribeImages" && p.name == "the seed's Deny" {
						// The Deny was read: it stands whatever the image's
						// existence, so this rejection is definite.
						if code != cli.ExitFail || img.Verdict != "not-pullable" || !slices.Contains(codesOf(doc), "RepositoryPolicyDenies") {
							t.Fatalf("exit %d, want 1 with RepositoryPolicyDenies (the Deny was read):\n%s", code, out)
						}
						return
					}
					if code != cli.ExitUnknown || img.Verdict != "unknown" {
						t.Fatalf("exit %d verdict %q, want exit 3 and unknown (could not check is not cannot pull):\n%s", code, img.Verdict, out)
					}
					for _, f := range img.Findings {
						if f.Severity == "error" {
							t.Errorf("finding %s is an error; an unread %s must leave only warnings", f.Code, op)
						}
						if f.Code == "LookupFailed" && f.Fix == "" {
							t.Errorf("LookupFailed without a fix: %+v", f)
						}
					}
				})
			}
		}
	}

	t.Run("text output of an unread policy says unknown and LookupFailed", func(t *testing.T) {
		if err := seed.Break(moto.Context(t)); err != nil {
			t.Fatal(err)
		}
		stub.Fail("GetRepositoryPolicy", ecrstub.AccessDenied("GetRepositoryPolicy"))
		defer stub.Clear("GetRepositoryPolicy")
		code, out, stderr := run("check", stubCallTimeout, role, seed.Image)
		if code != cli.ExitUnknown {
			t.Fatalf("exit %d, want 3; stdout %s stderr %s", code, out, stderr)
		}
		for _, want := range []string{"unknown", "warning LookupFailed", "ecr:GetRepositoryPolicy", "fix: "} {
			if !strings.Contains(out, want) {
				t.Errorf("text output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("an archived image exits 1 with ImageArchived and the restore command", func(t *testing.T) {
		digest, err := acct.PushImage(moto.Context(t), "cold", "v1")
		if err != nil {
			t.Fatal(err)
		}
		stub.SetImageStatus("cold", digest, ecrtypes.ImageStatusArchived)
		defer stub.SetImageStatus("cold", digest, ecrtypes.ImageStatusActive)

		code, doc, out := checkDoc(t, role, acct.Image("cold", "v1"))
		if code != cli.ExitFail || doc.Images[0].Verdict != "not-pullable" || !slices.Equal(codesOf(doc), []string{"ImageArchived"}) {
			t.Fatalf("exit %d, want 1 with ImageArchived only:\n%s", code, out)
		}
		f := doc.Images[0].Findings[0]
		if f.Severity != "error" || !strings.Contains(f.Fix, "aws ecr update-image-storage-class") || !strings.Contains(f.Fix, digest) {
			t.Errorf("finding = %+v, want an error whose fix restores %s", f, digest)
		}
	})
}
