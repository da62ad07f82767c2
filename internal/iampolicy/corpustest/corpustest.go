// Package corpustest reads the evaluator's test corpus
// (internal/iampolicy/testdata/corpus/*.json) and compares decisions with
// its expectations, so the library tests and the `policy eval` CLI tests
// check the very same cases the same way.
package corpustest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
)

// File is one corpus file.
type File struct {
	Path  string
	Cases []Case `json:"cases"`
}

// Case is one request with its expected outcome.
type Case struct {
	Name    string          `json:"name"`
	Source  string          `json:"source"`
	Request json.RawMessage `json:"request"`
	Expect  Expect          `json:"expect"`
}

// Expect is what a case expects. Nil fields are not checked; Decision is
// always checked unless Error is set.
type Expect struct {
	Decision    iampolicy.Outcome   `json:"decision"`
	Reasons     *[]iampolicy.Reason `json:"reasons"`
	UnknownKeys *[]string           `json:"unknownKeys"`
	Missing     *[]string           `json:"missing"`
	Error       string              `json:"error"`
}

// Load reads every *.json file of dir, strictly: an unknown field in a case
// is a typo that would silently skip a check.
func Load(dir string) ([]File, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("listing corpus: %w", err)
	}
	sort.Strings(paths)
	files := make([]File, 0, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading corpus: %w", err)
		}
		f := File{Path: p}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", p, err)
		}
		files = append(files, f)
	}
	return files, nil
}

// Validate reports a case that cannot check anything.
func (c *Case) Validate() error {
	switch {
	case c.Expect.Decision == "" && c.Expect.Error == "":
		return fmt.Errorf("case %q expects neither a decision nor an error", c.Name)
	case c.Expect.Decision != "" && c.Expect.Error != "":
		return fmt.Errorf("case %q expects both a decision and an error", c.Name)
	case len(c.Request) == 0:
		return fmt.Errorf("case %q has no request", c.Name)
	}
	switch c.Expect.Decision {
	case "", iampolicy.Allow, iampolicy.ExplicitDeny, iampolicy.ImplicitDeny, iampolicy.Undetermined:
		return nil
	}
	return fmt.Errorf("case %q expects unknown decision %q", c.Name, c.Expect.Decision)
}

// CheckError compares a parse error with the expected error substring.
func (c *Case) CheckError(err error) []string {
	if err == nil {
		return []string{fmt.Sprintf("expected an error containing %q, got none", c.Expect.Error)}
	}
	if !strings.Contains(err.Error(), c.Expect.Error) {
		return []string{fmt.Sprintf("error %q does not contain %q", err.Error(), c.Expect.Error)}
	}
	return nil
}

// CheckDecision compares got with the expectation and describes every
// difference (none: nil).
func (c *Case) CheckDecision(got iampolicy.Decision) []string {
	var diffs []string
	e := c.Expect
	if got.Decision != e.Decision {
		diffs = append(diffs, fmt.Sprintf("decision = %q, want %q", got.Decision, e.Decision))
	}
	if e.Reasons != nil {
		if g, w := reasonSet(got.Reasons), reasonSet(*e.Reasons); !slices.Equal(g, w) {
			diffs = append(diffs, fmt.Sprintf("reasons = %v, want %v", g, w))
		}
	}
	if e.UnknownKeys != nil {
		if g, w := foldSorted(got.UnknownKeys), foldSorted(*e.UnknownKeys); !slices.Equal(g, w) {
			diffs = append(diffs, fmt.Sprintf("unknownKeys = %v, want %v", g, w))
		}
	}
	if e.Missing != nil {
		g := make([]string, len(got.Missing))
		for i, m := range got.Missing {
			g[i] = string(m)
		}
		if g, w := foldSorted(g), foldSorted(*e.Missing); !slices.Equal(g, w) {
			diffs = append(diffs, fmt.Sprintf("missing = %v, want %v", g, w))
		}
	}
	return diffs
}

func reasonSet(rs []iampolicy.Reason) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s/%s/%s/%s", r.Policy, r.Name, r.Statement, r.Effect)
	}
	slices.Sort(out)
	return out
}

func foldSorted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	slices.Sort(out)
	return out
}
