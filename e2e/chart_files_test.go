package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/ecr-preflight/ecr-preflight/e2e/envtestutil"
	"github.com/ecr-preflight/ecr-preflight/e2e/harness"
	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
)

// The chart's files checked against each other, without an API server:
// the generated README, values.yaml against values.schema.json, and the
// IAM policy against the permissions the README lists.

// chartDir is the chart, relative to the repository root.
const chartDir = "charts/ecr-preflight"

func repoFile(t *testing.T, rel string) []byte {
	t.Helper()
	root, err := envtestutil.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestChartREADMEIsCurrent fails when charts/ecr-preflight/README.md is not
// what helm-docs makes of values.yaml and README.md.gotmpl: CI's check that
// the chart's documentation was regenerated (`make chart-docs`).
func TestChartREADMEIsCurrent(t *testing.T) {
	helmDocs := harness.Tool(t, "helm-docs")
	root, err := envtestutil.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, helmDocs, "--chart-search-root", "charts", "--dry-run", "--log-level", "warning")
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm-docs: %v\n%s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("helm-docs warned:\n%s", stderr.String())
	}
	want := stdout.Bytes()
	got := repoFile(t, chartDir+"/README.md")
	if !bytes.Equal(got, want) {
		t.Errorf("%s/README.md is stale: run `make chart-docs` and commit it (first difference at line %d)", chartDir, firstDiffLine(got, want))
	}
	// Every value is documented: helm-docs puts the "# --" comment in the
	// table's last column.
	_, table, ok := strings.Cut(string(want), "| Key | Type | Default | Description |")
	if !ok {
		t.Fatal("the generated README has no values table")
	}
	key := regexp.MustCompile(`^[a-zA-Z][\w.\[\]]*$`)
	rows := 0
	for line := range strings.Lines(table) {
		cells := strings.Split(strings.TrimSpace(line), "|")
		if len(cells) != 6 || !key.MatchString(strings.TrimSpace(cells[1])) {
			continue
		}
		rows++
		if strings.TrimSpace(cells[4]) == "" {
			t.Errorf("value %s has no description in values.yaml (a `# --` comment)", strings.TrimSpace(cells[1]))
		}
	}
	if rows < 50 {
		t.Errorf("the values table has %d rows; is it the table of every value?", rows)
	}
}

func firstDiffLine(a, b []byte) int {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

// TestChartValuesMatchSchema: values.yaml and values.schema.json name the
// same keys, object by object, and every object of the schema that has
// fixed properties forbids any other (a typo fails the install).
func TestChartValuesMatchSchema(t *testing.T) {
	var values map[string]any
	if err := yaml.Unmarshal(repoFile(t, chartDir+"/values.yaml"), &values); err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	var schema map[string]any
	if err := json.Unmarshal(repoFile(t, chartDir+"/values.schema.json"), &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	compareKeys(t, "", values, schema)
}

func compareKeys(t *testing.T, path string, values any, schema map[string]any) {
	t.Helper()
	props, ok := schema["properties"].(map[string]any)
	if !ok {
		return // free-form (labels, annotations) or a Kubernetes object passed through
	}
	if ap, ok := schema["additionalProperties"].(bool); !ok || ap {
		t.Errorf("schema of %q: additionalProperties must be false", orRoot(path))
	}
	m, ok := values.(map[string]any)
	if !ok {
		t.Errorf("values.yaml %q is %T, the schema describes an object", orRoot(path), values)
		return
	}
	for _, k := range sortedKeys(m) {
		if _, ok := props[k]; !ok {
			t.Errorf("values.yaml has %s, which values.schema.json lacks", path+k)
		}
	}
	if len(m) == 0 {
		return // an optional object, empty by default: its keys are documented in its comment
	}
	for _, k := range sortedKeys(props) {
		v, ok := m[k]
		if !ok {
			t.Errorf("values.schema.json has %s, which values.yaml lacks (every value has a documented default)", path+k)
			continue
		}
		if sub, ok := props[k].(map[string]any); ok {
			compareKeys(t, path+k+".", v, sub)
		}
	}
}

func orRoot(path string) string {
	if path == "" {
		return "(root)"
	}
	return strings.TrimSuffix(path, ".")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestChartIAMPolicyGrantsWhatTheREADMEsays: the chart's IAM policy for
// ecr-preflight's own role allows exactly the actions the READMEs list
// (the README's own permissions, and the node pool permissions of the
// chart's README), judged by ecr-preflight's own policy evaluator on the
// resources they are called on, and nothing that downloads image content
// or writes; the chart README's statement for platformCheck=full grants
// the one action the policy leaves out.
func TestChartIAMPolicyGrantsWhatTheREADMEsays(t *testing.T) {
	data := repoFile(t, chartDir+"/iam-policy.json")
	policy, err := iampolicy.ParseAs(data, iampolicy.SourceIdentity)
	if err != nil {
		t.Fatalf("iam-policy.json: %v", err)
	}

	// The README's list: "ecr-preflight's own credentials need `ecr:...`,
	// ... and `sts:GetCallerIdentity`; a missing one ...", and the chart
	// README's "... own credentials also need `eks:...`, ...; a missing
	// one ...".
	var want []string
	for _, src := range []struct{ file, start string }{
		{"README.md", "own credentials need"},
		{chartDir + "/README.md", "own credentials also need"},
	} {
		listed := permissionsListed(t, src.file, src.start)
		if len(listed) == 0 {
			t.Errorf("%s lists no permissions after %q", src.file, src.start)
		}
		want = append(want, listed...)
	}
	slices.Sort(want)
	want = slices.Compact(want)

	var inPolicy struct {
		Statement []struct {
			Action any
		}
	}
	if err := json.Unmarshal(data, &inPolicy); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range inPolicy.Statement {
		switch a := s.Action.(type) {
		case string:
			got = append(got, a)
		case []any:
			for _, x := range a {
				got = append(got, fmt.Sprint(x))
			}
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("iam-policy.json allows %v;\nthe README lists %v", got, want)
	}

	const (
		self      = "arn:aws:iam::111122223333:role/ecr-preflight"
		repo      = "arn:aws:ecr:us-west-2:111122223333:repository/team/app"
		role      = "arn:aws:iam::111122223333:role/EksNodeGroupRole"
		cluster   = "arn:aws:eks:us-west-2:111122223333:cluster/prod"
		nodegroup = "arn:aws:eks:us-west-2:111122223333:nodegroup/prod/spot-arm/a2c6e1f0-4b5d-7e8f-9a0b-1c2d3e4f5a6b"
	)
	resource := map[string]string{
		"ecr:DescribeImages": repo, "ecr:GetRepositoryPolicy": "arn:aws:ecr:eu-west-1:111122223333:repository/shared",
		"ecr:GetRegistryPolicy": "*", "ecr:GetAccountSetting": "*", "ecr:DescribePullThroughCacheRules": "*",
		"iam:GetRole": role, "iam:ListAttachedRolePolicies": role, "iam:ListRolePolicies": role,
		"iam:GetRolePolicy": role, "iam:ListRoleTags": role,
		"iam:GetPolicy":         "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
		"iam:GetPolicyVersion":  "arn:aws:iam::111122223333:policy/boundary",
		"sts:GetCallerIdentity": "*",
		// Node pools and the platform check.
		"eks:ListNodegroups": cluster, "eks:ListFargateProfiles": "arn:aws:eks:eu-west-1:111122223333:cluster/staging",
		"eks:DescribeNodegroup":      nodegroup,
		"eks:DescribeFargateProfile": "arn:aws:eks:eu-west-1:111122223333:fargateprofile/prod/batch/7ec6e1f0-4b5d-7e8f-9a0b-1c2d3e4f5a6b",
		"ec2:DescribeInstances":      "*",
		"iam:GetInstanceProfile":     "arn:aws:iam::111122223333:instance-profile/eks-0ec6e1f0-4b5d-7e8f",
		"ecr:BatchGetImage":          repo,
	}
	set := iampolicy.PolicySet{Identity: []iampolicy.NamedPolicy{{Name: "ecr-preflight", Policy: policy}}}
	for _, action := range want {
		res, ok := resource[action]
		if !ok {
			t.Errorf("no resource to try %s on: add it to this test", action)
			continue
		}
		if d := iampolicy.Evaluate(iampolicy.Request{Principal: self, Action: action, Resource: res}, set); d.Decision != iampolicy.Allow {
			t.Errorf("%s on %s: %s, want allow", action, res, d.Decision)
		}
	}
	for _, forbidden := range []struct{ action, resource string }{
		{"ecr:GetDownloadUrlForLayer", repo}, {"ecr:GetAuthorizationToken", "*"},
		{"ecr:SetRepositoryPolicy", repo}, {"ecr:PutImage", repo},
		{"iam:PassRole", role}, {"iam:PutRolePolicy", role}, {"sts:AssumeRole", role},
		{"eks:UpdateNodegroupConfig", nodegroup}, {"eks:DescribeCluster", cluster}, {"eks:AccessKubernetesApi", cluster},
		{"ec2:TerminateInstances", "*"}, {"iam:AddRoleToInstanceProfile", "arn:aws:iam::111122223333:instance-profile/eks-node"},
	} {
		if d := iampolicy.Evaluate(iampolicy.Request{Principal: self, Action: forbidden.action, Resource: forbidden.resource}, set); d.Decision == iampolicy.Allow {
			t.Errorf("%s on %s is allowed: the policy is not least privilege", forbidden.action, forbidden.resource)
		}
	}

	// platformCheck=full: the README's statement to add grants what the
	// policy leaves out.
	full := fullModeStatement(t)
	fullSet := iampolicy.PolicySet{Identity: []iampolicy.NamedPolicy{{Name: "full", Policy: full}}}
	if d := iampolicy.Evaluate(iampolicy.Request{Principal: self, Action: "ecr:GetDownloadUrlForLayer", Resource: repo}, fullSet); d.Decision != iampolicy.Allow {
		t.Errorf("the chart README's statement for platformCheck=full does not allow ecr:GetDownloadUrlForLayer on %s: %s", repo, d.Decision)
	}
}

// permissionsListed are the actions (`service:Action`) a Markdown file
// lists from the phrase start to the next "a missing one".
func permissionsListed(t *testing.T, file, start string) []string {
	t.Helper()
	text := strings.Join(strings.Fields(string(repoFile(t, file))), " ")
	i := strings.Index(text, start)
	if i < 0 {
		t.Fatalf("%s: the list of ecr-preflight's own permissions (%q ... \"a missing one\") is gone", file, start)
	}
	end := strings.Index(text[i:], "a missing one")
	if end < 0 {
		t.Fatalf("%s: the list of permissions after %q does not end with \"a missing one\"", file, start)
	}
	var out []string
	for _, m := range regexp.MustCompile("`((?:ecr|iam|sts|eks|ec2):[A-Za-z]+)`").FindAllStringSubmatch(text[i:i+end], -1) {
		out = append(out, m[1])
	}
	return out
}

// fullModeStatement is the policy statement the chart's README gives for
// platformCheck=full: the JSON block that names ecr:GetDownloadUrlForLayer.
func fullModeStatement(t *testing.T) *iampolicy.Policy {
	t.Helper()
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(string(repoFile(t, chartDir+"/README.md")), -1)
	for _, b := range blocks {
		if !strings.Contains(b[1], "ecr:GetDownloadUrlForLayer") || strings.Contains(b[1], `"Version"`) {
			continue
		}
		p, err := iampolicy.ParseAs([]byte(`{"Version": "2012-10-17", "Statement": [`+b[1]+`]}`), iampolicy.SourceIdentity)
		if err != nil {
			t.Fatalf("the chart README's statement for platformCheck=full: %v\n%s", err, b[1])
		}
		return p
	}
	t.Fatal("the chart README has no JSON statement granting ecr:GetDownloadUrlForLayer for platformCheck=full")
	return nil
}
