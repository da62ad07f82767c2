package preflight_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/awsclient/fake"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

const (
	benchAccount = "111122223333"
	benchRole    = "arn:aws:iam::111122223333:role/Node"
	benchImage   = "111122223333.dkr.ecr.us-west-2.amazonaws.com/team/app:v1"
	benchDigest  = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
	pullOnly     = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchImportUpstreamImage"],"Resource":"*"}]}`
	repoPolicy   = `{"Version":"2012-10-17","Statement":[{"Sid":"Org","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}`
)

// fakeAWS is one account with the image, a repository policy and a node
// role, answering with delay so that concurrent callers overlap.
type fakeAWS struct {
	ecr *fake.ECR
	iam *fake.IAM
	sts *fake.STS
}

func newFakeAWS(delay time.Duration) *fakeAWS {
	f := &fakeAWS{
		ecr: &fake.ECR{Repositories: map[string]*fake.Repository{
			"team/app": {Images: []types.ImageDetail{fake.Image(benchDigest, "v1")}, Policy: aws.String(repoPolicy)},
		}},
		iam: &fake.IAM{
			Roles: map[string]*fake.Role{"Node": {ARN: benchRole, Attached: []string{"arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly"}}},
			Policies: map[string]*fake.ManagedPolicy{"arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly": {
				Name: "AmazonEC2ContainerRegistryPullOnly", DefaultVersion: "v1", Versions: map[string]string{"v1": pullOnly},
			}},
		},
		sts: &fake.STS{Account: benchAccount},
	}
	f.ecr.Delay, f.iam.Delay, f.sts.Delay = delay, delay, delay
	return f
}

func (f *fakeAWS) engine(tb testing.TB) *preflight.Engine {
	tb.Helper()
	clients := &fake.Clients{ECRClient: f.ecr, IAMClient: f.iam, STSClient: f.sts}
	e, err := preflight.New(preflight.Options{Lookups: awsclient.NewLookups(clients, awsclient.Options{})})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// checkConcurrently runs n identical checks of a new image at once and
// returns how often each AWS operation was called.
func checkConcurrently(tb testing.TB, n int) map[string]int {
	tb.Helper()
	f := newFakeAWS(20 * time.Millisecond)
	e := f.engine(tb)
	var wg sync.WaitGroup
	start := make(chan struct{})
	verdicts := make([]preflight.Verdict, n)
	for i := range n {
		wg.Go(func() {
			<-start
			verdicts[i] = e.Check(context.Background(), []string{benchImage}, []string{benchRole})[0].Verdict
		})
	}
	close(start)
	wg.Wait()
	for i, v := range verdicts {
		if v != preflight.VerdictPullable {
			tb.Fatalf("check %d: verdict %s, want pullable", i, v)
		}
	}
	calls := map[string]int{}
	for _, op := range []string{"DescribeImages", "GetRepositoryPolicy", "GetRegistryPolicy"} {
		calls[op] = f.ecr.Calls(op)
	}
	for _, op := range []string{"GetRole", "ListAttachedRolePolicies", "GetPolicy", "GetPolicyVersion", "ListRolePolicies", "ListRoleTags"} {
		calls[op] = f.iam.Calls(op)
	}
	calls["GetCallerIdentity"] = f.sts.Calls("GetCallerIdentity")
	return calls
}

// TestConcurrentChecksOfANewImageCallAWSOncePerLookup: 1,000 admissions of
// the same new image at once must cost AWS exactly one call per distinct
// lookup, not a thousand.
func TestConcurrentChecksOfANewImageCallAWSOncePerLookup(t *testing.T) {
	calls := checkConcurrently(t, 1000)
	for op, n := range calls {
		if n > 1 {
			t.Errorf("%s called %d times, want at most 1", op, n)
		}
	}
	for _, op := range []string{"DescribeImages", "GetRepositoryPolicy", "ListAttachedRolePolicies", "GetPolicyVersion"} {
		if calls[op] != 1 {
			t.Errorf("%s called %d times, want exactly 1", op, calls[op])
		}
	}
}

// BenchmarkCheckWarm is one image for one role with every answer cached:
// the cost an admission pays on the hot path. Target < 5µs.
func BenchmarkCheckWarm(b *testing.B) {
	f := newFakeAWS(0)
	e := f.engine(b)
	ctx := context.Background()
	images, roles := []string{benchImage}, []string{benchRole}
	if r := e.Check(ctx, images, roles)[0]; r.Verdict != preflight.VerdictPullable {
		b.Fatalf("verdict %s: %+v", r.Verdict, r.Findings)
	}
	before := f.ecr.TotalCalls() + f.iam.TotalCalls()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.Check(ctx, images, roles)
	}
	b.StopTimer()
	if after := f.ecr.TotalCalls() + f.iam.TotalCalls(); after != before {
		b.Fatalf("warm checks made %d AWS calls", after-before)
	}
}

// BenchmarkCheckCold is the same check with nothing cached on the engine
// side (lookups warm): the evaluator's share of a result-cache miss.
func BenchmarkCheckColdEngineWarmLookups(b *testing.B) {
	f := newFakeAWS(0)
	clients := &fake.Clients{ECRClient: f.ecr, IAMClient: f.iam, STSClient: f.sts}
	lookups := awsclient.NewLookups(clients, awsclient.Options{})
	ctx := context.Background()
	images, roles := []string{benchImage}, []string{benchRole}
	e, err := preflight.New(preflight.Options{Lookups: lookups, ResultTTL: -1})
	if err != nil {
		b.Fatal(err)
	}
	e.Check(ctx, images, roles)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.Check(ctx, images, roles)
	}
}

// BenchmarkConcurrentNewImage reports AWS calls per distinct lookup for
// 1,000 concurrent checks of one new image (want 1).
func BenchmarkConcurrentNewImage(b *testing.B) {
	for b.Loop() {
		calls := checkConcurrently(b, 1000)
		most := 0
		for _, n := range calls {
			most = max(most, n)
		}
		b.ReportMetric(float64(most), "max-calls/lookup")
	}
}

// BenchmarkRepeatedDenials is a CI loop re-applying a rejected object: 1,000
// denials of one image in a row. A denial is re-verified with fresh AWS
// data, but only the lookups it rests on (here the repository policy) and
// at most once per fresh interval: IAM, whose quotas are account-wide,
// sees no call at all after the first check. Target: ≤ 1 call per deciding
// lookup per interval.
func BenchmarkRepeatedDenials(b *testing.B) {
	const denials = 1000
	for b.Loop() {
		f := newFakeAWS(0)
		f.ecr.Repositories["team/app"].Policy = aws.String(`{"Version":"2012-10-17","Statement":[{"Sid":"No","Effect":"Deny","Principal":{"AWS":"` + benchRole + `"},"Action":"ecr:*"}]}`)
		e := f.engine(b)
		start := time.Now()
		for range denials {
			if v := e.Check(context.Background(), []string{benchImage}, []string{benchRole})[0].Verdict; v != preflight.VerdictNotPullable {
				b.Fatalf("verdict %s, want not-pullable", v)
			}
		}
		intervals := 1 + int(time.Since(start)/awsclient.DefaultFreshInterval)
		// The first check asks once; each interval may ask once more.
		if n := f.ecr.Calls("GetRepositoryPolicy"); n > 1+intervals {
			b.Fatalf("GetRepositoryPolicy called %d times for %d denials in %d intervals", n, denials, intervals)
		}
		for _, op := range []string{"GetRole", "ListAttachedRolePolicies", "GetPolicyVersion", "ListRoleTags"} {
			if n := f.iam.Calls(op); n > 1 {
				b.Fatalf("%s called %d times for %d denials resting on the repository policy", op, n, denials)
			}
		}
		if n := f.ecr.Calls("DescribeImages"); n > 1 {
			b.Fatalf("DescribeImages called %d times for %d denials resting on the repository policy", n, denials)
		}
		b.ReportMetric(float64(f.ecr.Calls("GetRepositoryPolicy"))/denials, "policy-calls/denial")
	}
}
