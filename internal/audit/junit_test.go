package audit

import (
	"bytes"
	"encoding/xml"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// junitDetail is a failure's or an error's message, type and text.
type junitDetail struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// parsedCase is a testcase as a CI system reads it.
type parsedCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failures  []junitDetail `xml:"failure"`
	Errors    []junitDetail `xml:"error"`
	Skipped   []struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
	SystemOut []string `xml:"system-out"`
}

// outcome is "failure", "error", "skipped" or "passed".
func (c parsedCase) outcome() string {
	switch {
	case len(c.Failures) > 0:
		return "failure"
	case len(c.Errors) > 0:
		return "error"
	case len(c.Skipped) > 0:
		return "skipped"
	}
	return "passed"
}

// parsedSuites is the JUnit document as a CI system reads it, decoded
// independently of the writer's types; pointers tell a missing attribute
// from zero.
type parsedSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   *int     `xml:"errors,attr"`
	Skipped  *int     `xml:"skipped,attr"`
	Suites   []struct {
		Name      string       `xml:"name,attr"`
		Tests     *int         `xml:"tests,attr"`
		Failures  *int         `xml:"failures,attr"`
		Errors    *int         `xml:"errors,attr"`
		Skipped   *int         `xml:"skipped,attr"`
		Timestamp string       `xml:"timestamp,attr"`
		Cases     []parsedCase `xml:"testcase"`
	} `xml:"testsuite"`
}

// cases are the document's testcases by "classname:name".
func (d parsedSuites) cases() map[string]parsedCase {
	out := map[string]parsedCase{}
	for _, s := range d.Suites {
		for _, c := range s.Cases {
			out[c.Classname+":"+c.Name] = c
		}
	}
	return out
}

func parseJUnit(t *testing.T, r Report) parsedSuites {
	t.Helper()
	var out bytes.Buffer
	if err := Write(&out, FormatJUnit, r); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), xml.Header) {
		t.Errorf("no XML declaration:\n%s", out.String())
	}
	var doc parsedSuites
	dec := xml.NewDecoder(&out)
	dec.Strict = true
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("the JUnit output does not parse: %v", err)
	}
	return doc
}

// TestJUnitOutcomes: each container's outcome follows its verdict, and an
// incomplete audit is a testcase in error.
func TestJUnitOutcomes(t *testing.T) {
	got := map[string]string{}
	for key, c := range parseJUnit(t, fixtureReport()).cases() {
		got[key] = c.outcome()
		if n := len(c.Failures) + len(c.Errors) + len(c.Skipped); n > 1 {
			t.Errorf("%s: %d failures, errors and skips, want at most one", key, n)
		}
	}
	want := map[string]string{
		"ecr-preflight audit:audit complete":                         "error",
		"monitoring/DaemonSet/node-agent:DaemonSet/node-agent agent": "error",
		"monitoring/Deployment/grafana:Deployment/grafana grafana":   "skipped",
		"ops/CronJob/cleanup:CronJob/cleanup cleanup":                "failure",
		"ops/CronJob/report:CronJob/report report":                   "passed",
		"ops/Deployment/backup:Deployment/backup backup":             "passed",
		"qa/Pod/debug:Pod/debug shell":                               "failure",
		"shop/Deployment/api:Deployment/api api":                     "failure",
		"shop/Deployment/api:Deployment/api tools":                   "failure",
		"shop/Deployment/web:Deployment/web web":                     "failure",
		"shop/StatefulSet/db:StatefulSet/db metrics":                 "passed",
		"shop/StatefulSet/db:StatefulSet/db postgres":                "passed",
	}
	for _, key := range slices.Sorted(maps.Keys(want)) {
		if got[key] != want[key] {
			t.Errorf("%s: %q, want %q", key, got[key], want[key])
		}
	}
	for _, key := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[key]; !ok {
			t.Errorf("unexpected testcase %s", key)
		}
	}
}

// TestJUnitParsesAndCounts: the attributes junit-10 requires are there and
// every count is its testcases'.
func TestJUnitParsesAndCounts(t *testing.T) {
	r := fixtureReport()
	doc := parseJUnit(t, r)

	if doc.Skipped != nil {
		t.Error("testsuites has a skipped attribute, which junit-10 does not allow")
	}
	var names []string
	tests, failures, errs := 0, 0, 0
	for _, s := range doc.Suites {
		names = append(names, s.Name)
		if s.Tests == nil || s.Failures == nil || s.Errors == nil || s.Skipped == nil || s.Name == "" {
			t.Fatalf("suite %q lacks name, tests, failures, errors or skipped", s.Name)
		}
		if s.Timestamp != "2025-03-14T08:26:53" {
			t.Errorf("suite %s: timestamp %q, want the report's GeneratedAt in UTC", s.Name, s.Timestamp)
		}
		counts := map[string]int{}
		for _, c := range s.Cases {
			counts[c.outcome()]++
			if s.Name == junitAuditName {
				continue
			}
			// classname "ns/Kind/name", name "Kind/name container".
			kindName, container, _ := strings.Cut(c.Name, " ")
			if c.Classname != s.Name+"/"+kindName || container == "" {
				t.Errorf("suite %s: testcase %q with classname %q", s.Name, c.Name, c.Classname)
			}
		}
		if *s.Tests != len(s.Cases) || *s.Failures != counts["failure"] || *s.Errors != counts["error"] || *s.Skipped != counts["skipped"] {
			t.Errorf("suite %s: tests=%d failures=%d errors=%d skipped=%d, but its testcases count %d: %v",
				s.Name, *s.Tests, *s.Failures, *s.Errors, *s.Skipped, len(s.Cases), counts)
		}
		tests += len(s.Cases)
		failures += counts["failure"]
		errs += counts["error"]
	}
	if doc.Tests != tests || doc.Failures != failures || doc.Errors == nil || *doc.Errors != errs {
		t.Errorf("testsuites tests=%d failures=%d errors=%v, but the testcases count %d, %d, %d", doc.Tests, doc.Failures, doc.Errors, tests, failures, errs)
	}
	if tests != len(r.Items)+1 {
		t.Errorf("%d testcases, want one per container and one for the incomplete audit: %d", tests, len(r.Items)+1)
	}
	if want := []string{junitAuditName, "monitoring", "ops", "qa", "shop"}; !slices.Equal(names, want) {
		t.Errorf("suites %v, want the audit's, then one per namespace: %v", names, want)
	}
}

func TestJUnitCases(t *testing.T) {
	got := parseJUnit(t, fixtureReport()).cases()
	tests := map[string]struct {
		key string
		// detail is the failure's or error's message; detailHas and
		// detailLacks its text.
		detail      string
		detailHas   []string
		detailLacks []string
		skipped     string
		outHas      []string
		outLacks    []string
	}{
		"an error fails with its code as the message and its message and fix as the text": {
			key: "shop/Deployment/web:Deployment/web web", detail: "ImageNotFound",
			detailHas: []string{"tag 2.0 does not exist in repository shop/web", "fix: push the image"},
		},
		"an unknown verdict is an error with the warnings that left it open": {
			key: "monitoring/DaemonSet/node-agent:DaemonSet/node-agent agent", detail: "LookupFailed, Undetermined",
			detailHas: []string{"LookupFailed: describing images in infra/agent", "Undetermined: whether role", "fix: retry"},
			outHas:    []string{": unknown"}, outLacks: []string{"describing images"},
		},
		"a skipped image is skipped with its reason": {
			key: "monitoring/Deployment/grafana:Deployment/grafana grafana", skipped: "Docker Hub image, not in a private ECR registry",
			outHas: []string{"skipped", "info Skipped: Docker Hub image"},
		},
		"a clean container passes": {
			key: "shop/StatefulSet/db:StatefulSet/db postgres", outHas: []string{": pullable"},
		},
		"a lifecycle warning passes, in system-out": {
			key: "ops/CronJob/report:CronJob/report report", outHas: []string{": pullable", "warning ImageExpired: lifecycle rule 3", "fix: pin the workload"},
		},
		"partly pullable fails for the pool that cannot, warns for the others, lists the pools": {
			key: "shop/Deployment/api:Deployment/api api", detail: "PlatformNotAvailable",
			detailHas:   []string{"Karpenter NodePool graviton runs linux/arm64"},
			detailLacks: []string{"mixed"},
			outHas:      []string{"pool graviton (role eks-arm-node): not-pullable", "pool spot: unknown", "warning PlatformNotAvailable: pods placed on linux/arm64 nodes", "run `ecr-preflight pools`"},
		},
		"characters XML must escape come back as they were": {
			key: "qa/Pod/debug:Pod/debug shell", detail: "InvalidImageReference",
			detailHas: []string{badImage},
		},
		"an incomplete audit names the first problem and lists them all": {
			key: "ecr-preflight audit:audit complete", detail: "audit incomplete: " + fixtureIncomplete[0] + " (and 1 more)",
			detailHas: []string{fixtureIncomplete[0] + "\n", "<cluster|prod> & more: AccessDeniedException second line\n"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, ok := got[tc.key]
			if !ok {
				t.Fatalf("no testcase %s", tc.key)
			}
			var detail junitDetail
			switch {
			case len(c.Failures) > 0:
				detail = c.Failures[0]
			case len(c.Errors) > 0:
				detail = c.Errors[0]
			}
			if detail.Message != tc.detail {
				t.Errorf("failure or error message %q, want %q", detail.Message, tc.detail)
			}
			var skipped string
			if len(c.Skipped) > 0 {
				skipped = c.Skipped[0].Message
			}
			if skipped != tc.skipped {
				t.Errorf("skipped %q, want %q", skipped, tc.skipped)
			}
			out := strings.Join(c.SystemOut, "")
			for _, s := range tc.detailHas {
				if !strings.Contains(detail.Text, s) {
					t.Errorf("failure or error text lacks %q:\n%s", s, detail.Text)
				}
			}
			for _, s := range tc.detailLacks {
				if strings.Contains(detail.Text, s) {
					t.Errorf("failure or error text has %q:\n%s", s, detail.Text)
				}
			}
			for _, s := range tc.outHas {
				if !strings.Contains(out, s) {
					t.Errorf("system-out lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tc.outLacks {
				if strings.Contains(out, s) {
					t.Errorf("system-out has %q:\n%s", s, out)
				}
			}
		})
	}
}

// TestJUnitUnknownVerdicts: a verdict this package does not know is an
// error too: CI must not show an image nobody verified as passed.
func TestJUnitUnknownVerdicts(t *testing.T) {
	doc := parseJUnit(t, Build(generatedAt, []Item{item("a", "Pod", "p", "c", "i", preflight.Verdict("half-pullable"))}))
	c := doc.cases()["a/Pod/p:Pod/p c"]
	if len(c.Errors) != 1 || c.Errors[0].Message != "half-pullable" || doc.Errors == nil || *doc.Errors != 1 {
		t.Errorf("testcase %+v, %v errors; want one error naming the verdict", c, doc.Errors)
	}
}

func TestJUnitOfNoItemsIsAnEmptyRun(t *testing.T) {
	doc := parseJUnit(t, Build(generatedAt, nil))
	if doc.Tests != 0 || doc.Failures != 0 || len(doc.Suites) != 0 {
		t.Errorf("got %+v, want no suites and zero counts", doc)
	}
}

func TestJUnitKeepsHostileTextWellFormed(t *testing.T) {
	msg := "ends ]]> early, opens <![CDATA[ again, has \x01 a control character, \uFFFE a non-character and\na newline"
	r := Build(generatedAt, []Item{item("a", "Pod", "p<&>", "c\"'", "i", preflight.VerdictNotPullable,
		preflight.Finding{Code: preflight.CodeImageNotFound, Severity: preflight.SeverityError, Message: msg, Fix: "fix ]]>"})})
	doc := parseJUnit(t, r)
	if len(doc.Suites) != 1 || len(doc.Suites[0].Cases) != 1 || len(doc.Suites[0].Cases[0].Failures) != 1 {
		t.Fatalf("want one failing testcase, got %+v", doc)
	}
	c := doc.Suites[0].Cases[0]
	if c.Classname != "a/Pod/p<&>" || c.Name != "Pod/p<&> c\"'" {
		t.Errorf("classname %q name %q: attributes did not come back as they were", c.Classname, c.Name)
	}
	want := "ImageNotFound: ends ]]> early, opens <![CDATA[ again, has a control character, a non-character and a newline\n  fix: fix ]]>\n"
	if !strings.HasSuffix(c.Failures[0].Text, want) {
		t.Errorf("failure text %q, want it to end with %q", c.Failures[0].Text, want)
	}
}
