package audit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ecr-preflight/ecr-preflight/internal/audit"
	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/awsseed"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

// Scale of the audit benchmark: issue 17's figure.
const (
	scaleWorkloads    = 1000
	scaleImages       = 300
	scaleRepositories = 50
	// scaleBudget is the target for one whole audit, cold.
	scaleBudget = 10 * time.Second
)

// callCounter is an awsclient.Observer counting calls by operation.
type callCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *callCounter) ObserveCall(operation, _ string, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[operation]++
}
func (*callCounter) CacheHit(string)  {}
func (*callCounter) CacheMiss(string) {}

func (c *callCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.calls))
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

// BenchmarkAuditAtScale audits 1,000 Deployments using 300 distinct images
// in 50 repositories (each with a lifecycle policy) for one node role,
// against moto, cold (a new engine each time): each run must finish
// within 10 s and ask AWS once per distinct lookup (per repository: one
// DescribeImages, one GetRepositoryPolicy, one GetLifecyclePolicy; per
// role: its policies once).
func BenchmarkAuditAtScale(b *testing.B) {
	srv := moto.Start(b, moto.WithAccountID(awsseed.SeedAccount))
	ctx := moto.Context(b)
	acct := awsseed.NewAccount(srv.Config(), awsseed.SeedAccount)
	role, err := acct.CreateRole(ctx, "EksNodeGroupRole", []string{awsseed.ReadOnlyPolicyARN}, nil)
	if err != nil {
		b.Fatal(err)
	}
	images := make([]string, scaleImages)
	for i := range images {
		repo := fmt.Sprintf("team-%02d/app", i%scaleRepositories)
		tag := fmt.Sprintf("1.%d.0", i)
		if _, err := acct.PushDistinctImage(ctx, repo, tag, i+1); err != nil {
			b.Fatal(err)
		}
		images[i] = acct.Image(repo, tag)
	}
	for r := range scaleRepositories {
		if _, err := acct.ECR.PutLifecyclePolicy(ctx, lifecycleInput(fmt.Sprintf("team-%02d/app", r))); err != nil {
			b.Fatal(err)
		}
	}
	reader := scaleCluster(b, images)
	targets, err := audit.List(ctx, reader, audit.ListOptions{})
	if err != nil || len(targets) != scaleWorkloads {
		b.Fatalf("listed %d workloads (%v), want %d", len(targets), err, scaleWorkloads)
	}

	b.ResetTimer()
	for b.Loop() {
		counter := &callCounter{calls: map[string]int{}}
		engine := scaleEngine(b, srv.Config(), counter)
		start := time.Now()
		report, err := audit.Run(ctx, targets, audit.Options{
			Checker: engine,
			Placer:  staticPlacer{nodepools.RolePools([]string{role})},
		})
		took := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if report.Summary.Workloads != scaleWorkloads || report.Summary.Images != scaleImages ||
			report.Summary.Verdicts[preflight.VerdictPullable] != scaleWorkloads {
			b.Fatalf("summary %+v, want %d workloads, %d images, all pullable", report.Summary, scaleWorkloads, scaleImages)
		}
		if took > scaleBudget {
			b.Errorf("audit took %v, want under %v", took, scaleBudget)
		}
		calls := counter.snapshot()
		for op, most := range map[string]int{
			"DescribeImages": scaleRepositories, "GetRepositoryPolicy": scaleRepositories,
			"GetLifecyclePolicy": scaleRepositories, "GetRole": 1, "ListAttachedRolePolicies": 1,
		} {
			if calls[op] == 0 || calls[op] > most {
				b.Errorf("%s called %d times, want 1 to %d (one per distinct lookup)", op, calls[op], most)
			}
		}
		total := 0
		for _, n := range calls {
			total += n
		}
		b.ReportMetric(took.Seconds(), "s/audit")
		b.ReportMetric(float64(total), "aws-calls/audit")
	}
}

// staticPlacer places every template on the same pools.
type staticPlacer struct{ pools []nodepools.Pool }

func (s staticPlacer) Placement(context.Context, nodepools.Template) (nodepools.Placement, error) {
	return nodepools.Placement{Candidates: s.pools}, nil
}

// scaleEngine is a cold engine over moto, with lifecycle prediction.
func scaleEngine(tb testing.TB, cfg aws.Config, obs awsclient.Observer) *preflight.Engine {
	tb.Helper()
	// The retryer the CLI uses: moto's config asks for one attempt.
	cfg.Retryer, cfg.RetryMaxAttempts = awsclient.NewRetryer(awsclient.RetryOptions{}), 0
	factory, err := awsclient.NewFactory(cfg, awsclient.FactoryOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	lookups := awsclient.NewLookups(factory, awsclient.Options{Observer: obs, CallTimeout: 10 * time.Second})
	e, err := preflight.New(preflight.Options{Lookups: lookups, Lifecycle: preflight.LifecycleOptions{Lookups: lookups}})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// scaleCluster is a fake API server holding scaleWorkloads Deployments,
// the i-th running images[i % len(images)].
func scaleCluster(tb testing.TB, images []string) client.Reader {
	tb.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		tb.Fatal(err)
	}
	objs := make([]client.Object, 0, scaleWorkloads)
	for i := range scaleWorkloads {
		labels := map[string]string{"app": fmt.Sprintf("app-%d", i)}
		objs = append(objs, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%d", i), Namespace: fmt.Sprintf("ns-%d", i%20)},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: images[i%len(images)]}}},
				},
			},
		})
	}
	return crfake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
}

func lifecycleInput(repo string) *ecr.PutLifecyclePolicyInput {
	return &ecr.PutLifecyclePolicyInput{
		RepositoryName: aws.String(repo),
		LifecyclePolicyText: aws.String(`{"rules":[{"rulePriority":1,"description":"untagged after 14 days",` +
			`"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`),
	}
}
