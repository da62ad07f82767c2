package audit

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ecr-preflight/ecr-preflight/internal/lifecycle"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// Format is how Write renders a report: the audit command's --output.
type Format string

// Report formats.
const (
	// FormatTable is for people: a summary, then each problem as an
	// aligned table with its fixes.
	FormatTable Format = "table"
	// FormatJSON is the Report itself, indented.
	FormatJSON Format = "json"
	// FormatMarkdown is for tickets and pull requests (GitHub-flavored
	// Markdown tables).
	FormatMarkdown Format = "markdown"
	// FormatJUnit is JUnit XML for CI: a test suite per namespace, a test
	// case per workload container, failing on error findings.
	FormatJUnit Format = "junit"
	// FormatSARIF is SARIF 2.1.0, for code-scanning and security tools.
	FormatSARIF Format = "sarif"
)

// Formats are the report formats, the default first.
func Formats() []Format {
	return []Format{FormatTable, FormatJSON, FormatMarkdown, FormatJUnit, FormatSARIF}
}

// ParseFormat returns the Format named s, in any case ("json", "JSON"),
// or an error naming the formats there are.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats() {
		if strings.EqualFold(string(f), s) {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown report format %q: want table, json, markdown, junit or sarif", s)
}

// Write renders r in format f to w. The output depends only on r: it is
// sorted throughout (r.Problems in the order of compareProblems, whatever
// order they come in) and names no time but r.GeneratedAt. Every format
// says when r.Incomplete is not empty. It fails on an unknown format or
// when w fails.
func Write(w io.Writer, f Format, r Report) error {
	r.Problems = slices.Clone(r.Problems)
	slices.SortStableFunc(r.Problems, compareProblems)
	var b bytes.Buffer
	var err error
	switch f {
	case FormatTable:
		err = writeTable(&b, r)
	case FormatJSON:
		err = writeJSON(&b, r)
	case FormatMarkdown:
		err = writeMarkdown(&b, r)
	case FormatJUnit:
		err = writeJUnit(&b, r)
	case FormatSARIF:
		err = writeSARIF(&b, r)
	default:
		return fmt.Errorf("unknown report format %q", f)
	}
	if err != nil {
		return fmt.Errorf("rendering the audit report as %s: %w", f, err)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("writing the audit report: %w", err)
	}
	return nil
}

// writeJSON writes r indented, in the field order of its types (maps in
// key order), with <, > and & as they are: the report is a file, not HTML.
func writeJSON(b *bytes.Buffer, r Report) error {
	return encodeJSON(b, r)
}

func encodeJSON(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// compareProblems orders problems most urgent first: errors before
// warnings, then by urgencyRank, then by the number of workloads (most
// first), then by code.
func compareProblems(a, b Problem) int {
	return cmp.Or(
		cmp.Compare(severityRank(b.Severity), severityRank(a.Severity)),
		cmp.Compare(urgencyRank(b.Code), urgencyRank(a.Code)),
		cmp.Compare(b.Workloads, a.Workloads),
		cmp.Compare(a.Code, b.Code),
	)
}

// urgencyRank orders codes within a severity. Lifecycle warnings are
// about the future, at two distances: ImageExpired (ECR removes or
// archives the image within about a day, and the next pull fails) comes
// before every other warning, ImageExpiring (within the warning window;
// the image pulls today) after them.
func urgencyRank(c preflight.Code) int {
	switch c {
	case preflight.CodeImageExpired:
		return 1
	case preflight.CodeImageExpiring:
		return -1
	}
	return 0
}

// verdictOrder is the order the summary counts verdicts in: what fails
// first.
var verdictOrder = []preflight.Verdict{
	preflight.VerdictNotPullable,
	preflight.VerdictPartlyPullable,
	preflight.VerdictUnknown,
	preflight.VerdictPullable,
	preflight.VerdictSkipped,
}

// summaryLine is "42 workloads, 57 containers, 31 images: 3 not pullable,
// 2 unknown, 52 pullable": the counts, then the containers by verdict.
func summaryLine(s Summary) string {
	line := fmt.Sprintf("%s, %s, %s", plural(s.Workloads, "workload"), plural(s.Containers, "container"), plural(s.Images, "image"))
	var counts []string
	for _, v := range verdictOrder {
		if n := s.Verdicts[v]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, strings.ReplaceAll(string(v), "-", " ")))
		}
	}
	// Verdicts a newer engine may add still count.
	for _, v := range slices.Sorted(maps.Keys(s.Verdicts)) {
		if n := s.Verdicts[v]; n > 0 && !slices.Contains(verdictOrder, v) {
			counts = append(counts, fmt.Sprintf("%d %s", n, v))
		}
	}
	if len(counts) > 0 {
		line += ": " + strings.Join(counts, ", ")
	}
	return line
}

// problemCounts is "2 workloads, 3 containers, 1 image".
func problemCounts(p Problem) string {
	return fmt.Sprintf("%s, %s, %s", plural(p.Workloads, "workload"), plural(len(p.Items), "container"), plural(p.Images, "image"))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// kindName is "Deployment/api".
func kindName(w Workload) string { return w.Kind + "/" + w.Name }

// qualifiedName is "prod/Deployment/api".
func qualifiedName(w Workload) string { return w.Namespace + "/" + w.Kind + "/" + w.Name }

// detailMax is how long a table's DETAIL cell may be, in bytes.
const detailMax = 60

// detail says briefly which of a problem's findings a row is: its pool,
// role, statement and platforms, the lifecycle rule and when it acts, or
// else the start of its message. The problem's heading names the code;
// its fixes follow the table.
func detail(f preflight.Finding, problem preflight.Severity) string {
	var parts []string
	if f.Lifecycle != nil {
		parts = append(parts, lifecycleDetail(f.Code, *f.Lifecycle))
	}
	if f.Pool != nil {
		parts = append(parts, "pool "+f.Pool.Name)
	}
	if f.Role != "" {
		parts = append(parts, "role "+preflight.RoleName(f.Role))
	}
	if f.Statement != "" {
		parts = append(parts, fmt.Sprintf("statement %q", f.Statement))
	}
	if len(f.Platforms) > 0 {
		parts = append(parts, strings.Join(f.Platforms, ","))
	}
	if len(parts) == 0 {
		parts = append(parts, f.Message)
	}
	if f.Severity != problem {
		// A warning among errors of one code (a pool where only some
		// nodes fail) says so.
		parts = append([]string{string(f.Severity)}, parts...)
	}
	return clip(strings.Join(parts, ", "), detailMax)
}

// lifecycleDetail is which lifecycle rule acts on an image, and when:
// "rule 2, on 2026-12-03" (an age rule, the UTC date), "rule 1, after the
// next push" or "rule 1, after 3 more pushes" (imageCountMoreThan),
// "rule 3, selected now" (ImageExpired). A transition rule is "rule 2
// (archive)": it archives rather than expires.
func lifecycleDetail(code preflight.Code, l preflight.LifecycleRef) string {
	rule := fmt.Sprintf("rule %d", l.Priority)
	if l.Action == string(lifecycle.ActionTransition) {
		rule += " (archive)"
	}
	switch {
	case code == preflight.CodeImageExpired:
		return rule + ", selected now"
	case l.At != nil:
		return rule + ", on " + l.At.UTC().Format(time.DateOnly)
	case l.AfterPushes == 1:
		return rule + ", after the next push"
	case l.AfterPushes > 1:
		return fmt.Sprintf("%s, after %d more pushes", rule, l.AfterPushes)
	}
	return rule
}

// fixes are the distinct fixes of items' findings, in order of first
// appearance.
func fixes(items []Item) []string {
	var out []string
	seen := map[string]bool{}
	for _, it := range items {
		for _, f := range it.Findings {
			if f.Fix != "" && !seen[f.Fix] {
				seen[f.Fix] = true
				out = append(out, f.Fix)
			}
		}
	}
	return out
}

// oneLine makes s one line: control and format characters (newlines,
// tabs, bidi overrides), the two characters XML forbids beyond those
// (U+FFFE, U+FFFF) and runs of spaces become one space. Cells of a table
// and lines of a list must not break, nor an XML document.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) || r == 0xFFFE || r == 0xFFFF {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// clip is oneLine(s) cut to at most n bytes on a rune boundary, the cut
// marked with "...".
func clip(s string, n int) string {
	s = oneLine(s)
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
