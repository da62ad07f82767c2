package cli_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ecr-preflight/ecr-preflight/internal/cli"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/awsseed"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

// checkJSON mirrors the documented `check --output json` document.
type checkJSON struct {
	Images []struct {
		Image    string `json:"image"`
		Verdict  string `json:"verdict"`
		Findings []struct {
			Code      string `json:"code"`
			Severity  string `json:"severity"`
			Role      string `json:"role"`
			Action    string `json:"action"`
			Statement string `json:"statement"`
			Message   string `json:"message"`
			Fix       string `json:"fix"`
		} `json:"findings"`
	} `json:"images"`
}

// useMoto points the SDK's default chain at srv through the standard
// environment variables, as a user would.
func useMoto(t *testing.T, srv *moto.Server) { useEndpoint(t, srv.URL) }

// useEndpoint is useMoto for any endpoint speaking AWS's protocols, such as
// an ecrstub.Stub in front of moto.
func useEndpoint(t *testing.T, url string) {
	t.Setenv("AWS_ENDPOINT_URL", url)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_REGION", moto.Region)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
}

func run(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = cli.Execute(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCheckAgainstMoto(t *testing.T) {
	srv := moto.Start(t)
	useMoto(t, srv)
	ctx := moto.Context(t)
	acct := awsseed.NewAccount(srv.Config(), moto.DefaultAccount)
	seed, err := awsseed.PlantSeed(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acct.PushImage(ctx, "open", "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := acct.PushImage(ctx, "vpce-only", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := acct.SetRepositoryPolicy(ctx, "vpce-only", `{"Version":"2012-10-17","Statement":[{"Sid":"OnlyVpce","Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-0abc"}}}]}`); err != nil {
		t.Fatal(err)
	}
	role := "--node-role-arn=" + seed.RoleARN

	t.Run("the seed in JSON: not-pullable, exit 1, naming statement new policy", func(t *testing.T) {
		code, out, stderr := run("check", "--output", "json", role, seed.Image)
		if code != cli.ExitFail {
			t.Fatalf("exit %d, want 1; stderr: %s", code, stderr)
		}
		var doc checkJSON
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
		if len(doc.Images) != 1 || doc.Images[0].Verdict != "not-pullable" || len(doc.Images[0].Findings) != 1 {
			t.Fatalf("unexpected document: %s", out)
		}
		f := doc.Images[0].Findings[0]
		if f.Code != "RepositoryPolicyDenies" || f.Severity != "error" || f.Statement != "new policy" ||
			f.Action != "ecr:BatchGetImage" || f.Role != seed.RoleARN || f.Fix == "" {
			t.Fatalf("finding = %+v", f)
		}
	})
	t.Run("text output shows the verdict, the finding and its fix", func(t *testing.T) {
		code, out, _ := run("check", role, seed.Image)
		if code != cli.ExitFail {
			t.Fatalf("exit %d, want 1", code)
		}
		for _, want := range []string{"not-pullable", "RepositoryPolicyDenies", `statement "new policy"`, "fix: "} {
			if !strings.Contains(out, want) {
				t.Errorf("text output lacks %q:\n%s", want, out)
			}
		}
		if n := strings.Count(out, seed.Image); n != 1 {
			t.Errorf("text output names the image %d times, want once (on its verdict line):\n%s", n, out)
		}
	})
	t.Run("a pullable image and a skipped one exit 0", func(t *testing.T) {
		code, out, stderr := run("check", "-o", "json", role, acct.Image("open", "v1"), "nginx:1.27")
		if code != cli.ExitOK {
			t.Fatalf("exit %d, want 0; stdout %s stderr %s", code, out, stderr)
		}
		var doc checkJSON
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Images[0].Verdict != "pullable" || doc.Images[1].Verdict != "skipped" {
			t.Fatalf("verdicts %s, %s", doc.Images[0].Verdict, doc.Images[1].Verdict)
		}
		if doc.Images[0].Findings == nil {
			t.Error(`findings of a pullable image must be [] in JSON, not null`)
		}
	})
	t.Run("a missing tag exits 1 with ImageNotFound", func(t *testing.T) {
		code, out, _ := run("check", "-o", "json", role, seed.MissingTagImage())
		if code != cli.ExitFail || !strings.Contains(out, `"ImageNotFound"`) {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
	t.Run("an undecidable condition exits 3", func(t *testing.T) {
		code, out, _ := run("check", "-o", "json", role, acct.Image("vpce-only", "v1"))
		if code != cli.ExitUnknown || !strings.Contains(out, `"Undetermined"`) || !strings.Contains(out, "aws:SourceVpce") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
	t.Run("the condition's value given with --context decides it", func(t *testing.T) {
		code, out, _ := run("check", "-o", "json", "--context", "aws:SourceVpce=vpce-0abc", role, acct.Image("vpce-only", "v1"))
		if code != cli.ExitOK {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
}

func TestCheckUsageErrors(t *testing.T) {
	tests := map[string][]string{
		"no image":                           {"check"},
		"an unknown output format":           {"check", "--output", "yaml", "nginx"},
		"a node role that is not a role ARN": {"check", "--node-role-arn", "arn:aws:iam::123456789012:user/bob", "nginx"},
		"a malformed --context":              {"check", "--context", "novalue", "nginx"},
		"an assumed role in another account": {"check", "--assume-role", "210987654321=arn:aws:iam::123456789012:role/R", "nginx"},
		"an unknown flag":                    {"check", "--frobnicate", "nginx"},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			code, out, stderr := run(args...)
			if code != cli.ExitUsage {
				t.Fatalf("exit %d, want 2; stdout %q stderr %q", code, out, stderr)
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n"); stderr == "" || lines > 0 {
				t.Fatalf("want a one-line error on stderr, got %q", stderr)
			}
		})
	}
}
