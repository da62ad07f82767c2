package audit

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// JUnit XML as CI systems read it: the Jenkins xUnit junit-10 schema,
// which GitLab reads too. A testsuites element has name, tests, failures
// and errors (no skipped); a testsuite needs name, tests, failures and
// errors and may have skipped; a testcase needs a name and may hold
// skipped, error, failure and system-out in any order.

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
	Skipped  int    `xml:"skipped,attr"`
	// Timestamp is the report's GeneratedAt, UTC, in the Ant form
	// (no zone).
	Timestamp string          `xml:"timestamp,attr"`
	Cases     []junitTestcase `xml:"testcase"`
}

// add appends tc and counts its outcome.
func (s *junitTestsuite) add(tc junitTestcase) {
	s.Cases = append(s.Cases, tc)
	s.Tests++
	switch {
	case tc.Failure != nil:
		s.Failures++
	case tc.Error != nil:
		s.Errors++
	case tc.Skipped != nil:
		s.Skipped++
	}
}

// junitTestcase has at most one of Skipped, Error and Failure.
type junitTestcase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Skipped   *junitSkipped `xml:"skipped"`
	Error     *junitFailure `xml:"error"`
	Failure   *junitFailure `xml:"failure"`
	SystemOut *junitText    `xml:"system-out"`
}

// junitFailure is a <failure> (the test found a problem) or an <error>
// (the test could not decide): the same shape. Texts are CDATA so that
// their lines stay lines in the file; oneLine has removed every
// character XML does not allow.
type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

// junitTimestamp is the Ant/Surefire timestamp layout.
const junitTimestamp = "2006-01-02T15:04:05"

// junitAuditName names the suite and testcase that say the audit was
// incomplete: a namespace cannot contain a space, so no namespace's suite
// has this name.
const junitAuditName = "ecr-preflight audit"

// writeJUnit renders r as JUnit XML: a testsuite per namespace, a testcase
// per workload container (classname "namespace/Kind/name", name
// "Kind/name container", since some CI systems show only the name). The
// outcome follows the container's verdict:
//
//   - not-pullable or partly-pullable: a failure, with the error
//     findings' codes as its message and each one's message and fix as its
//     text;
//   - unknown (LookupFailed, Undetermined, ...), or a verdict this file
//     does not know: an error, so that CI shows the image was not
//     verified, with the warnings that left it open;
//   - skipped (not a private ECR image): skipped, with the reason;
//   - pullable: passed.
//
// Every testcase's system-out has the verdict, the pools and the findings
// its failure or error does not show, lifecycle warnings among them
// (advice about tomorrow, which fails nothing today). When r.Incomplete
// is not empty, a first suite "ecr-preflight audit" has one testcase,
// "audit complete", in error with what could not be listed or checked.
func writeJUnit(b *bytes.Buffer, r Report) error {
	doc := junitTestsuites{Name: junitAuditName}
	stamp := r.GeneratedAt.UTC().Format(junitTimestamp)
	if len(r.Incomplete) > 0 {
		s := junitTestsuite{Name: junitAuditName, Timestamp: stamp}
		s.add(junitIncomplete(r.Incomplete))
		doc.Suites = append(doc.Suites, s)
	}
	// Items are sorted by namespace first, so one pass makes the suites.
	suites := len(doc.Suites)
	for _, it := range r.Items {
		ns := it.Workload.Namespace
		if n := len(doc.Suites); n == suites || doc.Suites[n-1].Name != ns {
			doc.Suites = append(doc.Suites, junitTestsuite{Name: ns, Timestamp: stamp})
		}
		doc.Suites[len(doc.Suites)-1].add(junitCase(it))
	}
	for _, s := range doc.Suites {
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
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

// junitIncomplete is the testcase that says what the audit could not list
// or check: its error's message names the first, its text all of them.
func junitIncomplete(incomplete []string) junitTestcase {
	msg := "audit incomplete: " + oneLine(incomplete[0])
	if n := len(incomplete) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more)", n)
	}
	var text strings.Builder
	for _, what := range incomplete {
		fmt.Fprintf(&text, "%s\n", oneLine(what))
	}
	return junitTestcase{
		Name: "audit complete", Classname: junitAuditName,
		Error: &junitFailure{Message: msg, Type: "AuditIncomplete", Text: text.String()},
	}
}

// junitCase is the testcase of one container.
func junitCase(it Item) junitTestcase {
	tc := junitTestcase{Name: kindName(it.Workload) + " " + it.Container, Classname: qualifiedName(it.Workload)}
	var out strings.Builder
	fmt.Fprintf(&out, "image %s: %s\n", oneLine(it.Image), it.Verdict)
	for _, p := range it.Pools {
		fmt.Fprintf(&out, "pool %s", oneLine(p.Name))
		if p.Role != "" {
			fmt.Fprintf(&out, " (role %s)", preflight.RoleName(p.Role))
		}
		fmt.Fprintf(&out, ": %s\n", p.Verdict)
	}
	var errs, open, rest []preflight.Finding
	for _, f := range it.Findings {
		switch {
		case f.Severity == preflight.SeverityError:
			errs = append(errs, f)
		case it.Verdict == preflight.VerdictUnknown && f.Severity == preflight.SeverityWarning && !lifecycleCode(f.Code):
			open = append(open, f)
		default:
			rest = append(rest, f)
		}
	}
	switch v := it.Verdict; {
	case len(errs) > 0 || v == preflight.VerdictNotPullable || v == preflight.VerdictPartlyPullable:
		tc.Failure = junitFailureOf(it, errs)
	case v == preflight.VerdictSkipped:
		tc.Skipped = &junitSkipped{Message: skipReason(it.Findings)}
	case v != preflight.VerdictPullable:
		tc.Error = junitFailureOf(it, open)
	}
	for _, f := range rest {
		fmt.Fprintf(&out, "%s %s: %s\n", f.Severity, f.Code, oneLine(f.Message))
		if f.Fix != "" {
			fmt.Fprintf(&out, "  fix: %s\n", oneLine(f.Fix))
		}
	}
	tc.SystemOut = &junitText{Text: out.String()}
	return tc
}

// junitFailureOf is a failure or error for findings: their distinct codes
// as the message (the first as the type), the image and each finding's
// message and fix as the text. Without findings, the verdict is the
// message and the type.
func junitFailureOf(it Item, findings []preflight.Finding) *junitFailure {
	var codes []string
	var text strings.Builder
	fmt.Fprintf(&text, "image %s\n", oneLine(it.Image))
	for _, f := range findings {
		if !slices.Contains(codes, string(f.Code)) {
			codes = append(codes, string(f.Code))
		}
		fmt.Fprintf(&text, "%s: %s\n", f.Code, oneLine(f.Message))
		if f.Fix != "" {
			fmt.Fprintf(&text, "  fix: %s\n", oneLine(f.Fix))
		}
	}
	if len(codes) == 0 {
		codes = []string{oneLine(string(it.Verdict))}
	}
	return &junitFailure{Message: strings.Join(codes, ", "), Type: codes[0], Text: text.String()}
}

// skipReason is why an image was not checked: its info findings'
// messages (CodeSkipped says why), or the verdict's words.
func skipReason(findings []preflight.Finding) string {
	var reasons []string
	for _, f := range findings {
		if f.Severity == preflight.SeverityInfo {
			reasons = append(reasons, oneLine(f.Message))
		}
	}
	if len(reasons) == 0 {
		return "not a private ECR image"
	}
	return strings.Join(reasons, "; ")
}

// lifecycleCode: the finding predicts what a lifecycle rule will do; it
// never leaves today's pull undecided.
func lifecycleCode(c preflight.Code) bool {
	return c == preflight.CodeImageExpiring || c == preflight.CodeImageExpired
}
