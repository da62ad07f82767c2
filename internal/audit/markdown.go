package audit

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// writeMarkdown renders r as GitHub-flavored Markdown for tickets and pull
// requests: a "## ecr-preflight audit" heading, a warning alert listing
// r.Incomplete when there is any, and the summary, then a "###" section
// per problem with what the code means, a table of the containers with
// their findings' messages in full, and the fixes as a list.
func writeMarkdown(b *bytes.Buffer, r Report) error {
	fmt.Fprint(b, "## ecr-preflight audit\n")
	if len(r.Incomplete) > 0 {
		// A GitHub alert; elsewhere a block quote whose first line reads
		// "[!WARNING]", which still says it.
		fmt.Fprint(b, "\n> [!WARNING]\n> The audit is incomplete; this report covers all but what could not be listed or checked:\n>\n")
		for _, what := range r.Incomplete {
			fmt.Fprintf(b, "> - %s\n", mdEscape(what))
		}
	}
	fmt.Fprintf(b, "\n%s (generated %s).\n", mdEscape(summaryLine(r.Summary)), r.GeneratedAt.UTC().Format(time.RFC3339))
	if len(r.Problems) == 0 {
		fmt.Fprint(b, "\nNo problems found.\n")
		return nil
	}
	for _, p := range r.Problems {
		fmt.Fprintf(b, "\n### %s (%s): %s\n\n%s\n\n", p.Code, p.Severity, problemCounts(p), mdEscape(ruleFor(p.Code).Short))
		fmt.Fprint(b, "| Namespace | Workload | Container | Image | Finding |\n| --- | --- | --- | --- | --- |\n")
		for _, it := range p.Items {
			for _, f := range it.Findings {
				msg := f.Message
				if f.Severity != p.Severity {
					msg = string(f.Severity) + ": " + msg
				}
				fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", mdEscape(it.Workload.Namespace), mdEscape(kindName(it.Workload)),
					mdEscape(it.Container), mdEscape(it.Image), mdEscape(msg))
			}
		}
		if fx := fixes(p.Items); len(fx) > 0 {
			fmt.Fprint(b, "\nFix:\n\n")
			for _, fix := range fx {
				fmt.Fprintf(b, "- %s\n", mdEscape(fix))
			}
		}
	}
	return nil
}

// mdSpecial are the characters that could end a table cell (|), open code
// (`), emphasis (* _ ~), links ([ ]), raw HTML or entities (< > &), or
// escape the next one (\): each is written backslash-escaped, which
// CommonMark allows for any ASCII punctuation.
const mdSpecial = "\\`|*_~[]<>&"

// mdEscape makes s one line of literal Markdown text, safe in a table cell
// or a list item (where a leading #, -, + or = would start a heading, a
// list or a setext underline).
func mdEscape(s string) string {
	s = oneLine(s)
	var b strings.Builder
	b.Grow(len(s) + 8)
	if s != "" && strings.ContainsRune("#-+=", rune(s[0])) {
		b.WriteByte('\\')
	}
	for _, r := range s {
		if strings.ContainsRune(mdSpecial, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
