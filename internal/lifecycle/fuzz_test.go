package lifecycle_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/lifecycle"
)

// FuzzParse: no input may make Parse panic, Parse returns a policy or an
// error, and a parsed policy evaluates without panicking to fates that obey
// the Fate contract.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "examples", "*.json"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(string(data)) // not a policy: exercises the unknown-field paths
		}
	}
	for _, seed := range []string{
		policy(rule(1, prod10, expire), rule(2, untagged14, expire), rule(3, keep1, expire)),
		policy(rule(1, pulled90, transition), rule(2, archived90, expire)),
		policy(rule(1, `{"tagStatus": "tagged", "tagPatternList": ["*a*b*c*d", "x*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 2147483647}`, expire)),
		policy(rule(2, keep1, expire), rule(2, keep1, expire)),
		policy(rule(1, `{"tagStatus": "tagged", "tagPrefixList": [1], "countType": "x", "countNumber": 1e3}`, `{"type": null}`)),
		`{"rules": [{"rulePriority": -0, "selection": [], "action": "expire", "description": {"a": [1, 2, 3, 4, 5, 6, 7]}}]}`,
		`{"rules": null, "padding": "` + string(make([]byte, 100)) + `"}`,
	} {
		f.Add(seed)
	}
	images := []lifecycle.Image{
		img("A", 400, "prod-1", "abcd"), img("B", 3), img("C", 0, "x"),
		{Digest: "D", Tags: []string{"prod-2"}, PushedAt: daysAgo(200), StorageClass: lifecycle.ImageArchive, LastTransitionedAt: daysAgo(100)},
		{Digest: "E", PushedAt: daysAgo(100), LastPulledAt: daysAgo(95), LastActivatedAt: daysAgo(96)},
		{Digest: "F"},
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := lifecycle.Parse(text)
		if (p == nil) == (err == nil) {
			t.Fatalf("Parse returned policy %v and error %v", p, err)
		}
		if err != nil {
			return
		}
		for _, now := range []time.Time{evalNow, {}} {
			for digest, fate := range lifecycle.Evaluate(p, images, now) {
				switch {
				case fate.Selected && (!fate.At.IsZero() || fate.AfterPushes != 0):
					t.Fatalf("image %s: selected with a date or push count: %+v", digest, fate)
				case !fate.Selected && fate.Rule.Selection.CountType == lifecycle.CountImageCountMoreThan && fate.AfterPushes < 1:
					t.Fatalf("image %s: count rule without pushes to go: %+v", digest, fate)
				case !fate.Selected && fate.Rule.Selection.CountType != lifecycle.CountImageCountMoreThan && fate.At.IsZero():
					t.Fatalf("image %s: since rule without a date: %+v", digest, fate)
				}
			}
		}
	})
}
