package lifecycle_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/lifecycle"
)

// example is one file of testdata/examples: a policy of AWS's "Examples of
// lifecycle policies in Amazon ECR" page (title and source name it), a
// repository built by hand after the example's "Repository contents" in
// DescribeImages' field names (digests are the example's image names), and
// the fates that follow from the documented outcome. Images absent from Want
// are those no rule can ever select.
type example struct {
	Title             string              `json:"title"`
	Source            string              `json:"source"`
	DocumentedOutcome string              `json:"documentedOutcome"`
	Notes             string              `json:"notes"`
	Now               time.Time           `json:"now"`
	Policy            json.RawMessage     `json:"policy"`
	Images            []imageDetail       `json:"images"`
	Want              map[string]wantFate `json:"want"`
}

// imageDetail is the subset of DescribeImages' ImageDetail the evaluator reads.
type imageDetail struct {
	ImageDigest          string    `json:"imageDigest"`
	ImageTags            []string  `json:"imageTags"`
	ImagePushedAt        time.Time `json:"imagePushedAt"`
	LastRecordedPullTime time.Time `json:"lastRecordedPullTime"`
	ImageStatus          string    `json:"imageStatus"`
	LastArchivedAt       time.Time `json:"lastArchivedAt"`
	LastActivatedAt      time.Time `json:"lastActivatedAt"`
}

func (d imageDetail) image() lifecycle.Image {
	return lifecycle.Image{
		Digest:             d.ImageDigest,
		Tags:               d.ImageTags,
		PushedAt:           d.ImagePushedAt,
		LastPulledAt:       d.LastRecordedPullTime,
		StorageClass:       lifecycle.StorageClassOf(d.ImageStatus),
		LastTransitionedAt: d.LastArchivedAt,
		LastActivatedAt:    d.LastActivatedAt,
	}
}

// wantFate is a Fate as the golden files spell it.
type wantFate struct {
	RulePriority int                  `json:"rulePriority"`
	Action       lifecycle.ActionType `json:"action"`
	Selected     bool                 `json:"selected,omitempty"`
	At           *time.Time           `json:"at,omitempty"`
	AfterPushes  int                  `json:"afterPushes,omitempty"`
}

func toWant(f lifecycle.Fate) wantFate {
	w := wantFate{RulePriority: f.Rule.Priority, Action: f.Rule.Action.Type, Selected: f.Selected, AfterPushes: f.AfterPushes}
	if !f.At.IsZero() {
		at := f.At
		w.At = &at
	}
	return w
}

func (w wantFate) String() string {
	b, _ := json.Marshal(w)
	return string(b)
}

// TestExamples reproduces every example policy of AWS's "Examples of
// lifecycle policies in Amazon ECR" with a fixed clock.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "examples", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 13 {
		t.Fatalf("found %d example files, want the 13 examples of the AWS page and more", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var ex example
			dec := json.NewDecoder(strings.NewReader(string(data)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ex); err != nil {
				t.Fatalf("decoding %s: %v", file, err)
			}
			if ex.Title == "" || ex.Source == "" || ex.DocumentedOutcome == "" || ex.Now.IsZero() {
				t.Fatalf("%s needs a title, a source, the documented outcome and now", file)
			}
			p, err := lifecycle.Parse(string(ex.Policy))
			if err != nil {
				t.Fatalf("%s: the documented policy does not parse: %v", ex.Title, err)
			}
			images := make([]lifecycle.Image, len(ex.Images))
			for i, d := range ex.Images {
				images[i] = d.image()
			}
			got := lifecycle.Evaluate(p, images, ex.Now)
			for _, digest := range slices.Sorted(maps.Keys(ex.Want)) {
				want := ex.Want[digest]
				fate, ok := got[digest]
				switch {
				case !ok:
					t.Errorf("%s: image %s: no fate, want %v", ex.Title, digest, want)
				case toWant(fate).String() != want.String():
					t.Errorf("%s: image %s: fate %v, want %v", ex.Title, digest, toWant(fate), want)
				}
			}
			for _, digest := range slices.Sorted(maps.Keys(got)) {
				if _, ok := ex.Want[digest]; !ok {
					t.Errorf("%s: image %s: fate %v, want none (no rule can select it)", ex.Title, digest, toWant(got[digest]))
				}
			}
		})
	}
}
