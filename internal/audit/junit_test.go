package audit

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// parsedSuites is the JUnit document as a CI system reads it, decoded
// independently of the writer's types.
type parsedSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   *int     `xml:"errors,attr"`
	Suites   []struct {
		Name      string `xml:"name,attr"`
		Tests     *int   `xml:"tests,attr"`
		Failures  *int   `xml:"failures,attr"`
		Errors    *int   `xml:"errors,attr"`
		Timestamp string `xml:"timestamp,attr"`
		Cases     []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Failures  []struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			SystemOut []string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
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

func TestJUnitParsesAndCounts(t *testing.T) {
	r := fixtureReport()
	doc := parseJUnit(t, r)

	// What the report says should fail: containers with an error finding.
	wantTests, wantFailures := len(r.Items), 0
	failing := map[string]bool{}
	for _, it := range r.Items {
		for _, f := range it.Findings {
			if f.Severity == preflight.SeverityError {
				failing[qualifiedName(it.Workload)+":"+it.Container] = true
			}
		}
	}
	wantFailures = len(failing)

	if doc.Tests != wantTests || doc.Failures != wantFailures || doc.Errors == nil || *doc.Errors != 0 {
		t.Errorf("testsuites tests=%d failures=%d errors=%v, want %d, %d, 0", doc.Tests, doc.Failures, doc.Errors, wantTests, wantFailures)
	}
	var namespaces []string
	tests, failures := 0, 0
	for _, s := range doc.Suites {
		namespaces = append(namespaces, s.Name)
		if s.Tests == nil || s.Failures == nil || s.Errors == nil || s.Name == "" {
			t.Fatalf("suite %q lacks an attribute the JUnit schema requires (name, tests, failures, errors)", s.Name)
		}
		if *s.Tests != len(s.Cases) {
			t.Errorf("suite %s: tests=%d, but %d testcases", s.Name, *s.Tests, len(s.Cases))
		}
		if s.Timestamp != "2025-03-14T08:26:53" {
			t.Errorf("suite %s: timestamp %q, want the report's GeneratedAt in UTC", s.Name, s.Timestamp)
		}
		failed := 0
		for _, c := range s.Cases {
			if c.Name == "" || !strings.HasPrefix(c.Classname, s.Name+"/") {
				t.Errorf("suite %s: testcase %q with classname %q", s.Name, c.Name, c.Classname)
			}
			if len(c.Failures) > 1 {
				t.Errorf("%s %s: %d failures, want at most one", c.Classname, c.Name, len(c.Failures))
			}
			if len(c.Failures) > 0 {
				failed++
				if !failing[c.Classname+":"+c.Name] {
					t.Errorf("%s %s fails, but has no error finding", c.Classname, c.Name)
				}
			}
		}
		if *s.Failures != failed {
			t.Errorf("suite %s: failures=%d, but %d failing testcases", s.Name, *s.Failures, failed)
		}
		tests += len(s.Cases)
		failures += failed
	}
	if tests != wantTests || failures != wantFailures {
		t.Errorf("%d testcases with %d failures, want %d and %d", tests, failures, wantTests, wantFailures)
	}
	if want := []string{"monitoring", "ops", "qa", "shop"}; strings.Join(namespaces, ",") != strings.Join(want, ",") {
		t.Errorf("suites %v, want one per namespace %v", namespaces, want)
	}
}

func TestJUnitCases(t *testing.T) {
	doc := parseJUnit(t, fixtureReport())
	type testcase = struct {
		failure, out string
		message      string
	}
	got := map[string]testcase{}
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			var tc testcase
			if len(c.Failures) > 0 {
				tc.failure, tc.message = c.Failures[0].Text, c.Failures[0].Message
			}
			tc.out = strings.Join(c.SystemOut, "")
			got[c.Classname+":"+c.Name] = tc
		}
	}
	tests := map[string]struct {
		key          string
		message      string
		failureHas   []string
		outHas       []string
		shouldPass   bool
		failureLacks []string
	}{
		"an error fails with its code as the message and its message and fix as the text": {
			key: "shop/Deployment/web:web", message: "ImageNotFound",
			failureHas: []string{"tag 2.0 does not exist in repository shop/web", "fix: push the image"},
		},
		"warnings go to system-out and do not fail": {
			key: "monitoring/DaemonSet/node-agent:agent", shouldPass: true,
			outHas: []string{"warning LookupFailed: describing images in infra/agent", "warning Undetermined:", "fix: retry"},
		},
		"a skipped image passes with its reason in system-out": {
			key: "monitoring/Deployment/grafana:grafana", shouldPass: true,
			outHas: []string{"skipped", "info Skipped: Docker Hub image"},
		},
		"a clean container passes": {
			key: "shop/StatefulSet/db:postgres", shouldPass: true, outHas: []string{": pullable"},
		},
		"partly pullable fails for the pool that cannot, warns for the others, lists the pools": {
			key: "shop/Deployment/api:api", message: "PlatformNotAvailable",
			failureHas:   []string{"Karpenter NodePool graviton runs linux/arm64"},
			failureLacks: []string{"mixed"},
			outHas:       []string{"pool graviton (role eks-arm-node): not-pullable", "pool spot: unknown", "warning PlatformNotAvailable: pods placed on linux/arm64 nodes", "run `ecr-preflight pools`"},
		},
		"characters XML must escape come back as they were": {
			key: "qa/Pod/debug:shell", message: "InvalidImageReference",
			failureHas: []string{badImage},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, ok := got[tc.key]
			if !ok {
				t.Fatalf("no testcase %s", tc.key)
			}
			if tc.shouldPass && c.failure != "" {
				t.Errorf("fails: %s", c.failure)
			}
			if c.message != tc.message {
				t.Errorf("failure message %q, want %q", c.message, tc.message)
			}
			for _, s := range tc.failureHas {
				if !strings.Contains(c.failure, s) {
					t.Errorf("failure text lacks %q:\n%s", s, c.failure)
				}
			}
			for _, s := range tc.failureLacks {
				if strings.Contains(c.failure, s) {
					t.Errorf("failure text has %q:\n%s", s, c.failure)
				}
			}
			for _, s := range tc.outHas {
				if !strings.Contains(c.out, s) {
					t.Errorf("system-out lacks %q:\n%s", s, c.out)
				}
			}
		})
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
	if c.Classname != "a/Pod/p<&>" || c.Name != "c\"'" {
		t.Errorf("classname %q name %q: attributes did not come back as they were", c.Classname, c.Name)
	}
	want := "ImageNotFound: ends ]]> early, opens <![CDATA[ again, has a control character, a non-character and a newline\n  fix: fix ]]>\n"
	if !strings.HasSuffix(c.Failures[0].Text, want) {
		t.Errorf("failure text %q, want it to end with %q", c.Failures[0].Text, want)
	}
}
