package awsclient_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/awsclient/fake"
)

const (
	lifecycleV1 = `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`
	lifecycleV2 = `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}`
)

// pagedECR is the fake ECR answering DescribeImages requests without
// imageIds in pages, as ECR does: at most pageSize images (or maxResults,
// if fewer) per answer, with a nextToken while more remain. A request for
// the page whose token is failToken fails with failErr.
type pagedECR struct {
	*fake.ECR
	pageSize  int
	failToken string
	failErr   error
}

func (p *pagedECR) DescribeImages(ctx context.Context, in *ecr.DescribeImagesInput, _ ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error) {
	out, err := p.ECR.DescribeImages(ctx, in)
	if err != nil || len(in.ImageIds) > 0 {
		return out, err
	}
	if p.failToken != "" && aws.ToString(in.NextToken) == p.failToken {
		return nil, p.failErr
	}
	start := 0
	if in.NextToken != nil {
		if start, err = strconv.Atoi(*in.NextToken); err != nil {
			return nil, &smithy.GenericAPIError{Code: "InvalidParameterException", Message: "bad nextToken"}
		}
	}
	n := p.pageSize
	if in.MaxResults != nil {
		n = min(n, int(*in.MaxResults))
	}
	end := min(start+n, len(out.ImageDetails))
	page := &ecr.DescribeImagesOutput{ImageDetails: out.ImageDetails[start:end]}
	if end < len(out.ImageDetails) {
		page.NextToken = aws.String(strconv.Itoa(end))
	}
	return page, nil
}

// pagedEnv is newEnv with DescribeImages answered in pages of pageSize.
func pagedEnv(pageSize int) (*env, *pagedECR) {
	e := newEnv()
	p := &pagedECR{ECR: e.ecr, pageSize: pageSize}
	e.l = awsclient.NewLookups(&fake.Clients{ECRClient: p, IAMClient: e.iam, STSClient: e.sts},
		awsclient.Options{Clock: e.clock, Observer: e.obs})
	return e, p
}

// at is n hours from the test clock's start (before it for a negative n).
func at(n int) time.Time {
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Hour)
}

// lifecycleImages are five images in every status, with the times that
// lifecycle rules read; the digests are digestA.. and sha256:e.
func lifecycleImages() []types.ImageDetail {
	pulled := fake.Image(digestA, "v1", "latest")
	pulled.ImagePushedAt, pulled.LastRecordedPullTime = aws.Time(at(-100)), aws.Time(at(-1))
	untagged := fake.Image(digestB)
	untagged.ImagePushedAt = aws.Time(at(-90))
	archived := fake.WithStatus(fake.Image(digestC, "v0"), types.ImageStatusArchived)
	archived.ImagePushedAt, archived.LastArchivedAt = aws.Time(at(-2000)), aws.Time(at(-500))
	waking := fake.WithStatus(fake.Image(digestD, "old"), types.ImageStatusActivating)
	waking.ImagePushedAt, waking.LastArchivedAt, waking.LastActivatedAt = aws.Time(at(-3000)), aws.Time(at(-2500)), aws.Time(at(-3))
	restored := fake.Image("sha256:e", "v-1")
	restored.ImagePushedAt, restored.LastArchivedAt, restored.LastActivatedAt = aws.Time(at(-4000)), aws.Time(at(-3500)), aws.Time(at(-200))
	return []types.ImageDetail{pulled, untagged, archived, waking, restored}
}

func TestLifecyclePolicy(t *testing.T) {
	tests := map[string]struct {
		repo      string
		policy    *string
		wantText  string
		wantFound bool
		wantIs    error
	}{
		"a repository with a lifecycle policy":    {repo: "team/app", policy: aws.String(lifecycleV1), wantText: lifecycleV1, wantFound: true},
		"a repository without a lifecycle policy": {repo: "team/app"},
		"a missing repository":                    {repo: "nope", wantIs: awsclient.ErrRepositoryNotFound},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv()
			e.ecr.Repositories["team/app"].LifecyclePolicy = tc.policy
			r := awsclient.Repository{Registry: awsclient.Registry{Region: region, Account: registry}, Name: tc.repo}
			for range 2 { // the second answer comes from the cache
				text, found, err := e.l.LifecyclePolicy(context.Background(), r)
				if tc.wantIs != nil {
					if !errors.Is(err, tc.wantIs) || awsclient.ClassOf(err) != awsclient.ClassNotFound {
						t.Fatalf("err = %v (class %s), want %v", err, awsclient.ClassOf(err), tc.wantIs)
					}
				} else if err != nil {
					t.Fatal(err)
				}
				if text != tc.wantText || found != tc.wantFound {
					t.Errorf("= %q, %v; want %q, %v", text, found, tc.wantText, tc.wantFound)
				}
			}
			if got := e.ecr.Calls("GetLifecyclePolicy"); got != 1 {
				t.Errorf("GetLifecyclePolicy calls = %d, want 1", got)
			}
			if e.obs.hits["lifecycle_policy"] != 1 || e.obs.misses["lifecycle_policy"] != 1 {
				t.Errorf("observer saw hits %v, misses %v; want one of each for lifecycle_policy", e.obs.hits, e.obs.misses)
			}
		})
	}
}

func TestLifecyclePolicyIsCachedForItsTTLAndAskedAgainWhenFresh(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	repo := e.ecr.Repositories["team/app"]
	repo.LifecyclePolicy = aws.String(lifecycleV1)
	ask := func(ctx context.Context, want string) {
		t.Helper()
		text, _, err := e.l.LifecyclePolicy(ctx, teamApp)
		if err != nil || text != want {
			t.Fatalf("= %q, %v; want %q", text, err, want)
		}
	}
	ask(ctx, lifecycleV1)
	repo.LifecyclePolicy = aws.String(lifecycleV2)
	e.clock.Advance(awsclient.DefaultFreshInterval)
	ask(ctx, lifecycleV1)
	ask(awsclient.WithFresh(ctx, awsclient.KindRepositoryPolicy, awsclient.KindRepositoryImages), lifecycleV1)
	if got := e.ecr.Calls("GetLifecyclePolicy"); got != 1 {
		t.Fatalf("before a fresh look at it: %d calls, want 1", got)
	}
	ask(awsclient.WithFresh(ctx, awsclient.KindLifecyclePolicy), lifecycleV2)
	ask(ctx, lifecycleV2) // the fresh answer refreshed the cache
	if got := e.ecr.Calls("GetLifecyclePolicy"); got != 2 {
		t.Fatalf("after a fresh look: %d calls, want 2", got)
	}
	repo.LifecyclePolicy = nil
	e.clock.Advance(5 * time.Minute) // TTLs.Policy
	if _, found, err := e.l.LifecyclePolicy(ctx, teamApp); err != nil || found {
		t.Fatalf("after the policy TTL: found %v, err %v; want the policy gone", found, err)
	}
	repo.LifecyclePolicy = aws.String(lifecycleV1)
	e.clock.Advance(30 * time.Second) // TTLs.NotFound
	ask(ctx, lifecycleV1)
	if got := e.ecr.Calls("GetLifecyclePolicy"); got != 4 {
		t.Fatalf("after the negative TTL: %d calls, want 4", got)
	}
}

func TestLifecyclePolicyErrors(t *testing.T) {
	tests := map[string]struct {
		err       error
		wantClass awsclient.Class
		wantText  string
	}{
		"access denied names our missing permission": {
			err:       &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"},
			wantClass: awsclient.ClassAccessDenied,
			wantText:  "getting the lifecycle policy of team/app: our credentials are not allowed ecr:GetLifecyclePolicy: api error AccessDeniedException: not authorized",
		},
		"throttling": {
			err:       &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"},
			wantClass: awsclient.ClassThrottled,
			wantText:  "getting the lifecycle policy of team/app: throttled by AWS: api error ThrottlingException: Rate exceeded",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv()
			e.ecr.SetErr("GetLifecyclePolicy", tc.err)
			for range 2 {
				_, _, err := e.l.LifecyclePolicy(context.Background(), teamApp)
				var le *awsclient.LookupError
				if !errors.As(err, &le) || le.Class != tc.wantClass || le.Action != "ecr:GetLifecyclePolicy" {
					t.Fatalf("err = %#v, want a %s LookupError for ecr:GetLifecyclePolicy", err, tc.wantClass)
				}
				if err.Error() != tc.wantText {
					t.Errorf("err = %q\nwant  %q", err, tc.wantText)
				}
			}
			if got := e.ecr.Calls("GetLifecyclePolicy"); got != 2 {
				t.Errorf("calls = %d, want 2: a failure must not be cached", got)
			}
		})
	}
}

func TestRepositoryImagesPagesThroughEveryImage(t *testing.T) {
	e, _ := pagedEnv(2)
	e.ecr.Repositories["team/app"].Images = lifecycleImages()
	got, err := e.l.RepositoryImages(context.Background(), teamApp)
	if err != nil {
		t.Fatal(err)
	}
	const media = "application/vnd.oci.image.manifest.v1+json"
	want := []awsclient.ImageDetail{
		{ID: awsclient.ImageID{Digest: digestA}, Digest: digestA, Tags: []string{"v1", "latest"}, ManifestMediaType: media,
			PushedAt: at(-100), Status: "ACTIVE", LastPulledAt: at(-1)},
		{ID: awsclient.ImageID{Digest: digestB}, Digest: digestB, ManifestMediaType: media, PushedAt: at(-90), Status: "ACTIVE"},
		{ID: awsclient.ImageID{Digest: digestC}, Digest: digestC, Tags: []string{"v0"}, ManifestMediaType: media,
			PushedAt: at(-2000), Status: "ARCHIVED", LastArchivedAt: at(-500)},
		{ID: awsclient.ImageID{Digest: digestD}, Digest: digestD, Tags: []string{"old"}, ManifestMediaType: media,
			PushedAt: at(-3000), Status: "ACTIVATING", LastArchivedAt: at(-2500), LastActivatedAt: at(-3)},
		{ID: awsclient.ImageID{Digest: "sha256:e"}, Digest: "sha256:e", Tags: []string{"v-1"}, ManifestMediaType: media,
			PushedAt: at(-4000), Status: "ACTIVE", LastArchivedAt: at(-3500), LastActivatedAt: at(-200)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("images:\ngot  %+v\nwant %+v", got, want)
	}
	if n := e.ecr.Calls("DescribeImages"); n != 3 {
		t.Fatalf("DescribeImages calls = %d, want 3 pages", n)
	}
	var tokens []string
	for _, in := range e.ecr.DescribeImagesInputs {
		tokens = append(tokens, aws.ToString(in.NextToken))
		if aws.ToString(in.RepositoryName) != "team/app" || aws.ToString(in.RegistryId) != registry ||
			aws.ToInt32(in.MaxResults) != 1000 || in.Filter == nil || in.Filter.ImageStatus != types.ImageStatusFilterAny || len(in.ImageIds) != 0 {
			t.Errorf("input = %+v (filter %+v), want team/app in %s, up to 1000 images per page, in every status", in, in.Filter, registry)
		}
	}
	if want := []string{"", "2", "4"}; !reflect.DeepEqual(tokens, want) {
		t.Errorf("next tokens sent = %q, want %q", tokens, want)
	}
	if got := e.obs.calls["DescribeImages ok"]; got != 3 {
		t.Errorf("observer saw %d DescribeImages calls, want one per page (%v)", got, e.obs.calls)
	}
}

func TestRepositoryImagesIsCachedForTheTagTTLAndAskedAgainWhenFresh(t *testing.T) {
	ctx := context.Background()
	e, _ := pagedEnv(2)
	repo := e.ecr.Repositories["team/app"]
	repo.Images = lifecycleImages()
	count := func(ctx context.Context, want int) {
		t.Helper()
		images, err := e.l.RepositoryImages(ctx, teamApp)
		if err != nil || len(images) != want {
			t.Fatalf("%d images, err %v; want %d", len(images), err, want)
		}
	}
	count(ctx, 5)
	count(ctx, 5)
	if got := e.ecr.Calls("DescribeImages"); got != 3 {
		t.Fatalf("a second listing made calls: %d, want the first's 3", got)
	}
	repo.Images = repo.Images[:4]
	e.clock.Advance(awsclient.DefaultFreshInterval)
	count(awsclient.WithFresh(ctx, awsclient.KindImage, awsclient.KindLifecyclePolicy), 5)
	count(awsclient.WithFresh(ctx, awsclient.KindRepositoryImages), 4)
	count(ctx, 4) // the fresh answer refreshed the cache
	if got := e.ecr.Calls("DescribeImages"); got != 5 {
		t.Fatalf("after a fresh listing: %d calls, want 5", got)
	}
	repo.Images = repo.Images[:1]
	e.clock.Advance(time.Minute) // TTLs.ImageByTag
	count(ctx, 1)
	if got := e.ecr.Calls("DescribeImages"); got != 6 {
		t.Fatalf("after the tag TTL: %d calls, want 6", got)
	}
	if e.obs.hits["repository_images"] != 3 || e.obs.misses["repository_images"] != 3 {
		t.Errorf("observer saw hits %v, misses %v; want 3 of each for repository_images", e.obs.hits, e.obs.misses)
	}
}

func TestRepositoryImagesOfAnEmptyOrMissingRepository(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	images, err := e.l.RepositoryImages(ctx, awsclient.Repository{Registry: teamApp.Registry, Name: "empty"})
	if err != nil || images == nil || len(images) != 0 {
		t.Fatalf("empty repository: %v, err %v; want no images and no error", images, err)
	}
	ghost := awsclient.Repository{Registry: teamApp.Registry, Name: "nope"}
	for range 2 {
		_, err := e.l.RepositoryImages(ctx, ghost)
		var le *awsclient.LookupError
		if !errors.Is(err, awsclient.ErrRepositoryNotFound) || !errors.As(err, &le) || le.Class != awsclient.ClassNotFound || le.Action != "ecr:DescribeImages" {
			t.Fatalf("missing repository: err = %v, want ErrRepositoryNotFound from ecr:DescribeImages", err)
		}
	}
	if got := e.ecr.Calls("DescribeImages"); got != 2 {
		t.Fatalf("calls = %d, want 2: the absence is cached", got)
	}
	e.clock.Advance(30 * time.Second) // TTLs.NotFound
	if _, err := e.l.RepositoryImages(ctx, ghost); !errors.Is(err, awsclient.ErrRepositoryNotFound) {
		t.Fatalf("err = %v, want ErrRepositoryNotFound", err)
	}
	if got := e.ecr.Calls("DescribeImages"); got != 3 {
		t.Fatalf("calls after the negative TTL = %d, want 3", got)
	}
}

func TestRepositoryImagesErrors(t *testing.T) {
	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"}
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
	tests := map[string]struct {
		err       error
		failToken string // "": every call fails
		wantClass awsclient.Class
		wantText  string
		wantCalls int // of the two attempts together
	}{
		"access denied names our missing permission": {
			err: denied, wantClass: awsclient.ClassAccessDenied, wantCalls: 2,
			wantText: "listing the images of team/app: our credentials are not allowed ecr:DescribeImages: api error AccessDeniedException: not authorized",
		},
		"throttling on the second page fails the listing": {
			err: throttled, failToken: "2", wantClass: awsclient.ClassThrottled, wantCalls: 4,
			wantText: "listing the images of team/app: throttled by AWS: api error ThrottlingException: Rate exceeded",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e, p := pagedEnv(2)
			e.ecr.Repositories["team/app"].Images = lifecycleImages()
			if tc.failToken == "" {
				e.ecr.SetErr("DescribeImages", tc.err)
			} else {
				p.failToken, p.failErr = tc.failToken, tc.err
			}
			for range 2 {
				images, err := e.l.RepositoryImages(context.Background(), teamApp)
				var le *awsclient.LookupError
				if !errors.As(err, &le) || le.Class != tc.wantClass || le.Action != "ecr:DescribeImages" || images != nil {
					t.Fatalf("= %v, %#v; want no images and a %s LookupError for ecr:DescribeImages", images, err, tc.wantClass)
				}
				if err.Error() != tc.wantText {
					t.Errorf("err = %q\nwant  %q", err, tc.wantText)
				}
			}
			if got := e.ecr.Calls("DescribeImages"); got != tc.wantCalls {
				t.Errorf("calls = %d, want %d: a failure must not be cached", got, tc.wantCalls)
			}
		})
	}
}

func TestConcurrentListingsOfARepositoryMakeOneCallPerPage(t *testing.T) {
	e, _ := pagedEnv(2)
	e.ecr.Repositories["team/app"].Images = lifecycleImages()
	e.ecr.Delay = 20 * time.Millisecond
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			images, err := e.l.RepositoryImages(context.Background(), teamApp)
			if err == nil && len(images) != 5 {
				err = fmt.Errorf("%d images, want 5", len(images))
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
	if got := e.ecr.Calls("DescribeImages"); got != 3 {
		t.Fatalf("calls = %d, want 3: one listing of 3 pages for all callers", got)
	}
}

func TestDescribeImagesCarriesTheLifecycleTimes(t *testing.T) {
	e := newEnv()
	e.ecr.Repositories["team/app"].Images = lifecycleImages()
	found, _, err := e.l.DescribeImages(context.Background(), teamApp, []awsclient.ImageID{{Tag: "v1"}, {Tag: "old"}})
	if err != nil || len(found) != 2 {
		t.Fatalf("found %+v, err %v", found, err)
	}
	if d := found[0]; !d.LastPulledAt.Equal(at(-1)) || !d.LastArchivedAt.IsZero() || !d.LastActivatedAt.IsZero() {
		t.Errorf("v1: pulled %v, archived %v, activated %v; want pulled %v only", d.LastPulledAt, d.LastArchivedAt, d.LastActivatedAt, at(-1))
	}
	if d := found[1]; !d.LastPulledAt.IsZero() || !d.LastArchivedAt.Equal(at(-2500)) || !d.LastActivatedAt.Equal(at(-3)) {
		t.Errorf("old: pulled %v, archived %v, activated %v; want archived %v, activated %v", d.LastPulledAt, d.LastArchivedAt, d.LastActivatedAt, at(-2500), at(-3))
	}
}
