package audit

import (
	"cmp"
	"slices"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// Build groups items (one per workload container) into a report.
//
//   - Summary counts the distinct workloads (namespace, kind, name), the
//     containers (len(items)), the distinct image references and the
//     containers by verdict (only verdicts that occur).
//   - Problems has one entry per finding code of a warning or error (info
//     findings, such as Skipped, are not problems). A problem's Severity is
//     the most severe of its findings; its Items are the containers with
//     such a finding, each carrying only the findings of that code (the
//     whole answer is in Report.Items). Problems are sorted errors first,
//     then by urgency (ImageExpired before other warnings, ImageExpiring
//     last), then by the number of workloads (most first), then by code.
//   - Items are all of items, sorted by namespace, kind, name and
//     container (then image, so equal keys keep one order); a nil Findings
//     becomes empty, so JSON shows [].
//
// generatedAt is stored in UTC. items is not modified; the findings and
// pools are shared with it, not copied.
func Build(generatedAt time.Time, items []Item) Report {
	sorted := append([]Item{}, items...) // never nil: JSON shows []
	slices.SortStableFunc(sorted, compareItems)

	r := Report{
		GeneratedAt: generatedAt.UTC(),
		Summary: Summary{
			Containers: len(sorted),
			Verdicts:   map[preflight.Verdict]int{},
		},
		Problems: []Problem{},
		Items:    sorted,
	}
	workloads := map[Workload]bool{}
	images := map[string]bool{}
	groups := map[preflight.Code]*problemCounter{}
	var codes []preflight.Code
	for i := range sorted {
		it := &sorted[i]
		if it.Findings == nil {
			it.Findings = []preflight.Finding{}
		}
		workloads[workloadKey(it.Workload)] = true
		images[it.Image] = true
		r.Summary.Verdicts[it.Verdict]++
		for _, code := range problemCodes(it.Findings) {
			g := groups[code]
			if g == nil {
				g = &problemCounter{workloads: map[Workload]bool{}, images: map[string]bool{}}
				g.problem.Code = code
				groups[code] = g
				codes = append(codes, code)
			}
			g.add(*it)
		}
	}
	r.Summary.Workloads = len(workloads)
	r.Summary.Images = len(images)
	for _, code := range codes {
		r.Problems = append(r.Problems, groups[code].done())
	}
	slices.SortFunc(r.Problems, compareProblems)
	return r
}

// problemCounter gathers one problem while Build walks the sorted items.
type problemCounter struct {
	problem   Problem
	workloads map[Workload]bool
	images    map[string]bool
}

// add records it, keeping only its findings of the problem's code.
func (c *problemCounter) add(it Item) {
	var own []preflight.Finding
	for _, f := range it.Findings {
		if f.Code != c.problem.Code || f.Severity == preflight.SeverityInfo {
			continue
		}
		own = append(own, f)
		if severityRank(f.Severity) > severityRank(c.problem.Severity) {
			c.problem.Severity = f.Severity
		}
	}
	it.Findings = own
	c.problem.Items = append(c.problem.Items, it)
	c.workloads[workloadKey(it.Workload)] = true
	c.images[it.Image] = true
}

func (c *problemCounter) done() Problem {
	c.problem.Workloads = len(c.workloads)
	c.problem.Images = len(c.images)
	return c.problem
}

// problemCodes are the distinct codes of findings that are problems, in
// the order they first appear.
func problemCodes(findings []preflight.Finding) []preflight.Code {
	var codes []preflight.Code
	for _, f := range findings {
		if f.Severity != preflight.SeverityInfo && !slices.Contains(codes, f.Code) {
			codes = append(codes, f.Code)
		}
	}
	return codes
}

// severityRank orders severities: error above warning above anything else.
func severityRank(s preflight.Severity) int {
	switch s {
	case preflight.SeverityError:
		return 2
	case preflight.SeverityWarning:
		return 1
	}
	return 0
}

// workloadKey identifies a workload by namespace, kind and name: the
// APIVersion and UID do not make two objects of one name different.
func workloadKey(w Workload) Workload {
	return Workload{Namespace: w.Namespace, Kind: w.Kind, Name: w.Name}
}

// compareItems orders items by namespace, kind, name, container and image.
func compareItems(a, b Item) int {
	return cmp.Or(
		cmp.Compare(a.Workload.Namespace, b.Workload.Namespace),
		cmp.Compare(a.Workload.Kind, b.Workload.Kind),
		cmp.Compare(a.Workload.Name, b.Workload.Name),
		cmp.Compare(a.Container, b.Container),
		cmp.Compare(a.Image, b.Image),
	)
}
