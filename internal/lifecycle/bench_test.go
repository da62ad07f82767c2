package lifecycle_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/lifecycle"
)

// benchPolicy has ten rules of every kind, as a busy repository might: tag
// patterns and prefixes, counts and ages, archiving and expiring.
func benchPolicy(tb testing.TB) *lifecycle.Policy {
	tb.Helper()
	tagged := func(list, count string) string {
		return `{"tagStatus": "tagged", ` + list + `, ` + count + `}`
	}
	const (
		keep  = `"countType": "imageCountMoreThan", "countNumber": 50`
		age   = `"countType": "sinceImagePushed", "countUnit": "days", "countNumber": 180`
		pull  = `"countType": "sinceImagePulled", "countUnit": "days", "countNumber": 90`
		moved = `"countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 365`
	)
	p := mustParse(tb, policy(
		rule(1, tagged(`"tagPatternList": ["release-*-stable"]`, keep), expire),
		rule(2, tagged(`"tagPatternList": ["prod-*", "*-eu"]`, keep), expire),
		rule(3, tagged(`"tagPrefixList": ["staging-"]`, age), expire),
		rule(4, tagged(`"tagPrefixList": ["dev-", "feature-"]`, age), transition),
		rule(5, tagged(`"tagPatternList": ["*-rc*"]`, pull), transition),
		rule(6, tagged(`"tagPatternList": ["pr-*-*"]`, keep), expire),
		rule(7, tagged(`"tagPrefixList": ["nightly"]`, pull), transition),
		rule(8, untagged14, expire),
		rule(9, `{"tagStatus": "any", "storageClass": "archive", `+moved+`}`, expire),
		rule(10, `{"tagStatus": "any", `+keep+`}`, expire),
	))
	if len(p.Rules) != 10 {
		tb.Fatalf("benchmark policy has %d rules, want 10", len(p.Rules))
	}
	return p
}

// benchImages builds n images with tags that every rule of benchPolicy
// matches some of, an eighth of them untagged and a tenth archived.
func benchImages(n int) []lifecycle.Image {
	kinds := []string{"release-%d-stable", "prod-%d", "staging-%d", "dev-%d", "v%d-rc1", "pr-%d-1", "nightly-%d", "feature-%d", "sha-%d"}
	images := make([]lifecycle.Image, n)
	for i := range images {
		img := lifecycle.Image{
			Digest:   fmt.Sprintf("sha256:%064x", i),
			PushedAt: evalNow.Add(-time.Duration(i) * 37 * time.Minute),
		}
		if i%8 != 0 {
			img.Tags = []string{fmt.Sprintf(kinds[i%len(kinds)], i), fmt.Sprintf("build-%d", i)}
			if i%5 == 0 {
				img.Tags = append(img.Tags, fmt.Sprintf("prod-%d-eu", i))
			}
			if i%7 == 0 {
				img.Tags = append(img.Tags, fmt.Sprintf("feature-%d", i))
			}
		}
		if i%3 == 0 {
			img.LastPulledAt = img.PushedAt.Add(48 * time.Hour)
		}
		if i%10 == 0 {
			img.StorageClass = lifecycle.ImageArchive
			img.LastTransitionedAt = img.PushedAt.Add(24 * time.Hour)
		}
		images[i] = img
	}
	return images
}

// BenchmarkEvaluate is an audit's call for one large repository: 10,000
// images against a 10-rule policy.
func BenchmarkEvaluate(b *testing.B) {
	p := benchPolicy(b)
	images := benchImages(10_000)
	fates := lifecycle.Evaluate(p, images, evalNow)
	used := map[int]bool{}
	for _, f := range fates {
		used[f.Rule.Priority] = true
	}
	if len(used) != 10 {
		b.Fatalf("the images reach %d of the 10 rules: %v", len(used), used)
	}
	b.ReportAllocs()
	for b.Loop() {
		lifecycle.Evaluate(p, images, evalNow)
	}
}
