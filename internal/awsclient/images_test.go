package awsclient_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/awsclient/fake"
)

func digests(ds []awsclient.ImageDetail) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID.String()+"="+d.Digest)
	}
	slices.Sort(out)
	return out
}

func TestDescribeImages(t *testing.T) {
	tests := map[string]struct {
		repo        string
		ids         []awsclient.ImageID
		wantFound   []string
		wantMissing []awsclient.ImageID
		wantCalls   int
		wantRepoNF  bool
	}{
		"an existing tag is found with its digest": {
			repo: "team/app", ids: []awsclient.ImageID{{Tag: "v1"}},
			wantFound: []string{"v1=" + digestA}, wantCalls: 1,
		},
		"an existing digest is found": {
			repo: "team/app", ids: []awsclient.ImageID{{Digest: digestB}},
			wantFound: []string{digestB + "=" + digestB}, wantCalls: 1,
		},
		"several present ids take one call": {
			repo: "team/app", ids: []awsclient.ImageID{{Tag: "v1"}, {Tag: "v2"}, {Digest: digestA}},
			wantFound: []string{"v1=" + digestA, "v2=" + digestB, digestA + "=" + digestA}, wantCalls: 1,
		},
		"a missing tag is reported missing, not as an error": {
			repo: "team/app", ids: []awsclient.ImageID{{Tag: "nope"}},
			wantMissing: []awsclient.ImageID{{Tag: "nope"}}, wantCalls: 1,
		},
		"a batch with one missing id is asked again id by id": {
			repo: "team/app", ids: []awsclient.ImageID{{Tag: "v1"}, {Tag: "nope"}, {Digest: digestB}},
			wantFound:   []string{"v1=" + digestA, digestB + "=" + digestB},
			wantMissing: []awsclient.ImageID{{Tag: "nope"}}, wantCalls: 4,
		},
		"duplicate ids are asked and answered once": {
			repo: "team/app", ids: []awsclient.ImageID{{Tag: "v1"}, {Tag: "v1"}},
			wantFound: []string{"v1=" + digestA}, wantCalls: 1,
		},
		"a missing repository is ErrRepositoryNotFound": {
			repo: "nope", ids: []awsclient.ImageID{{Tag: "v1"}}, wantRepoNF: true, wantCalls: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv()
			found, missing, err := e.l.DescribeImages(context.Background(), awsclient.Repository{Registry: awsclient.Registry{Region: region, Account: registry}, Name: tc.repo}, tc.ids)
			if tc.wantRepoNF {
				if !errors.Is(err, awsclient.ErrRepositoryNotFound) || awsclient.ClassOf(err) != awsclient.ClassNotFound {
					t.Fatalf("err = %v (class %s), want ErrRepositoryNotFound", err, awsclient.ClassOf(err))
				}
			} else if err != nil {
				t.Fatal(err)
			}
			slices.Sort(tc.wantFound)
			if got := digests(found); !slices.Equal(got, tc.wantFound) {
				t.Errorf("found = %v, want %v", got, tc.wantFound)
			}
			if !slices.Equal(missing, tc.wantMissing) {
				t.Errorf("missing = %v, want %v", missing, tc.wantMissing)
			}
			if got := e.ecr.Calls("DescribeImages"); got != tc.wantCalls {
				t.Errorf("DescribeImages calls = %d, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestDescribeImagesCachesEachKindForItsTTL(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	ask := func(id awsclient.ImageID) {
		t.Helper()
		if _, _, err := e.l.DescribeImages(ctx, teamApp, []awsclient.ImageID{id}); err != nil {
			t.Fatal(err)
		}
	}
	ask(awsclient.ImageID{Tag: "v1"})
	ask(awsclient.ImageID{Tag: "v1"})
	ask(awsclient.ImageID{Digest: digestA}) // learnt from the tag lookup
	if got := e.ecr.Calls("DescribeImages"); got != 1 {
		t.Fatalf("after a tag lookup, its repeat and its digest: %d calls, want 1", got)
	}
	ask(awsclient.ImageID{Tag: "nope"})
	e.clock.Advance(31 * time.Second) // past NotFound, within ImageByTag
	ask(awsclient.ImageID{Tag: "v1"})
	ask(awsclient.ImageID{Tag: "nope"})
	if got := e.ecr.Calls("DescribeImages"); got != 3 {
		t.Fatalf("after the negative TTL: %d calls, want 3 (tag still cached, absence asked again)", got)
	}
	e.clock.Advance(30 * time.Second) // past ImageByTag
	ask(awsclient.ImageID{Tag: "v1"})
	ask(awsclient.ImageID{Digest: digestA})
	if got := e.ecr.Calls("DescribeImages"); got != 4 {
		t.Fatalf("after the tag TTL: %d calls, want 4 (tag asked again, digest still cached)", got)
	}
	e.clock.Advance(24 * time.Hour)
	ask(awsclient.ImageID{Digest: digestB})
	ask(awsclient.ImageID{Digest: digestB})
	if got := e.ecr.Calls("DescribeImages"); got != 5 {
		t.Fatalf("digest lookup: %d calls, want 5", got)
	}
	if e.obs.hits["image"] == 0 || e.obs.misses["image"] == 0 {
		t.Errorf("observer saw hits %v misses %v, want both for image", e.obs.hits, e.obs.misses)
	}
}

func TestMissingRepositoryIsCachedBriefly(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	for range 2 {
		if _, _, err := e.l.DescribeImages(ctx, awsclient.Repository{Registry: awsclient.Registry{Region: region, Account: registry}, Name: "nope"}, []awsclient.ImageID{{Tag: "v1"}}); !errors.Is(err, awsclient.ErrRepositoryNotFound) {
			t.Fatalf("err = %v, want ErrRepositoryNotFound", err)
		}
	}
	if got := e.ecr.Calls("DescribeImages"); got != 1 {
		t.Fatalf("calls = %d, want 1", got)
	}
	e.clock.Advance(31 * time.Second)
	_, _, _ = e.l.DescribeImages(ctx, awsclient.Repository{Registry: awsclient.Registry{Region: region, Account: registry}, Name: "nope"}, []awsclient.ImageID{{Tag: "v1"}})
	if got := e.ecr.Calls("DescribeImages"); got != 2 {
		t.Fatalf("calls after the negative TTL = %d, want 2", got)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	e.ecr.SetErr("DescribeImages", &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"})
	for range 2 {
		_, _, err := e.l.DescribeImages(ctx, teamApp, []awsclient.ImageID{{Tag: "v1"}})
		if awsclient.ClassOf(err) != awsclient.ClassThrottled {
			t.Fatalf("err = %v (class %s), want throttled", err, awsclient.ClassOf(err))
		}
	}
	if got := e.ecr.Calls("DescribeImages"); got != 2 {
		t.Fatalf("calls = %d, want 2: a throttled answer must not be cached", got)
	}
	e.ecr.SetErr("DescribeImages", nil)
	found, _, err := e.l.DescribeImages(ctx, teamApp, []awsclient.ImageID{{Tag: "v1"}})
	if err != nil || len(found) != 1 {
		t.Fatalf("after the throttling ended: found %v, err %v", found, err)
	}
	if got := e.obs.calls["DescribeImages throttled"]; got != 2 {
		t.Errorf("observer saw %d throttled calls, want 2 (%v)", got, e.obs.calls)
	}
}

func TestErrorsNameTheOperationAndOurMissingPermission(t *testing.T) {
	e := newEnv()
	e.ecr.SetErr("DescribeImages", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"})
	_, _, err := e.l.DescribeImages(context.Background(), teamApp, []awsclient.ImageID{{Tag: "v1"}})
	var le *awsclient.LookupError
	if !errors.As(err, &le) || le.Class != awsclient.ClassAccessDenied || le.Action != "ecr:DescribeImages" {
		t.Fatalf("err = %#v, want an access-denied LookupError for ecr:DescribeImages", err)
	}
	const want = "describing images in team/app: our credentials are not allowed ecr:DescribeImages: api error AccessDeniedException: not authorized"
	if err.Error() != want {
		t.Errorf("err = %q\nwant  %q", err, want)
	}
}

func TestConcurrentIdenticalLookupsMakeOneCall(t *testing.T) {
	e := newEnv()
	e.ecr.Delay = 20 * time.Millisecond
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for range 1000 {
		wg.Go(func() {
			found, _, err := e.l.DescribeImages(context.Background(), teamApp, []awsclient.ImageID{{Tag: "v1"}})
			if err == nil && len(found) != 1 {
				err = errors.New("image not found")
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := e.ecr.Calls("DescribeImages"); got != 1 {
		t.Fatalf("1000 concurrent lookups made %d calls, want 1", got)
	}
}

func TestACallerGivingUpDoesNotFailTheOthers(t *testing.T) {
	e := newEnv()
	e.ecr.Delay = 50 * time.Millisecond
	impatient, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := e.l.DescribeImages(impatient, teamApp, []awsclient.ImageID{{Tag: "v1"}})
		done <- err
	}()
	time.Sleep(time.Millisecond)
	found, _, err := e.l.DescribeImages(context.Background(), teamApp, []awsclient.ImageID{{Tag: "v1"}})
	if err != nil || len(found) != 1 {
		t.Fatalf("patient caller: found %v, err %v", found, err)
	}
	if err := <-done; awsclient.ClassOf(err) != awsclient.ClassTimeout {
		t.Fatalf("impatient caller: err %v, want a timeout", err)
	}
}

func TestEachCallHasItsOwnDeadline(t *testing.T) {
	e := newEnv()
	slow := &slowECR{ECR: e.ecr}
	l := awsclient.NewLookups(&fakeClientsECR{ecr: slow}, awsclient.Options{CallTimeout: 10 * time.Millisecond})
	_, _, err := l.DescribeImages(context.Background(), teamApp, []awsclient.ImageID{{Tag: "v1"}})
	if awsclient.ClassOf(err) != awsclient.ClassTimeout {
		t.Fatalf("err = %v (class %s), want timeout", err, awsclient.ClassOf(err))
	}
}

func TestWithFreshAsksAWSAgainAndRefreshesTheCache(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	ids := []awsclient.ImageID{{Tag: "nope"}}
	if _, missing, _ := e.l.DescribeImages(ctx, teamApp, ids); len(missing) != 1 {
		t.Fatal("want nope missing")
	}
	// The image is pushed: an ordinary lookup still sees the cached absence...
	e.ecr.Repositories["team/app"].Images = append(e.ecr.Repositories["team/app"].Images, fake.Image(digestB, "nope"))
	if _, missing, _ := e.l.DescribeImages(ctx, teamApp, ids); len(missing) != 1 {
		t.Fatal("want the cached absence")
	}
	// ...so does a fresh one while the answer is younger than the fresh
	// interval...
	if _, missing, _ := e.l.DescribeImages(awsclient.WithFresh(ctx), teamApp, ids); len(missing) != 1 {
		t.Fatal("want the absence fetched just now")
	}
	// ...after it, a fresh one asks ECR, and its answer replaces the cached one.
	e.clock.Advance(awsclient.DefaultFreshInterval)
	if found, _, err := e.l.DescribeImages(awsclient.WithFresh(ctx, awsclient.KindImage), teamApp, ids); err != nil || len(found) != 1 {
		t.Fatalf("fresh lookup: found %v, err %v", found, err)
	}
	if found, _, _ := e.l.DescribeImages(ctx, teamApp, ids); len(found) != 1 {
		t.Fatal("the fresh answer should have refreshed the cache")
	}
	if got := e.ecr.Calls("DescribeImages"); got != 2 {
		t.Fatalf("calls = %d, want 2", got)
	}
}

// statuses lists found images as "ID=STATUS", sorted.
func statuses(ds []awsclient.ImageDetail) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID.String()+"="+d.Status)
	}
	slices.Sort(out)
	return out
}

// newArchiveEnv is newEnv with "team/app" holding, besides v1 (digestA) and
// v2 (digestB), an archived image "old" and one being restored, "waking".
func newArchiveEnv() *env {
	e := newEnv()
	e.ecr.Repositories["team/app"].Images = append(e.ecr.Repositories["team/app"].Images,
		fake.WithStatus(fake.Image(digestC, "old"), types.ImageStatusArchived),
		fake.WithStatus(fake.Image(digestD, "waking"), types.ImageStatusActivating))
	return e
}

func TestDescribeImagesFindsImagesInEveryStatus(t *testing.T) {
	tests := map[string]struct {
		ids         []awsclient.ImageID
		wantFound   []string
		wantMissing []awsclient.ImageID
		wantCalls   int
	}{
		"an archived image by tag is found ARCHIVED, not missing": {
			ids:       []awsclient.ImageID{{Tag: "old"}},
			wantFound: []string{"old=ARCHIVED"}, wantCalls: 1,
		},
		"an archived image by digest is found ARCHIVED": {
			ids:       []awsclient.ImageID{{Digest: digestC}},
			wantFound: []string{digestC + "=ARCHIVED"}, wantCalls: 1,
		},
		"an image being restored is found ACTIVATING": {
			ids:       []awsclient.ImageID{{Tag: "waking"}},
			wantFound: []string{"waking=ACTIVATING"}, wantCalls: 1,
		},
		"active and archived images take one call together": {
			ids:       []awsclient.ImageID{{Tag: "v1"}, {Tag: "old"}, {Digest: digestD}},
			wantFound: []string{"v1=ACTIVE", "old=ARCHIVED", digestD + "=ACTIVATING"}, wantCalls: 1,
		},
		"a missing image among archived ones is still missing": {
			ids:         []awsclient.ImageID{{Tag: "old"}, {Tag: "nope"}},
			wantFound:   []string{"old=ARCHIVED"},
			wantMissing: []awsclient.ImageID{{Tag: "nope"}}, wantCalls: 3,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newArchiveEnv()
			found, missing, err := e.l.DescribeImages(context.Background(), teamApp, tc.ids)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(tc.wantFound)
			if got := statuses(found); !slices.Equal(got, tc.wantFound) {
				t.Errorf("found = %v, want %v", got, tc.wantFound)
			}
			if !slices.Equal(missing, tc.wantMissing) {
				t.Errorf("missing = %v, want %v", missing, tc.wantMissing)
			}
			if got := e.ecr.Calls("DescribeImages"); got != tc.wantCalls {
				t.Errorf("DescribeImages calls = %d, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestEveryDescribeImagesCallAsksForAnyStatus(t *testing.T) {
	e := newArchiveEnv()
	// A batch with a missing id is asked again id by id: those calls too.
	ids := []awsclient.ImageID{{Tag: "v1"}, {Tag: "old"}, {Tag: "nope"}}
	if _, _, err := e.l.DescribeImages(context.Background(), teamApp, ids); err != nil {
		t.Fatal(err)
	}
	if len(e.ecr.DescribeImagesInputs) != 4 {
		t.Fatalf("%d DescribeImages calls, want 4", len(e.ecr.DescribeImagesInputs))
	}
	for i, in := range e.ecr.DescribeImagesInputs {
		if in.Filter == nil || in.Filter.ImageStatus != types.ImageStatusFilterAny {
			t.Errorf("call %d: filter %+v, want imageStatus ANY", i, in.Filter)
		}
	}
}

func TestArchivedImagesAreCachedLikeActiveOnes(t *testing.T) {
	ctx := context.Background()
	e := newArchiveEnv()
	ask := func(ctx context.Context, id awsclient.ImageID) string {
		t.Helper()
		found, _, err := e.l.DescribeImages(ctx, teamApp, []awsclient.ImageID{id})
		if err != nil || len(found) != 1 {
			t.Fatalf("%s: found %v, err %v", id, found, err)
		}
		return found[0].Status
	}
	if got := ask(ctx, awsclient.ImageID{Tag: "old"}); got != "ARCHIVED" {
		t.Fatalf("old: status %q, want ARCHIVED", got)
	}
	if got := ask(ctx, awsclient.ImageID{Digest: digestC}); got != "ARCHIVED" {
		t.Fatalf("old's digest: status %q, want ARCHIVED (learnt from the tag lookup)", got)
	}
	if got := e.ecr.Calls("DescribeImages"); got != 1 {
		t.Fatalf("%d calls, want 1: the tag answer is cached, and under its digest", got)
	}
	// Restored: the cached answer stands for its TTL; a fresh look sees it.
	if !e.ecr.SetImageStatus("team/app", digestC, types.ImageStatusActive) {
		t.Fatal("the fake lost the image")
	}
	if got := ask(ctx, awsclient.ImageID{Tag: "old"}); got != "ARCHIVED" {
		t.Errorf("within the TTL: status %q, want the cached ARCHIVED", got)
	}
	e.clock.Advance(awsclient.DefaultFreshInterval)
	if got := ask(awsclient.WithFresh(ctx), awsclient.ImageID{Tag: "old"}); got != "ACTIVE" {
		t.Errorf("fresh: status %q, want ACTIVE", got)
	}
	if got := ask(ctx, awsclient.ImageID{Digest: digestC}); got != "ACTIVE" {
		t.Errorf("after the fresh look: digest status %q, want ACTIVE (refreshed)", got)
	}
	if got := e.ecr.Calls("DescribeImages"); got != 2 {
		t.Errorf("%d calls, want 2", got)
	}
}

func TestWithFreshAsksOnlyForTheKindsNamed(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	ids := []awsclient.ImageID{{Tag: "v1"}}
	if _, _, err := e.l.DescribeImages(ctx, teamApp, ids); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.l.RepositoryPolicy(ctx, teamApp); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(awsclient.DefaultFreshInterval)
	fresh := awsclient.WithFresh(ctx, awsclient.KindRepositoryPolicy)
	for range 3 {
		if _, _, err := e.l.DescribeImages(fresh, teamApp, ids); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.l.RepositoryPolicy(fresh, teamApp); err != nil {
			t.Fatal(err)
		}
	}
	// The images were not named: cached. The policy was: asked once, then
	// fresh enough for the rest of the interval.
	if got := e.ecr.Calls("DescribeImages"); got != 1 {
		t.Errorf("DescribeImages calls = %d, want 1", got)
	}
	if got := e.ecr.Calls("GetRepositoryPolicy"); got != 2 {
		t.Errorf("GetRepositoryPolicy calls = %d, want 2", got)
	}
}

func TestNoLookupStartsAfterTheCallersDeadline(t *testing.T) {
	e := newEnv()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := e.l.DescribeImages(ctx, teamApp, []awsclient.ImageID{{Tag: "v1"}})
	if awsclient.ClassOf(err) != awsclient.ClassTimeout {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if got := e.ecr.Calls("DescribeImages"); got != 0 {
		t.Fatalf("a lookup for an ended admission made %d calls", got)
	}
}

// countingECR records the most DescribeImages calls it saw at once.
type countingECR struct {
	awsclient.ECRAPI
	mu        sync.Mutex
	now, peak int
}

func (c *countingECR) DescribeImages(ctx context.Context, in *ecr.DescribeImagesInput, _ ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error) {
	c.mu.Lock()
	c.now++
	c.peak = max(c.peak, c.now)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.now--
		c.mu.Unlock()
	}()
	time.Sleep(5 * time.Millisecond)
	return c.ECRAPI.DescribeImages(ctx, in)
}

func TestCallsInFlightAreBoundedAcrossCallers(t *testing.T) {
	e := newEnv()
	counting := &countingECR{ECRAPI: e.ecr}
	l := awsclient.NewLookups(&fake.Clients{ECRClient: counting, IAMClient: e.iam, STSClient: e.sts},
		awsclient.Options{MaxConcurrentCalls: 3, CallTimeout: time.Minute})
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			// Distinct tags: nothing is shared or cached between callers.
			_, _, _ = l.DescribeImages(t.Context(), teamApp, []awsclient.ImageID{{Tag: fmt.Sprintf("t%d", i)}})
		})
	}
	wg.Wait()
	if counting.peak > 3 || counting.peak == 0 {
		t.Fatalf("%d calls in flight at once, want between 1 and 3", counting.peak)
	}
}
