package audit

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// JUnit XML as CI systems read it (the Jenkins/Surefire junit-10 schema:
// a testsuite needs name, tests, failures and errors; a testcase needs a
// name; failure and system-out are optional and may repeat).

type junitTestsuites struct {
	XMLName  xml.Name         `xml:"testsuites"`
	Name     string           `xml:"name,attr"`
	Tests    int              `xml:"tests,attr"`
	Failures int              `xml:"failures,attr"`
	Errors   int              `xml:"errors,attr"`
	Suites   []junitTestsuite `xml:"testsuite"`
}

type junitTestsuite struct {
	Name     string `xml:"name,attr"`
	Tests    int    `xml:"tests,attr"`
	Failures int    `xml:"failures,attr"`
	Errors   int    `xml:"errors,attr"`
	// Timestamp is the report's GeneratedAt, UTC, in the Ant form
	// (no zone).
	Timestamp string          `xml:"timestamp,attr"`
	Cases     []junitTestcase `xml:"testcase"`
}

type junitTestcase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure"`
	SystemOut *junitText    `xml:"system-out"`
}

// Texts are CDATA so that their lines stay lines in the file; oneLine has
// removed every character XML does not allow.
type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

// junitTimestamp is the Ant/Surefire timestamp layout.
const junitTimestamp = "2006-01-02T15:04:05"

// writeJUnit renders r as JUnit XML: a testsuite per namespace, a testcase
// per workload container (classname "namespace/Kind/name", name the
// container). A container with error findings fails, with their codes as
// the failure's message and each one's message and fix as its text;
// warnings and info go to system-out, with the verdict and the pools, and
// fail nothing ("could not check" is not "cannot pull").
func writeJUnit(b *bytes.Buffer, r Report) error {
	doc := junitTestsuites{Name: "ecr-preflight audit"}
	stamp := r.GeneratedAt.UTC().Format(junitTimestamp)
	for _, it := range r.Items {
		ns := it.Workload.Namespace
		if n := len(doc.Suites); n == 0 || doc.Suites[n-1].Name != ns {
			doc.Suites = append(doc.Suites, junitTestsuite{Name: ns, Timestamp: stamp})
		}
		s := &doc.Suites[len(doc.Suites)-1]
		tc := junitCase(it)
		s.Cases = append(s.Cases, tc)
		s.Tests++
		doc.Tests++
		if tc.Failure != nil {
			s.Failures++
			doc.Failures++
		}
	}
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(b)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	b.WriteByte('\n')
	return nil
}

// junitCase is the testcase of one container. Items are sorted by
// namespace first, so writeJUnit's suites are too.
func junitCase(it Item) junitTestcase {
	tc := junitTestcase{Name: it.Container, Classname: qualifiedName(it.Workload)}
	var codes []string
	var failure, out strings.Builder
	fmt.Fprintf(&out, "image %s: %s\n", oneLine(it.Image), it.Verdict)
	for _, p := range it.Pools {
		fmt.Fprintf(&out, "pool %s", oneLine(p.Name))
		if p.Role != "" {
			fmt.Fprintf(&out, " (role %s)", preflight.RoleName(p.Role))
		}
		fmt.Fprintf(&out, ": %s\n", p.Verdict)
	}
	for _, f := range it.Findings {
		if f.Severity != preflight.SeverityError {
			fmt.Fprintf(&out, "%s %s: %s\n", f.Severity, f.Code, oneLine(f.Message))
			if f.Fix != "" {
				fmt.Fprintf(&out, "  fix: %s\n", oneLine(f.Fix))
			}
			continue
		}
		if !slices.Contains(codes, string(f.Code)) {
			codes = append(codes, string(f.Code))
		}
		if failure.Len() == 0 {
			fmt.Fprintf(&failure, "image %s\n", oneLine(it.Image))
		}
		fmt.Fprintf(&failure, "%s: %s\n", f.Code, oneLine(f.Message))
		if f.Fix != "" {
			fmt.Fprintf(&failure, "  fix: %s\n", oneLine(f.Fix))
		}
	}
	if len(codes) > 0 {
		tc.Failure = &junitFailure{Message: strings.Join(codes, ", "), Type: codes[0], Text: failure.String()}
	}
	tc.SystemOut = &junitText{Text: out.String()}
	return tc
}
