package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecr-preflight/ecr-preflight/internal/cli"
	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy/corpustest"
)

// TestPolicyEvalCorpus runs every corpus case through the CLI, so the corpus
// proves the command as well as the library.
func TestPolicyEvalCorpus(t *testing.T) {
	files, err := corpustest.Load("../iampolicy/testdata/corpus")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no corpus files")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f.Path), ".json"), func(t *testing.T) {
			for _, c := range f.Cases {
				t.Run(c.Name, func(t *testing.T) {
					if err := c.Validate(); err != nil {
						t.Fatal(err)
					}
					var out, errOut bytes.Buffer
					code := cli.Execute([]string{"policy", "eval", "-"}, bytes.NewReader(c.Request), &out, &errOut)
					if c.Expect.Error != "" {
						checkUsageError(t, code, out.String(), errOut.String(), c.Expect.Error)
						return
					}
					if code != cli.ExitOK {
						t.Fatalf("exit code = %d, want 0; stderr: %s", code, errOut.String())
					}
					var got iampolicy.Decision
					if err := json.Unmarshal(out.Bytes(), &got); err != nil {
						t.Fatalf("decoding output %q: %v", out.String(), err)
					}
					for _, d := range c.CheckDecision(got) {
						t.Error(d)
					}
				})
			}
		})
	}
}

func checkUsageError(t *testing.T, code int, stdout, stderr, want string) {
	t.Helper()
	if code != cli.ExitUsage {
		t.Errorf("exit code = %d, want %d", code, cli.ExitUsage)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
	if !strings.HasPrefix(stderr, "error: ") || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr = %q, want one line starting with \"error: \"", stderr)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr = %q, want it to contain %q", stderr, want)
	}
}

const pullRequest = `{"principal": "arn:aws:iam::111122223333:role/Node",
 "action": "ecr:BatchGetImage",
 "resource": "arn:aws:ecr:us-west-2:111122223333:repository/app",
 "identityPolicies": [{"name": "ReadOnly", "document": {"Version": "2012-10-17",
   "Statement": [{"Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": "*"}]}}]}`

func TestPolicyEval(t *testing.T) {
	dir := t.TempDir()
	reqFile := filepath.Join(dir, "req.json")
	if err := os.WriteFile(reqFile, []byte(pullRequest), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args      []string
		stdin     string
		wantCode  int
		wantOut   string
		wantError string
	}{
		"a request file is read and the decision printed as indented JSON": {
			args:     []string{"policy", "eval", reqFile},
			wantCode: cli.ExitOK,
			wantOut: `{
  "decision": "allow",
  "reasons": [
    {
      "policy": "identity",
      "name": "ReadOnly",
      "statement": "#0",
      "effect": "Allow"
    }
  ],
  "unknownKeys": []
}
`,
		},
		"standard input is read when no file is named": {
			args:     []string{"policy", "eval"},
			stdin:    pullRequest,
			wantCode: cli.ExitOK,
			wantOut:  `"decision": "allow"`,
		},
		"an implicit deny still exits 0 and names what is missing": {
			args:     []string{"policy", "eval", "-"},
			stdin:    strings.Replace(pullRequest, `"ecr:BatchGetImage", "Resource"`, `"ecr:ListImages", "Resource"`, 1),
			wantCode: cli.ExitOK,
			wantOut:  `"missing": [`,
		},
		"a missing file is a usage error": {
			args:      []string{"policy", "eval", filepath.Join(dir, "nope.json")},
			wantCode:  cli.ExitUsage,
			wantError: "reading request",
		},
		"malformed JSON is a usage error": {
			args:      []string{"policy", "eval", "-"},
			stdin:     `{"principal": `,
			wantCode:  cli.ExitUsage,
			wantError: "invalid JSON",
		},
		"an invalid Effect is reported with its JSON path": {
			args:      []string{"policy", "eval", "-"},
			stdin:     strings.Replace(pullRequest, `"Allow"`, `"Permit"`, 1),
			wantCode:  cli.ExitUsage,
			wantError: `identityPolicies[0].document.Statement[0].Effect: must be "Allow" or "Deny", got "Permit"`,
		},
		"two files are a usage error": {
			args:      []string{"policy", "eval", "a", "b"},
			wantCode:  cli.ExitUsage,
			wantError: "accepts at most 1 arg",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := cli.Execute(tc.args, strings.NewReader(tc.stdin), &out, &errOut)
			if tc.wantError != "" {
				checkUsageError(t, code, out.String(), errOut.String(), tc.wantError)
				return
			}
			if code != tc.wantCode {
				t.Fatalf("exit code = %d, want %d; stderr: %s", code, tc.wantCode, errOut.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("stdout = %s, want it to contain %s", out.String(), tc.wantOut)
			}
		})
	}
}
