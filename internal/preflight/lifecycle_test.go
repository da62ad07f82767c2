package preflight

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
)

// fakeLifecycle answers one repository's lifecycle policy and images.
type fakeLifecycle struct {
	policy    string // "" means none
	policyErr error
	images    []awsclient.ImageDetail
	listings  atomic.Int32
	// slow makes the listing wait for its context.
	slow bool
}

func (f *fakeLifecycle) LifecyclePolicy(context.Context, awsclient.Repository) (string, bool, error) {
	return f.policy, f.policy != "", f.policyErr
}

func (f *fakeLifecycle) RepositoryImages(ctx context.Context, _ awsclient.Repository) ([]awsclient.ImageDetail, error) {
	f.listings.Add(1)
	if f.slow {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return f.images, nil
}

// lifecycleNow is the tests' clock.
var lifecycleNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func lifecyclePolicy(rules string) string {
	return `{"rules":[` + rules + `]}`
}

const (
	expireAfter30Days = `{"rulePriority":1,"description":"old releases","selection":{"tagStatus":"tagged","tagPrefixList":["1."],"countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}`
	keepNewest2       = `{"rulePriority":1,"description":"keep two","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}`
)

func TestLifecycleFindings(t *testing.T) {
	seedDigest := "sha256:" + strings.Repeat("c", 64) // fakeLookups' digest for a tag
	image := func(digest string, pushed time.Time, tags ...string) awsclient.ImageDetail {
		return awsclient.ImageDetail{Digest: digest, Tags: tags, PushedAt: pushed, Status: "ACTIVE"}
	}
	tests := map[string]struct {
		life *fakeLifecycle
		// pushed is when the seed image was pushed (the fake's DescribeImages
		// does not say; the listing does).
		code    Code
		message string
		// listed says whether the repository's images were listed.
		listed bool
	}{
		"no lifecycle policy: nothing to say": {life: &fakeLifecycle{}},
		"an age rule that selects it in 3 days warns with the date": {
			life: &fakeLifecycle{policy: lifecyclePolicy(expireAfter30Days),
				images: []awsclient.ImageDetail{image(seedDigest, lifecycleNow.Add(-27*24*time.Hour), "1.2.1")}},
			code: CodeImageExpiring, message: `lifecycle rule 1 ("old releases") of repository retail-sample-app-ui will expire the image on 2026-12-03`,
		},
		"an age rule 20 days away is beyond the warning window": {
			life: &fakeLifecycle{policy: lifecyclePolicy(expireAfter30Days),
				images: []awsclient.ImageDetail{image(seedDigest, lifecycleNow.Add(-10*24*time.Hour), "1.2.1")}},
		},
		"an age rule that already selects it": {
			life: &fakeLifecycle{policy: lifecyclePolicy(expireAfter30Days),
				images: []awsclient.ImageDetail{image(seedDigest, lifecycleNow.Add(-40*24*time.Hour), "1.2.1")}},
			code: CodeImageExpired, message: "already selects the image: ECR will expire it shortly",
		},
		"a count rule that expires it on the next push lists the repository": {
			life: &fakeLifecycle{policy: lifecyclePolicy(keepNewest2), images: []awsclient.ImageDetail{
				image("sha256:"+strings.Repeat("d", 64), lifecycleNow.Add(-time.Hour), "1.3.0"),
				image(seedDigest, lifecycleNow.Add(-2*time.Hour), "1.2.1"),
			}},
			code: CodeImageExpiring, message: "keeps the newest 2 images it selects: the next push it matches will expire this one", listed: true,
		},
		"an unreadable policy costs the prediction, not the verdict": {
			life: &fakeLifecycle{policyErr: errors.New("AccessDenied")},
		},
		"a policy we cannot parse costs the prediction only": {
			life: &fakeLifecycle{policy: `{"rules":"nonsense"}`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// The checked image's own detail comes from DescribeImages; give
			// the fake's the listing's push time.
			l := seedLookups()
			l.repoPolicies = nil
			e, err := New(Options{Lookups: detailFrom{l, tc.life.images}, Now: func() time.Time { return lifecycleNow },
				Lifecycle: LifecycleOptions{Lookups: tc.life}})
			if err != nil {
				t.Fatal(err)
			}
			r := e.Check(t.Context(), []string{seedImage}, []string{seedRole})[0]
			if r.Verdict != VerdictPullable {
				t.Errorf("verdict %s, want pullable: lifecycle findings are advice (%+v)", r.Verdict, r.Findings)
			}
			var got *Finding
			for i, f := range r.Findings {
				if f.Code == CodeImageExpiring || f.Code == CodeImageExpired {
					got = &r.Findings[i]
				}
			}
			switch {
			case tc.code == "" && got != nil:
				t.Errorf("unexpected %s: %s", got.Code, got.Message)
			case tc.code != "" && got == nil:
				t.Errorf("no %s finding in %+v", tc.code, r.Findings)
			case got != nil:
				if got.Code != tc.code || !strings.Contains(got.Message, tc.message) || got.Severity != SeverityWarning || got.Lifecycle == nil || got.Lifecycle.Priority != 1 {
					t.Errorf("finding %+v (lifecycle %+v), want %s containing %q", *got, got.Lifecycle, tc.code, tc.message)
				}
			}
			if listed := tc.life.listings.Load() > 0; listed != tc.listed {
				t.Errorf("repository listed: %v, want %v", listed, tc.listed)
			}
		})
	}
}

// detailFrom is fakeLookups whose DescribeImages answers carry the push
// time and tags the listing gives for the same digest.
type detailFrom struct {
	*fakeLookups
	images []awsclient.ImageDetail
}

func (d detailFrom) DescribeImages(ctx context.Context, r awsclient.Repository, ids []awsclient.ImageID) ([]awsclient.ImageDetail, []awsclient.ImageID, error) {
	found, missing, err := d.fakeLookups.DescribeImages(ctx, r, ids)
	for i := range found {
		for _, img := range d.images {
			if img.Digest == found[i].Digest {
				found[i].PushedAt, found[i].Tags = img.PushedAt, img.Tags
			}
		}
	}
	return found, missing, err
}

// TestLifecycleListingIsBounded: a repository listing that takes longer
// than ListWait costs the count-rule prediction, not the check's time.
func TestLifecycleListingIsBounded(t *testing.T) {
	life := &fakeLifecycle{policy: lifecyclePolicy(keepNewest2), slow: true}
	e, err := New(Options{Lookups: seedLookups(), Now: func() time.Time { return lifecycleNow },
		Lifecycle: LifecycleOptions{Lookups: life, ListWait: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	r := e.Check(ctx, []string{seedImage}, nil)[0]
	if ctx.Err() != nil {
		t.Fatal("the check waited for the listing")
	}
	if r.Verdict != VerdictPullable || life.listings.Load() != 1 {
		t.Errorf("verdict %s, %d listings; want pullable after one listing was started", r.Verdict, life.listings.Load())
	}
}
