package webhook

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/awsclient/fake"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

const benchReadOnly = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchCheckLayerAvailability","ecr:GetDownloadUrlForLayer","ecr:BatchGetImage"],"Resource":"*"}]}`

// warmEngine is the real preflight engine over fake AWS that has the three
// images and a node role with the read-only policy, with every answer
// already cached. It returns the engine and a count of AWS calls.
func warmEngine(b *testing.B) (*preflight.Engine, func() int) {
	b.Helper()
	img := func(d string) []types.ImageDetail { return []types.ImageDetail{fake.Image(d, "1.2.1")} }
	ecrFake := &fake.ECR{Repositories: map[string]*fake.Repository{
		"retail-sample-app-ui":      {Images: img("sha256:" + strings.Repeat("1", 64))},
		"retail-sample-app-catalog": {Images: img("sha256:" + strings.Repeat("2", 64))},
		"retail-sample-app-cart":    {Images: img("sha256:" + strings.Repeat("3", 64))},
	}}
	iamFake := &fake.IAM{
		Roles: map[string]*fake.Role{"EksNodeGroupRole": {ARN: nodeRole, Attached: []string{"arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"}}},
		Policies: map[string]*fake.ManagedPolicy{"arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly": {
			Name: "AmazonEC2ContainerRegistryReadOnly", DefaultVersion: "v1", Versions: map[string]string{"v1": benchReadOnly}}},
	}
	stsFake := &fake.STS{Account: "1234567890"}
	clients := &fake.Clients{ECRClient: ecrFake, IAMClient: iamFake, STSClient: stsFake}
	e, err := preflight.New(preflight.Options{Lookups: awsclient.NewLookups(clients, awsclient.Options{})})
	if err != nil {
		b.Fatal(err)
	}
	images := []string{uiImage, okImage, vpcImage}
	for _, r := range e.Check(context.Background(), images, []string{nodeRole}) {
		if r.Verdict != preflight.VerdictPullable {
			b.Fatalf("%s: %s %+v", r.Image, r.Verdict, r.Findings)
		}
	}
	return e, func() int { return ecrFake.TotalCalls() + iamFake.TotalCalls() + stsFake.TotalCalls() }
}

// BenchmarkAdmission measures one admission of a three-image Deployment
// through the real HTTPS server (keep-alive loopback, as the API server
// calls it): ecr-preflight with the real engine and a warm cache, against a
// controller-runtime validator that does nothing on the same server. The
// difference is what ecr-preflight adds to a warm admission; the benchmark
// fails if any warm admission reaches AWS.
func BenchmarkAdmission(b *testing.B) {
	engine, awsCalls := warmEngine(b)
	s := startServer(b, Options{Checker: engine, Roles: StaticRoles{nodeRole}})
	body := review(b, admissionv1.Create, deployment("ui-private", uiImage, okImage, vpcImage), nil)
	before := awsCalls()
	defer func() {
		if n := awsCalls() - before; n != 0 {
			b.Errorf("warm admissions made %d AWS calls, want 0", n)
		}
	}()
	for name, path := range map[string]string{"ecr-preflight": "/validate-apps-v1-deployment", "noop": noopPath} {
		b.Run(name, func(b *testing.B) {
			s.post(b, path, body) // warm the connection
			timings := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				s.post(b, path, body)
				timings = append(timings, time.Since(start))
			}
			b.StopTimer()
			reportPercentiles(b, timings)
		})
	}
}

func reportPercentiles(b *testing.B, timings []time.Duration) {
	if len(timings) == 0 {
		return
	}
	slices.Sort(timings)
	at := func(p float64) float64 {
		return float64(timings[int(p*float64(len(timings)-1))].Microseconds())
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}
