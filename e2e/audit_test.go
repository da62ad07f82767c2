package e2e

import (
	"encoding/json"
	"encoding/xml"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/e2e/harness"
)

// testAuditCommand runs `ecr-preflight audit` against the suite's cluster
// and moto: a namespace with the seed's Deployment (denied by the
// repository policy) and one that pulls; every output format parses and
// names the problem, the exit status is 1, and --policy-report writes a
// PolicyReport once the CRD is installed.
func (s *suite) testAuditCommand(t *testing.T) {
	const ns = "audited"
	s.namespace(t, ns, "warn")
	c := s.env.Client(t, &harness.Warnings{})
	ctx := caseContext(t)
	if err := c.Create(ctx, harness.Deployment(ns, "ui-private", s.env.Seed.Image)); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, harness.Deployment(ns, "busybox", "docker.io/library/busybox:1.36")); err != nil {
		t.Fatal(err)
	}
	audit := func(t *testing.T, args ...string) harness.CLIResult {
		t.Helper()
		base := []string{"audit", "--kubeconfig", s.env.Kubeconfig, "--discover-nodes=false",
			"--node-role-arn", s.env.Seed.RoleARN, "--progress=false"}
		res := s.env.Run(ctx, append(base, args...)...)
		if res.Code != 0 && res.Code != 1 && res.Code != 3 {
			t.Fatalf("ecr-preflight %s: exit %d\n%s%s", strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
		}
		return res
	}

	res := audit(t, "-n", ns, "--output", "json")
	if res.Code != 1 {
		t.Errorf("exit %d, want 1 (an image that will not pull)\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	out := res.Stdout
	var report struct {
		Summary struct {
			Workloads int `json:"workloads"`
		} `json:"summary"`
		Problems []struct {
			Code string `json:"code"`
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, out)
	}
	if report.Summary.Workloads != 2 || len(report.Problems) != 1 || report.Problems[0].Code != "RepositoryPolicyDenies" {
		t.Errorf("report %+v, want 2 workloads and RepositoryPolicyDenies", report)
	}

	out = audit(t, "-n", ns).Stdout
	wantAll(t, "the table", out, "RepositoryPolicyDenies", "ui-private", s.env.Seed.Image)
	out = audit(t, "-n", ns, "--output", "markdown").Stdout
	wantAll(t, "the Markdown", out, "## ecr-preflight audit", "RepositoryPolicyDenies")
	out = audit(t, "-n", ns, "--output", "junit").Stdout
	var suites struct {
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal([]byte(out), &suites); err != nil || suites.Failures != 1 {
		t.Errorf("JUnit: %d failures (%v), want 1\n%s", suites.Failures, err, out)
	}
	out = audit(t, "-n", ns, "--output", "sarif").Stdout
	var sarif struct {
		Version string `json:"version"`
		Runs    []struct {
			Results []struct {
				RuleID string `json:"ruleId"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &sarif); err != nil || sarif.Version != "2.1.0" || len(sarif.Runs) != 1 {
		t.Fatalf("SARIF %+v (%v)\n%s", sarif, err, out)
	}
	denials := 0
	for _, r := range sarif.Runs[0].Results {
		if r.RuleID == "RepositoryPolicyDenies" {
			denials++
		}
	}
	if denials != 1 {
		t.Errorf("SARIF has %d RepositoryPolicyDenies results, want 1: %+v", denials, sarif.Runs[0].Results)
	}

	// PolicyReports: none without the CRD, one per namespace with it.
	res = audit(t, "--policy-report", "--output", "json")
	wantAll(t, "audit --policy-report without the CRD", res.Stderr, "PolicyReport CRD (wgpolicyk8s.io/v1alpha2) is not installed")
	crd, err := filepath.Abs("../internal/audit/testdata/crds")
	if err != nil {
		t.Fatal(err)
	}
	if r := s.kubectl(t, "apply", "-f", crd); r.Err != nil {
		t.Fatalf("%s: %v\n%s", r.Command, r.Err, r.Output)
	}
	if r := s.kubectl(t, "wait", "--for=condition=Established", "crd/policyreports.wgpolicyk8s.io", "--timeout=60s"); r.Err != nil {
		t.Fatalf("%s: %v\n%s", r.Command, r.Err, r.Output)
	}
	// Established is not yet served everywhere: wait until the API lists
	// the new kind, as a person would see with kubectl.
	deadline := time.Now().Add(30 * time.Second)
	for s.kubectl(t, "get", "policyreports.wgpolicyk8s.io", "-A").Err != nil {
		if time.Now().After(deadline) {
			t.Fatal("the PolicyReport CRD was never served")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if res = audit(t, "--policy-report", "--output", "json"); strings.Contains(res.Stderr, "not installed") {
		t.Fatalf("the CRD is installed, yet:\n%s", res.Stderr)
	}
	kres := s.kubectl(t, "get", "policyreports.wgpolicyk8s.io", "ecr-preflight", "-n", ns, "-o", "json")
	if kres.Err != nil {
		t.Fatalf("%s: %v\n%s", kres.Command, kres.Err, kres.Output)
	}
	wantAll(t, "the PolicyReport", kres.Stdout, `"fail": 1`, "RepositoryPolicyDenies", "ui-private")
}
