package audit

import (
	"bytes"
	"fmt"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// writeTable renders r for people:
//
//	warning: audit incomplete: listing CronJobs: forbidden
//
//	3 workloads, 4 containers, 2 images: 1 not pullable, 3 pullable
//
//	ImageNotFound (error): 1 workload, 1 container, 1 image
//	  NAMESPACE  KIND/NAME       CONTAINER  IMAGE   DETAIL
//	  shop       Deployment/web  web        …/web:2 tag 2 does not exist in …
//	  fix: push the image, or fix the reference (aws ecr describe-images …)
//
// or "No problems found" after the summary. A warning line for each of
// r.Incomplete comes first, so that no one reads the rest as complete.
// Every cell is one line; the other formats have every reference and
// message in full.
func writeTable(b *bytes.Buffer, r Report) error {
	for _, what := range r.Incomplete {
		fmt.Fprintf(b, "warning: audit incomplete: %s\n", oneLine(what))
	}
	if len(r.Incomplete) > 0 {
		b.WriteByte('\n')
	}
	fmt.Fprintln(b, summaryLine(r.Summary))
	if len(r.Problems) == 0 {
		fmt.Fprintln(b, "\nNo problems found")
		return nil
	}
	for _, p := range r.Problems {
		fmt.Fprintf(b, "\n%s (%s): %s\n", p.Code, p.Severity, problemCounts(p))
		// Writes through tabwriter to a bytes.Buffer cannot fail.
		tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
		_, _ = fmt.Fprintln(tw, "  NAMESPACE\tKIND/NAME\tCONTAINER\tIMAGE\tDETAIL")
		for _, it := range p.Items {
			for _, f := range it.Findings {
				_, _ = fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", oneLine(it.Workload.Namespace), oneLine(kindName(it.Workload)),
					oneLine(it.Container), shortImage(it.Image), detail(f, p.Severity))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, fix := range fixes(p.Items) {
			fmt.Fprintf(b, "  fix: %s\n", oneLine(fix))
		}
	}
	return nil
}

// imageMax caps an IMAGE cell, in bytes.
const imageMax = 100

// shortImage is ref for a table cell: a sha256 digest cut to its first 12
// hex digits (as docker and crictl show image IDs), and a reference still
// longer than imageMax cut in its middle, keeping the registry and the
// tag.
func shortImage(ref string) string {
	ref = oneLine(ref)
	const algo = "@sha256:"
	if i := strings.LastIndex(ref, algo); i >= 0 && len(ref)-i-len(algo) == 64 {
		ref = ref[:i+len(algo)+12]
	}
	if len(ref) <= imageMax {
		return ref
	}
	head, tail := (imageMax-3)/2, imageMax-3-(imageMax-3)/2
	for head > 0 && !utf8.RuneStart(ref[head]) {
		head--
	}
	start := len(ref) - tail
	for start < len(ref) && !utf8.RuneStart(ref[start]) {
		start++
	}
	return ref[:head] + "..." + ref[start:]
}
