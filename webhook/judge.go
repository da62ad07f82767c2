package webhook

import "github.com/ecr-preflight/ecr-preflight/internal/preflight"

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
func judge(results []preflight.Result, containers map[string][]string, changed map[string]bool, enforce bool) verdicts {
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
		deny := enforce && (changed == nil || changed[r.Image])
		for _, f := range r.Findings {
			// The engine's verdict follows from its findings' severities:
			// an error stands against the pull, a warning leaves it open.
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
