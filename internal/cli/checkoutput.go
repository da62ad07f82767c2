package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// checkReport is the JSON document `check --output json` prints.
type checkReport struct {
	Images []preflight.Result `json:"images"`
}

// writeResults renders results for people (text) or machines (json).
func writeResults(w io.Writer, format outputFormat, results []preflight.Result) error {
	if format == outputJSON {
		for i := range results {
			if results[i].Findings == nil {
				results[i].Findings = []preflight.Finding{}
			}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(checkReport{Images: results}); err != nil {
			return fmt.Errorf("writing JSON: %w", err)
		}
		return nil
	}
	var b strings.Builder
	for _, r := range results {
		fmt.Fprintf(&b, "%-12s %s\n", r.Verdict, r.Image)
		for _, f := range r.Findings {
			// The header line names the image; messages never do.
			fmt.Fprintf(&b, "  %s %s: %s\n", f.Severity, f.Code, f.Message)
			if f.Fix != "" {
				fmt.Fprintf(&b, "    fix: %s\n", f.Fix)
			}
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing results: %w", err)
	}
	return nil
}

// checkExitCode is 1 when any image is not pullable, 3 when none is but any
// is unknown, and 0 when every image is pullable or skipped.
func checkExitCode(results []preflight.Result) int {
	code := ExitOK
	for _, r := range results {
		switch r.Verdict {
		case preflight.VerdictNotPullable:
			return ExitFail
		case preflight.VerdictUnknown:
			code = ExitUnknown
		}
	}
	return code
}
