package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from the current output")

// Fixture names, in the words the engine uses.
const (
	registry    = "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
	generalRole = "arn:aws:iam::111122223333:role/eks-general-node"
	armRole     = "arn:aws:iam::111122223333:role/eks-arm-node"
	toolsImage  = registry + "/base/tools:1.4"
	// badImage is an invalid reference with every character the formats
	// must escape: | for Markdown tables, < and & for XML, ` for code.
	badImage = registry + "/Team|<x>&`y`"
)

var generatedAt = time.Date(2025, 3, 14, 9, 26, 53, 0, time.FixedZone("CET", 3600))

func workload(ns, kind, name string) Workload {
	apiVersion := map[string]string{"Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
		"CronJob": "batch/v1", "Pod": "v1"}[kind]
	return Workload{Kind: kind, Namespace: ns, Name: name, APIVersion: apiVersion, UID: "uid-" + name}
}

// toolsDenied is the finding two workloads share for toolsImage.
var toolsDenied = preflight.Finding{
	Code: preflight.CodeRepositoryPolicyDenies, Severity: preflight.SeverityError,
	Role: generalRole, Action: "ecr:BatchGetImage", Statement: "DenyOutsideOrg",
	Policy:     &preflight.PolicyRef{Kind: preflight.PolicyRepository, Name: "the repository policy of base/tools"},
	Repository: &preflight.RepositoryRef{Name: "base/tools", Account: "111122223333", Region: "eu-west-1"},
	Message:    `statement "DenyOutsideOrg" of the repository policy of base/tools denies ecr:BatchGetImage to role eks-general-node`,
	Fix:        `edit the repository policy of base/tools: remove role eks-general-node from statement "DenyOutsideOrg", narrow its actions, or change its Effect to Allow (aws ecr set-repository-policy --repository-name base/tools --region eu-west-1)`,
	Command:    []string{"aws", "ecr", "set-repository-policy", "--repository-name", "base/tools", "--region", "eu-west-1"},
}

// expiresAt is when fixture's age rule archives ops/backup:1.2.
var expiresAt = time.Date(2025, 3, 18, 0, 0, 0, 0, time.UTC)

// lifecycleFinding is a lifecycle warning of rule priority for repo.
func lifecycleFinding(code preflight.Code, repo string, ref preflight.LifecycleRef, message string) preflight.Finding {
	return preflight.Finding{
		Code: code, Severity: preflight.SeverityWarning,
		Repository: &preflight.RepositoryRef{Name: repo, Account: "111122223333", Region: "eu-west-1"},
		Lifecycle:  &ref,
		Message:    message,
		Fix: fmt.Sprintf("pin the workload to an image the rule keeps, or change lifecycle rule %d so that it keeps this one (aws ecr get-lifecycle-policy --repository-name %s)",
			ref.Priority, repo),
	}
}

// fixtureItems has every shape a report shows, deliberately out of order:
// an error, warnings, an info-only (skipped) image, a partly-pullable image
// with pools and a warning among errors of one code, two workloads sharing
// an image and a finding, one container in two problems, a clean workload,
// a nil Findings, text that needs escaping, and lifecycle warnings of both
// codes, ImageExpiring on more workloads than ImageExpired (so that only
// urgency puts ImageExpired first).
func fixtureItems() []Item {
	return []Item{
		{
			Workload: workload("ops", "Deployment", "backup"), Container: "backup",
			Image: registry + "/ops/backup:1.2", Verdict: preflight.VerdictPullable,
			Findings: []preflight.Finding{lifecycleFinding(preflight.CodeImageExpiring, "ops/backup",
				preflight.LifecycleRef{Priority: 2, Action: "transition", At: &expiresAt},
				"lifecycle rule 2 of repository ops/backup will archive the image on 2025-03-18 00:00 UTC (30 days since it was pushed)")},
		},
		{
			Workload: workload("shop", "StatefulSet", "db"), Container: "metrics",
			Image: registry + "/base/exporter:0.9", Verdict: preflight.VerdictPullable,
			Findings: []preflight.Finding{lifecycleFinding(preflight.CodeImageExpiring, "base/exporter",
				preflight.LifecycleRef{Priority: 1, Action: "expire", AfterPushes: 1},
				"lifecycle rule 1 of repository base/exporter keeps the newest 5 images it selects: the next push it matches will expire this one")},
		},
		{
			Workload: workload("ops", "CronJob", "report"), Container: "report",
			Image: registry + "/ops/report:2024.11", Verdict: preflight.VerdictPullable,
			Findings: []preflight.Finding{lifecycleFinding(preflight.CodeImageExpired, "ops/report",
				preflight.LifecycleRef{Priority: 3, Action: "expire"},
				"lifecycle rule 3 of repository ops/report already selects the image: ECR will expire it shortly (usually within 24 hours)")},
		},
		{
			Workload: workload("shop", "StatefulSet", "db"), Container: "postgres",
			Image: registry + "/base/postgres:16", Verdict: preflight.VerdictPullable,
		},
		{
			Workload: workload("shop", "Deployment", "web"), Container: "web",
			Image: registry + "/shop/web:2.0", Verdict: preflight.VerdictNotPullable,
			Findings: []preflight.Finding{{
				Code: preflight.CodeImageNotFound, Severity: preflight.SeverityError,
				Repository: &preflight.RepositoryRef{Name: "shop/web", Account: "111122223333", Region: "eu-west-1"},
				Message:    "tag 2.0 does not exist in repository shop/web",
				Fix:        "push the image, or fix the reference (aws ecr describe-images --registry-id 111122223333 --repository-name shop/web --region eu-west-1 --image-ids imageTag=2.0)",
			}},
		},
		{
			Workload: workload("ops", "CronJob", "cleanup"), Container: "cleanup",
			Image: toolsImage, Verdict: preflight.VerdictNotPullable,
			Findings: []preflight.Finding{toolsDenied},
		},
		{
			Workload: workload("shop", "Deployment", "api"), Container: "tools",
			Image: toolsImage, Verdict: preflight.VerdictNotPullable,
			Findings: []preflight.Finding{toolsDenied},
		},
		{
			Workload: workload("shop", "Deployment", "api"), Container: "api",
			Image: registry + "/shop/api:3.1", Verdict: preflight.VerdictPartlyPullable,
			Findings: []preflight.Finding{
				{
					Code: preflight.CodePlatformNotAvailable, Severity: preflight.SeverityError,
					Pool: &preflight.PoolRef{Name: "graviton", Kind: "karpenter-nodepool"}, Platforms: []string{"linux/arm64"},
					Message: "Karpenter NodePool graviton runs linux/arm64, and the image has no variant for it (it has linux/amd64)",
					Fix:     "push a multi-platform image that includes linux/arm64 (docker buildx build --platform linux/amd64,linux/arm64 --push), or keep the workload off those nodes (nodeSelector kubernetes.io/arch: amd64)",
				},
				{
					Code: preflight.CodePlatformNotAvailable, Severity: preflight.SeverityWarning,
					Pool: &preflight.PoolRef{Name: "mixed", Kind: "self-managed"}, Platforms: []string{"linux/arm64"},
					Message: "pods placed on linux/arm64 nodes of self-managed nodes mixed will not start: the image has no variant for it (it has linux/amd64)",
					Fix:     "push a multi-platform image that includes linux/arm64 (docker buildx build --platform linux/amd64,linux/arm64 --push), or keep the workload off those nodes (nodeSelector kubernetes.io/arch: amd64)",
				},
				{
					Code: preflight.CodeLookupFailed, Severity: preflight.SeverityWarning,
					Pool:    &preflight.PoolRef{Name: "spot", Kind: "self-managed"},
					Message: "self-managed nodes spot: the IAM role its nodes pull as is not known",
					Fix:     "run `ecr-preflight pools` to see what discovery found; check ecr-preflight's ec2:DescribeInstances and iam:GetInstanceProfile permissions",
				},
			},
			Pools: []preflight.PoolVerdict{
				{PoolRef: preflight.PoolRef{Name: "general", Kind: "managed-node-group"}, Role: generalRole, Platforms: []string{"linux/amd64"}, Verdict: preflight.VerdictPullable},
				{PoolRef: preflight.PoolRef{Name: "graviton", Kind: "karpenter-nodepool"}, Role: armRole, Platforms: []string{"linux/arm64"}, Verdict: preflight.VerdictNotPullable},
				{PoolRef: preflight.PoolRef{Name: "mixed", Kind: "self-managed"}, Role: generalRole, Platforms: []string{"linux/amd64", "linux/arm64"}, Verdict: preflight.VerdictUnknown},
				{PoolRef: preflight.PoolRef{Name: "spot", Kind: "self-managed"}, Verdict: preflight.VerdictUnknown},
			},
		},
		{
			Workload: workload("monitoring", "DaemonSet", "node-agent"), Container: "agent",
			Image: registry + "/infra/agent@sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0", Verdict: preflight.VerdictUnknown,
			Findings: []preflight.Finding{
				{
					Code: preflight.CodeLookupFailed, Severity: preflight.SeverityWarning,
					Message: "describing images in infra/agent: AWS throttled the lookup (ThrottlingException)",
					Fix:     "retry; raise the cache TTLs if this is frequent",
				},
				{
					Code: preflight.CodeUndetermined, Severity: preflight.SeverityWarning,
					Role: generalRole, Action: "ecr:BatchGetImage", Statement: "OnlyFromVpce", UnknownKeys: []string{"aws:SourceVpce"},
					Message: "whether role eks-general-node may ecr:BatchGetImage on repository infra/agent depends on aws:SourceVpce, unknown at admission time",
					Fix:     "if you know the value, configure it (--context aws:SourceVpce=VALUE)",
				},
			},
		},
		{
			Workload: workload("monitoring", "Deployment", "grafana"), Container: "grafana",
			Image: "docker.io/grafana/grafana:11.0.0", Verdict: preflight.VerdictSkipped,
			Findings: []preflight.Finding{{
				Code: preflight.CodeSkipped, Severity: preflight.SeverityInfo,
				Message: "Docker Hub image, not in a private ECR registry",
			}},
		},
		{
			Workload: workload("qa", "Pod", "debug"), Container: "shell",
			Image: badImage, Verdict: preflight.VerdictNotPullable,
			Findings: []preflight.Finding{{
				Code: preflight.CodeInvalidImageReference, Severity: preflight.SeverityError,
				Message: `"` + badImage + `" is not a valid image reference: invalid reference format: repository name (library/Team|<x>&` + "`y`" + `) must be lowercase`,
				Fix:     "write it as REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]: a lower-case repository, a tag of at most 128 characters, a digest of 64 hex digits",
			}},
		},
	}
}

// fixtureIncomplete is what the fixture audit could not list or check; the
// second has text that needs escaping.
var fixtureIncomplete = []string{
	`listing CronJobs: cronjobs.batch is forbidden: User "system:serviceaccount:ecr-preflight:audit" cannot list resource "cronjobs"`,
	"node pools: eks:ListNodegroups <cluster|prod> & more: AccessDeniedException\nsecond line",
}

func fixtureReport() Report {
	r := Build(generatedAt, fixtureItems())
	r.Incomplete = fixtureIncomplete
	return r
}

// TestGolden renders the fixture in every format and compares it with
// testdata/report.*; go test -run TestGolden -update rewrites them.
func TestGolden(t *testing.T) {
	ext := map[Format]string{FormatTable: "txt", FormatJSON: "json", FormatMarkdown: "md", FormatJUnit: "xml", FormatSARIF: "sarif"}
	for _, f := range Formats() {
		t.Run(string(f), func(t *testing.T) {
			var out bytes.Buffer
			if err := Write(&out, f, fixtureReport()); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "report."+ext[f])
			if *update {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
			}
			if got := out.String(); got != string(want) {
				t.Errorf("%s differs from %s (go test -run TestGolden -update rewrites it):\n%s", f, path, firstDifference(got, string(want)))
			}
		})
	}
}

// TestWriteIsDeterministic: the same items in another order render the
// same bytes in every format.
func TestWriteIsDeterministic(t *testing.T) {
	items := fixtureItems()
	reversed := make([]Item, len(items))
	for i, it := range items {
		reversed[len(items)-1-i] = it
	}
	for _, f := range Formats() {
		var a, b bytes.Buffer
		if err := Write(&a, f, Build(generatedAt, items)); err != nil {
			t.Fatal(err)
		}
		if err := Write(&b, f, Build(generatedAt, reversed)); err != nil {
			t.Fatal(err)
		}
		if a.String() != b.String() {
			t.Errorf("%s depends on the order of the items:\n%s", f, firstDifference(a.String(), b.String()))
		}
	}
}

// TestJSONIsTheReport: the JSON reads back as the report, its problems in
// the order Write puts them in.
func TestJSONIsTheReport(t *testing.T) {
	r := fixtureReport()
	var out bytes.Buffer
	if err := Write(&out, FormatJSON, r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	want := r
	want.Problems = slices.Clone(r.Problems)
	slices.SortStableFunc(want.Problems, compareProblems)
	if !reflect.DeepEqual(back, want) {
		t.Errorf("the JSON does not round-trip to the report:\n got %+v\nwant %+v", back, want)
	}
}

// TestWriteOrdersProblemsByUrgency: ImageExpired comes first among the
// warnings and ImageExpiring last, whatever the number of workloads; the
// caller's report keeps its order.
func TestWriteOrdersProblemsByUrgency(t *testing.T) {
	warn := func(c preflight.Code) preflight.Finding { return finding(c, preflight.SeverityWarning) }
	r := Build(generatedAt, []Item{
		item("a", "Pod", "p1", "c", "i1", preflight.VerdictPullable, warn(preflight.CodeImageExpiring)),
		item("a", "Pod", "p2", "c", "i2", preflight.VerdictPullable, warn(preflight.CodeImageExpiring)),
		item("a", "Pod", "p3", "c", "i3", preflight.VerdictPullable, warn(preflight.CodeImageExpiring)),
		item("a", "Pod", "p4", "c", "i4", preflight.VerdictUnknown, warn(preflight.CodeLookupFailed)),
		item("a", "Pod", "p5", "c", "i5", preflight.VerdictUnknown, warn(preflight.CodeUndetermined)),
		item("a", "Pod", "p6", "c", "i6", preflight.VerdictUnknown, warn(preflight.CodeUndetermined)),
		item("a", "Pod", "p7", "c", "i7", preflight.VerdictPullable, warn(preflight.CodeImageExpired)),
		item("a", "Pod", "p8", "c", "i8", preflight.VerdictNotPullable, finding(preflight.CodeImageNotFound, preflight.SeverityError)),
	})
	before := slices.Clone(r.Problems)
	var out bytes.Buffer
	if err := Write(&out, FormatTable, r); err != nil {
		t.Fatal(err)
	}
	var headings []string
	for line := range strings.Lines(out.String()) {
		if code, _, ok := strings.Cut(line, " ("); ok && !strings.HasPrefix(line, " ") && strings.Contains(line, "):") {
			headings = append(headings, code)
		}
	}
	want := []string{"ImageNotFound", "ImageExpired", "Undetermined", "LookupFailed", "ImageExpiring"}
	if !slices.Equal(headings, want) {
		t.Errorf("problems in the order %v, want %v", headings, want)
	}
	if !reflect.DeepEqual(r.Problems, before) {
		t.Error("Write reordered the caller's problems")
	}
}

// TestIncompleteInEveryFormat: each format says when the audit was
// incomplete, with what could not be listed or checked, and says nothing
// of it otherwise.
func TestIncompleteInEveryFormat(t *testing.T) {
	const what = "listing CronJobs: forbidden"
	tests := map[string]struct {
		format Format
		// incomplete must be in the output of an incomplete audit;
		// complete must be in a complete audit's output instead.
		incomplete, complete string
	}{
		"the table starts with a warning line": {
			FormatTable, "warning: audit incomplete: " + what + "\n\n1 workload", "",
		},
		"Markdown has a warning alert before the summary": {
			FormatMarkdown, "## ecr-preflight audit\n\n> [!WARNING]\n> The audit is incomplete", "",
		},
		"JSON has the field": {
			FormatJSON, `"incomplete": [` + "\n" + `    "` + what + `"`, "",
		},
		"JUnit has a testcase in error": {
			FormatJUnit, `<error message="audit incomplete: ` + what + `" type="AuditIncomplete">`, "",
		},
		"SARIF's invocation did not succeed, with a notification": {
			FormatSARIF, `"executionSuccessful": false,` + "\n" + `          "endTimeUtc": "2025-03-14T08:26:53Z",` + "\n" +
				`          "toolExecutionNotifications": [` + "\n" + `            {` + "\n" + `              "level": "error",` + "\n" +
				`              "message": {` + "\n" + `                "text": "audit incomplete: ` + what + `"`,
			`"executionSuccessful": true,`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := Build(generatedAt, []Item{item("a", "Pod", "p", "c", "i", preflight.VerdictPullable)})
			var complete bytes.Buffer
			if err := Write(&complete, tc.format, r); err != nil {
				t.Fatal(err)
			}
			r.Incomplete = []string{what}
			var incomplete bytes.Buffer
			if err := Write(&incomplete, tc.format, r); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(incomplete.String(), tc.incomplete) {
				t.Errorf("an incomplete audit's output lacks %q:\n%s", tc.incomplete, incomplete.String())
			}
			if strings.Contains(complete.String(), what) || strings.Contains(strings.ToLower(complete.String()), "incomplete") {
				t.Errorf("a complete audit's output says it is incomplete:\n%s", complete.String())
			}
			if !strings.Contains(complete.String(), tc.complete) {
				t.Errorf("a complete audit's output lacks %q:\n%s", tc.complete, complete.String())
			}
		})
	}
}

func TestCleanReports(t *testing.T) {
	clean := Build(generatedAt, []Item{{
		Workload: workload("shop", "StatefulSet", "db"), Container: "postgres",
		Image: registry + "/base/postgres:16", Verdict: preflight.VerdictPullable,
	}})
	tests := map[string]struct {
		format Format
		want   string
	}{
		"the table says no problems were found": {FormatTable, "1 workload, 1 container, 1 image: 1 pullable\n\nNo problems found\n"},
		"Markdown says so too":                  {FormatMarkdown, "## ecr-preflight audit\n\n1 workload, 1 container, 1 image: 1 pullable (generated 2025-03-14T08:26:53Z).\n\nNo problems found.\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Write(&out, tc.format, clean); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", out.String(), tc.want)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range Formats() {
		got, err := ParseFormat(string(f))
		if err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %q, %v", f, got, err)
		}
	}
	for in, want := range map[string]Format{"JSON": FormatJSON, "Markdown": FormatMarkdown, "SARIF": FormatSARIF, "jUnit": FormatJUnit} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "text", "xml", " json"} {
		if _, err := ParseFormat(bad); err == nil || !strings.Contains(err.Error(), "table, json, markdown, junit or sarif") {
			t.Errorf("ParseFormat(%q): error %v, want one naming the formats", bad, err)
		}
	}
}

func TestWriteRejectsAnUnknownFormat(t *testing.T) {
	var out bytes.Buffer
	if err := Write(&out, Format("yaml"), fixtureReport()); err == nil || out.Len() > 0 {
		t.Errorf("Write(yaml) = %v with %d bytes written, want an error and nothing written", err, out.Len())
	}
}

func TestMarkdownEscapes(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"a pipe cannot end a table cell":         {"a|b", `a\|b`},
		"backticks do not open code":             {"run `ecr-preflight pools`", "run \\`ecr-preflight pools\\`"},
		"angle brackets and ampersands are text": {"<x>&y", `\<x\>\&y`},
		"emphasis and links stay literal":        {"*a* _b_ [c]", `\*a\* \_b\_ \[c\]`},
		"a backslash escapes nothing":            {`a\|`, `a\\\|`},
		"a newline does not end the row":         {"one\ntwo", "one two"},
		"a leading dash does not start a list":   {"- x", `\- x`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := mdEscape(tc.in); got != tc.want {
				t.Errorf("mdEscape(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestDetail(t *testing.T) {
	tests := map[string]struct {
		f       preflight.Finding
		problem preflight.Severity
		want    string
	}{
		"names the pool, role and statement": {
			preflight.Finding{Severity: preflight.SeverityError, Pool: &preflight.PoolRef{Name: "general"}, Role: generalRole, Statement: "Deny", Message: "long"},
			preflight.SeverityError, `pool general, role eks-general-node, statement "Deny"`,
		},
		"falls back to the message": {
			preflight.Finding{Severity: preflight.SeverityError, Message: "tag 2.0 does not exist in repository shop/web"},
			preflight.SeverityError, "tag 2.0 does not exist in repository shop/web",
		},
		"marks a warning among errors": {
			preflight.Finding{Severity: preflight.SeverityWarning, Pool: &preflight.PoolRef{Name: "mixed"}, Platforms: []string{"linux/arm64"}},
			preflight.SeverityError, "warning, pool mixed, linux/arm64",
		},
		"cuts a long message on a rune boundary": {
			preflight.Finding{Severity: preflight.SeverityWarning, Message: strings.Repeat("é", 40)},
			preflight.SeverityWarning, strings.Repeat("é", 28) + "...",
		},
		"an age rule's date": {
			preflight.Finding{Code: preflight.CodeImageExpiring, Severity: preflight.SeverityWarning, Message: "long",
				Lifecycle: &preflight.LifecycleRef{Priority: 2, Action: "expire", At: &expiresAt}},
			preflight.SeverityWarning, "rule 2, on 2025-03-18",
		},
		"the date in UTC": {
			preflight.Finding{Code: preflight.CodeImageExpiring, Severity: preflight.SeverityWarning, Message: "long",
				Lifecycle: &preflight.LifecycleRef{Priority: 2, Action: "expire", At: new(time.Date(2025, 3, 18, 0, 30, 0, 0, time.FixedZone("CET", 3600)))}},
			preflight.SeverityWarning, "rule 2, on 2025-03-17",
		},
		"a transition rule archives": {
			preflight.Finding{Code: preflight.CodeImageExpiring, Severity: preflight.SeverityWarning, Message: "long",
				Lifecycle: &preflight.LifecycleRef{Priority: 4, Action: "transition", At: &expiresAt}},
			preflight.SeverityWarning, "rule 4 (archive), on 2025-03-18",
		},
		"a count rule's next push": {
			preflight.Finding{Code: preflight.CodeImageExpiring, Severity: preflight.SeverityWarning, Message: "long",
				Lifecycle: &preflight.LifecycleRef{Priority: 1, Action: "expire", AfterPushes: 1}},
			preflight.SeverityWarning, "rule 1, after the next push",
		},
		"a count rule's pushes": {
			preflight.Finding{Code: preflight.CodeImageExpiring, Severity: preflight.SeverityWarning, Message: "long",
				Lifecycle: &preflight.LifecycleRef{Priority: 1, Action: "expire", AfterPushes: 3}},
			preflight.SeverityWarning, "rule 1, after 3 more pushes",
		},
		"a rule that already selects the image": {
			preflight.Finding{Code: preflight.CodeImageExpired, Severity: preflight.SeverityWarning, Message: "long",
				Lifecycle: &preflight.LifecycleRef{Priority: 3, Action: "expire"}},
			preflight.SeverityWarning, "rule 3, selected now",
		},
		"keeps a message on one line": {
			preflight.Finding{Severity: preflight.SeverityWarning, Message: "a\tb\nc"},
			preflight.SeverityWarning, "a b c",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := detail(tc.f, tc.problem); got != tc.want {
				t.Errorf("detail = %q, want %q", got, tc.want)
			}
			if len(detail(tc.f, tc.problem)) > detailMax {
				t.Errorf("detail is %d bytes, over %d", len(detail(tc.f, tc.problem)), detailMax)
			}
		})
	}
}

// firstDifference shows the first line where got and want differ.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n got: %s\nwant: %s", i+1, gl, wl)
		}
	}
	return "(equal)"
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteReportsAFailingWriter(t *testing.T) {
	for _, f := range Formats() {
		if err := Write(failingWriter{}, f, fixtureReport()); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("%s: error %v, want the writer's", f, err)
		}
	}
}
