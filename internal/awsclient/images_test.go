package awsclient_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

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
			found, missing, err := e.l.DescribeImages(context.Background(), region, registry, tc.repo, tc.ids)
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
		if _, _, err := e.l.DescribeImages(ctx, region, registry, "team/app", []awsclient.ImageID{id}); err != nil {
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
		if _, _, err := e.l.DescribeImages(ctx, region, registry, "nope", []awsclient.ImageID{{Tag: "v1"}}); !errors.Is(err, awsclient.ErrRepositoryNotFound) {
			t.Fatalf("err = %v, want ErrRepositoryNotFound", err)
		}
	}
	if got := e.ecr.Calls("DescribeImages"); got != 1 {
		t.Fatalf("calls = %d, want 1", got)
	}
	e.clock.Advance(31 * time.Second)
	_, _, _ = e.l.DescribeImages(ctx, region, registry, "nope", []awsclient.ImageID{{Tag: "v1"}})
	if got := e.ecr.Calls("DescribeImages"); got != 2 {
		t.Fatalf("calls after the negative TTL = %d, want 2", got)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	e.ecr.SetErr("DescribeImages", &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"})
	for range 2 {
		_, _, err := e.l.DescribeImages(ctx, region, registry, "team/app", []awsclient.ImageID{{Tag: "v1"}})
		if awsclient.ClassOf(err) != awsclient.ClassThrottled {
			t.Fatalf("err = %v (class %s), want throttled", err, awsclient.ClassOf(err))
		}
	}
	if got := e.ecr.Calls("DescribeImages"); got != 2 {
		t.Fatalf("calls = %d, want 2: a throttled answer must not be cached", got)
	}
	e.ecr.SetErr("DescribeImages", nil)
	found, _, err := e.l.DescribeImages(ctx, region, registry, "team/app", []awsclient.ImageID{{Tag: "v1"}})
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
	_, _, err := e.l.DescribeImages(context.Background(), region, registry, "team/app", []awsclient.ImageID{{Tag: "v1"}})
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
			found, _, err := e.l.DescribeImages(context.Background(), region, registry, "team/app", []awsclient.ImageID{{Tag: "v1"}})
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
		_, _, err := e.l.DescribeImages(impatient, region, registry, "team/app", []awsclient.ImageID{{Tag: "v1"}})
		done <- err
	}()
	time.Sleep(time.Millisecond)
	found, _, err := e.l.DescribeImages(context.Background(), region, registry, "team/app", []awsclient.ImageID{{Tag: "v1"}})
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
	_, _, err := l.DescribeImages(context.Background(), region, registry, "team/app", []awsclient.ImageID{{Tag: "v1"}})
	if awsclient.ClassOf(err) != awsclient.ClassTimeout {
		t.Fatalf("err = %v (class %s), want timeout", err, awsclient.ClassOf(err))
	}
}

func TestWithFreshAsksAWSAgainAndRefreshesTheCache(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	ids := []awsclient.ImageID{{Tag: "nope"}}
	if _, missing, _ := e.l.DescribeImages(ctx, region, registry, "team/app", ids); len(missing) != 1 {
		t.Fatal("want nope missing")
	}
	// The image is pushed: an ordinary lookup still sees the cached absence...
	e.ecr.Repositories["team/app"].Images = append(e.ecr.Repositories["team/app"].Images, fake.Image(digestB, "nope"))
	if _, missing, _ := e.l.DescribeImages(ctx, region, registry, "team/app", ids); len(missing) != 1 {
		t.Fatal("want the cached absence")
	}
	// ...a fresh one asks ECR, and its answer replaces the cached one.
	if found, _, err := e.l.DescribeImages(awsclient.WithFresh(ctx), region, registry, "team/app", ids); err != nil || len(found) != 1 {
		t.Fatalf("fresh lookup: found %v, err %v", found, err)
	}
	if found, _, _ := e.l.DescribeImages(ctx, region, registry, "team/app", ids); len(found) != 1 {
		t.Fatal("the fresh answer should have refreshed the cache")
	}
	if got := e.ecr.Calls("DescribeImages"); got != 2 {
		t.Fatalf("calls = %d, want 2", got)
	}
}
