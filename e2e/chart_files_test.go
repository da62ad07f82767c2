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

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/ecr-preflight/ecr-preflight/e2e/envtestutil"
	"github.com/ecr-preflight/ecr-preflight/e2e/harness"
	"github.com/ecr-preflight/ecr-preflight/internal/audit"
	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
	"github.com/ecr-preflight/ecr-preflight/internal/metrics"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// The chart's files checked against each other, without an API server:
// the generated README, values.yaml against values.schema.json, the IAM
// policy against the permissions the README lists, and the Grafana
// dashboard against the metrics ecr-preflight exports.

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
// (the README's own permissions, and the node pool and lifecycle
// permissions of the chart's README), judged by ecr-preflight's own policy
// evaluator on the resources they are called on, and nothing that
// downloads image content or writes; the chart README's statement for
// platformCheck=full grants the one action the policy leaves out.
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
		// Lifecycle expiry prediction.
		"ecr:GetLifecyclePolicy": "arn:aws:ecr:eu-west-1:111122223333:repository/team/batch",
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
		{"ecr:PutLifecyclePolicy", repo}, {"ecr:DeleteLifecyclePolicy", repo}, {"ecr:StartLifecyclePolicyPreview", repo},
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
// lists from each occurrence of the phrase start to the next "a missing
// one" (the chart's README has one such list per feature).
func permissionsListed(t *testing.T, file, start string) []string {
	t.Helper()
	text := strings.Join(strings.Fields(string(repoFile(t, file))), " ")
	if !strings.Contains(text, start) {
		t.Fatalf("%s: the list of ecr-preflight's own permissions (%q ... \"a missing one\") is gone", file, start)
	}
	action := regexp.MustCompile("`((?:ecr|iam|sts|eks|ec2):[A-Za-z]+)`")
	var out []string
	for rest := text; ; {
		i := strings.Index(rest, start)
		if i < 0 {
			return out
		}
		rest = rest[i:]
		end := strings.Index(rest, "a missing one")
		if end < 0 {
			t.Fatalf("%s: the list of permissions after %q does not end with \"a missing one\"", file, start)
		}
		for _, m := range action.FindAllStringSubmatch(rest[:end], -1) {
			out = append(out, m[1])
		}
		rest = rest[end:]
	}
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

// chartMetrics are the metrics the chart's alerts and dashboard read, with
// every label each has: the continuous audit's gauges (one series per
// container and state, value 1) and the admission webhook's counters.
var chartMetrics = map[string][]string{
	"ecr_preflight_workload_image_verdict":                  {"namespace", "kind", "name", "container", "image", "verdict"},
	"ecr_preflight_workload_image_finding":                  {"namespace", "kind", "name", "container", "image", "code", "severity"},
	"ecr_preflight_audit_last_completion_timestamp_seconds": nil,
	"ecr_preflight_audit_duration_seconds":                  nil,
	"ecr_preflight_audit_workloads":                         nil,
	"ecr_preflight_admissions_total":                        {"kind", "operation", "mode", "decision"},
	"ecr_preflight_admissions_unverified_total":             {"reason"},
}

// auditVerdicts are the values of the verdict label.
var auditVerdicts = []string{
	string(preflight.VerdictPullable), string(preflight.VerdictNotPullable), string(preflight.VerdictPartlyPullable),
	string(preflight.VerdictUnknown), string(preflight.VerdictSkipped),
}

// TestChartMetricsAreExported: ecr-preflight's own recorders export every
// metric of chartMetrics with exactly its labels, once an admission and an
// audit were observed, so the chart's alerts and dashboard read what
// exists. (The chart's install test reads them on a running process too.)
func TestChartMetricsAreExported(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec, err := metrics.NewRecorder(reg)
	if err != nil {
		t.Fatal(err)
	}
	rec.ObserveAdmission("Deployment", "CREATE", "warn", "warn", time.Millisecond)
	rec.ObserveUnverified("timeout")
	auditRec, err := metrics.NewAuditRecorder(reg)
	if err != nil {
		t.Fatal(err)
	}
	auditRec.ObserveAudit(audit.Report{
		GeneratedAt: time.Now(),
		Summary:     audit.Summary{Workloads: 1, Containers: 1, Images: 1},
		Items: []audit.Item{{
			Workload:  audit.Workload{Kind: "Deployment", Namespace: "shop", Name: "ui", APIVersion: "apps/v1"},
			Container: "app", Image: "111122223333.dkr.ecr.us-west-2.amazonaws.com/ui:1.2.3", Verdict: preflight.VerdictNotPullable,
			Findings: []preflight.Finding{{Code: preflight.CodeImageExpiring, Severity: preflight.SeverityWarning}},
		}},
	}, time.Second)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string][]string{}
	for _, f := range families {
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		exported[f.GetName()] = labels
	}
	for name, want := range chartMetrics {
		got, ok := exported[name]
		if !ok {
			t.Errorf("%s is not exported; the chart's alerts or dashboard read it", name)
			continue
		}
		if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
			t.Errorf("%s has labels %v; the chart reads it by %v", name, got, want)
		}
	}
}

var (
	metricRe   = regexp.MustCompile(`\b(ecr_preflight_[a-z_]+)\b`)
	selectorRe = regexp.MustCompile(`\b(ecr_preflight_[a-z_]+)\{([^}]*)\}`)
	matcherRe  = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	byRe       = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
)

// checkPromQL fails t unless expr reads only chartMetrics, each by labels
// it has (in its selectors and in by clauses), with verdicts that exist,
// and its parentheses and brackets balance. It returns the labels of the
// first (outermost) by clause: what the result keeps.
func checkPromQL(t *testing.T, what, expr string) []string {
	t.Helper()
	metrics := metricRe.FindAllStringSubmatch(expr, -1)
	if len(metrics) == 0 {
		t.Errorf("%s: %q reads no ecr-preflight metric", what, expr)
	}
	known := map[string]bool{}
	for _, m := range metrics {
		labels, ok := chartMetrics[m[1]]
		if !ok {
			t.Errorf("%s: %q reads %s, which ecr-preflight does not export", what, expr, m[1])
			continue
		}
		for _, l := range labels {
			known[l] = true
		}
	}
	for _, sel := range selectorRe.FindAllStringSubmatch(expr, -1) {
		for _, m := range matcherRe.FindAllStringSubmatch(sel[2], -1) {
			if !slices.Contains(chartMetrics[sel[1]], m[1]) {
				t.Errorf("%s: %q selects %s by %s, which it does not have", what, expr, sel[1], m[1])
			}
			if m[1] == "verdict" {
				for v := range strings.SplitSeq(m[3], "|") {
					if !slices.Contains(auditVerdicts, v) {
						t.Errorf("%s: %q selects verdict %q; verdicts are %v", what, expr, v, auditVerdicts)
					}
				}
			}
		}
	}
	var kept []string
	for i, by := range byRe.FindAllStringSubmatch(expr, -1) {
		var labels []string
		for l := range strings.SplitSeq(by[1], ",") {
			l = strings.TrimSpace(l)
			labels = append(labels, l)
			if !known[l] {
				t.Errorf("%s: %q aggregates by %q, which none of its metrics has", what, expr, l)
			}
		}
		if i == 0 {
			kept = labels
		}
	}
	for _, pair := range []string{"()", "[]", "{}"} {
		if strings.Count(expr, pair[:1]) != strings.Count(expr, pair[1:]) {
			t.Errorf("%s: %q has unbalanced %s", what, expr, pair)
		}
	}
	return kept
}

// grafanaDashboard is what TestChartDashboardReadsTheAuditMetrics reads of
// files/grafana-dashboard.json.
type grafanaDashboard struct {
	UID, Title string
	Templating struct {
		List []struct{ Name, Type, Query string }
	}
	Panels []struct {
		ID          int
		Type, Title string
		Datasource  struct{ Type, UID string }
		GridPos     struct{ X, Y, W, H int }
		Targets     []struct {
			Expr, LegendFormat, Format string
			Datasource                 struct{ UID string }
		}
	}
}

// TestChartDashboardReadsTheAuditMetrics: the chart's Grafana dashboard
// is JSON Grafana loads (a uid, a Prometheus data source variable every
// panel uses, panels that do not overlap on the 24-column grid), each
// query reads ecr-preflight's metrics by labels they have (legends too),
// and it has the panels the chart's README promises.
func TestChartDashboardReadsTheAuditMetrics(t *testing.T) {
	data := repoFile(t, chartDir+"/files/grafana-dashboard.json")
	var d grafanaDashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("files/grafana-dashboard.json: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) < 6 {
		t.Fatalf("dashboard uid %q, title %q, %d panels: want a uid, a title and the panels", d.UID, d.Title, len(d.Panels))
	}
	var variable bool
	for _, v := range d.Templating.List {
		variable = variable || (v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus")
	}
	if !variable {
		t.Error("the dashboard has no Prometheus data source variable `datasource`: it would bind to one Grafana's uid")
	}

	legendRe := regexp.MustCompile(`\{\{\s*([A-Za-z_]+)\s*\}\}`)
	ids := map[int]bool{}
	var exprs []string
	for i, p := range d.Panels {
		what := fmt.Sprintf("panel %q", p.Title)
		if ids[p.ID] || p.Title == "" {
			t.Errorf("panel %d: id %d (repeated or zero) or no title %q", i, p.ID, p.Title)
		}
		ids[p.ID] = true
		if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("%s: data source %q, %d queries: want ${datasource} and at least one", what, p.Datasource.UID, len(p.Targets))
		}
		g := p.GridPos
		if g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("%s: gridPos %+v is off the 24-column grid", what, g)
		}
		for j, q := range d.Panels[:i] {
			o := q.GridPos
			if g.X < o.X+o.W && o.X < g.X+g.W && g.Y < o.Y+o.H && o.Y < g.Y+g.H {
				t.Errorf("%s overlaps panel %q (%+v, %+v)", what, d.Panels[j].Title, g, o)
			}
		}
		for _, q := range p.Targets {
			if q.Datasource.UID != "${datasource}" {
				t.Errorf("%s: a query's data source is %q, want ${datasource}", what, q.Datasource.UID)
			}
			kept := checkPromQL(t, what, q.Expr)
			for _, m := range legendRe.FindAllStringSubmatch(q.LegendFormat, -1) {
				if !slices.Contains(kept, m[1]) {
					t.Errorf("%s: legend %q names %s, which %q does not keep", what, q.LegendFormat, m[1], q.Expr)
				}
			}
			if p.Type == "table" && q.Format != "table" {
				t.Errorf("%s: a table whose query's format is %q, want table", what, q.Format)
			}
			exprs = append(exprs, p.Type+": "+q.Expr)
		}
	}
	all := strings.Join(exprs, "\n")
	for _, want := range []string{
		`table: max by (namespace, kind, name, container, image, verdict) (ecr_preflight_workload_image_verdict{verdict=~"not-pullable|partly-pullable"})`,
		"count by (verdict) (", "count by (code) (",
		"ecr_preflight_audit_duration_seconds", "ecr_preflight_audit_last_completion_timestamp_seconds",
		"sum by (decision) (rate(ecr_preflight_admissions_total",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no panel queries %q; the queries:\n%s", want, all)
		}
	}
}
