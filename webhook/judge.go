package webhook

import (
	"fmt"
	"strings"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// verdicts is what the results of one admission amount to.
type verdicts struct {
	// warnings has one entry per finding that is not a denial.
	warnings []string
	// denials has one entry per finding that rejects the object.
	denials []denialLine
}

// judge turns results into warnings and denials. Only a not-pullable image
// can deny, and only when enforcing and when the image is new: changed is
// nil on CREATE (everything is new) and otherwise says which images the
// UPDATE introduced, so scaling or restarting a workload whose running
// images went bad is warned about, never blocked.
//
// With node pools, an image denies only when no candidate pool can pull
// it (not-pullable); one that some pools cannot pull (partly-pullable)
// is warned about, naming them, unless denyOnAnyPool.
func judge(results []preflight.Result, containers map[string][]string, changed map[string]bool, enforce, denyOnAnyPool bool) verdicts {
	var v verdicts
	roles := map[string]bool{}
	for _, r := range results {
		for _, f := range r.Findings {
			if f.Role != "" {
				roles[f.Role] = true
			}
		}
	}
	nameRole := len(roles) > 1
	for _, r := range results {
		rejects := r.Verdict == preflight.VerdictNotPullable ||
			(denyOnAnyPool && r.Verdict == preflight.VerdictPartlyPullable)
		deny := enforce && rejects && (changed == nil || changed[r.Image])
		for _, f := range r.Findings {
			// An error stands against the pull (where its pool, if any,
			// runs the pod), a warning leaves it open.
			against := f.Severity == preflight.SeverityError
			switch {
			case f.Severity == preflight.SeverityInfo:
			case deny && against:
				v.denials = append(v.denials, denialLine{containers: containers[r.Image], image: r.Image, finding: f})
			default:
				v.warnings = append(v.warnings, findingWarning(containers[r.Image], r.Image, against, f, nameRole))
			}
		}
	}
	return v
}

// unschedulable is the warning for a pod template no node pool can run,
// or for a cluster where no node pool is known, or "". Its images are
// still checked, for existence only.
func unschedulable(pl nodepools.Placement) string {
	switch {
	case len(pl.Candidates) > 0 || len(pl.Incomplete) > 0:
		// Incomplete discovery is said in the findings.
		return ""
	case len(pl.Excluded) == 0:
		return noticeWarning("no node pools are known: images checked for existence only (see ecr-preflight pools)")
	}
	reasons := make([]string, 0, 2)
	for i, x := range pl.Excluded {
		if i == 2 {
			reasons = append(reasons, fmt.Sprintf("%d more", len(pl.Excluded)-i))
			break
		}
		reasons = append(reasons, x.Pool.String()+": "+x.Reason)
	}
	// The key phrase first: a long reason is what gets cut.
	return noticeWarning("no node pool can run this pod template, its pods will stay Pending: %s", strings.Join(reasons, "; "))
}
