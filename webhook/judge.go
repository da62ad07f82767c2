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
		if r.Verdict != preflight.VerdictNotPullable && r.Verdict != preflight.VerdictUnknown {
			continue
		}
		deny := enforce && r.Verdict == preflight.VerdictNotPullable && (changed == nil || changed[r.Image])
		for _, f := range relevant(r) {
			against := blocksPull(r.Verdict, f)
			if deny && against {
				v.denials = append(v.denials, denialLine{containers: containers[r.Image], image: r.Image, finding: f})
				continue
			}
			v.warnings = append(v.warnings, findingWarning(containers[r.Image], r.Image, against, f, nameRole))
		}
	}
	return v
}

// blocksPull says whether f stands against the pull: an error of a
// not-pullable image. A warning attached to such an image (another role
// undecided) is only a warning.
func blocksPull(v preflight.Verdict, f preflight.Finding) bool {
	return v == preflight.VerdictNotPullable && f.Severity != preflight.SeverityWarning
}

// relevant is the findings worth telling a user about: errors and
// warnings. A verdict without a finding to back it gets a placeholder, so
// a not-pullable image is never silently waved through and an unknown one
// is never silently passed as fine.
func relevant(r preflight.Result) []preflight.Finding {
	var out []preflight.Finding
	against := false
	for _, f := range r.Findings {
		if f.Severity != preflight.SeverityInfo {
			out = append(out, f)
			against = against || blocksPull(r.Verdict, f)
		}
	}
	switch {
	case r.Verdict == preflight.VerdictNotPullable && !against:
		out = append(out, preflight.Finding{Severity: preflight.SeverityError})
	case len(out) == 0:
		out = append(out, preflight.Finding{Code: preflight.CodeUndetermined, Severity: preflight.SeverityWarning})
	}
	return out
}
