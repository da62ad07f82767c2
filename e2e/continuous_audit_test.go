package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	coordinationv1 "k8s.io/api/coordination/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecr-preflight/ecr-preflight/e2e/harness"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/awsseed"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/ecrstub"
)

// The continuous audit's world: one Deployment in its own namespace, whose
// image sits in a repository without the seed's Deny.
const (
	caNamespace  = "audited"
	caWorkload   = "web"
	caContainer  = "app" // harness.Deployment's container
	caRepository = "shop/web"
	caTag        = "1.0"
	// caLease is --audit-lease-name, in --cert-secret-namespace.
	caLease          = "e2e-audit"
	caLeaseNamespace = "default"

	// caRoundTimeout bounds the wait for one change to show: a round
	// starts every 10s (--audit-interval's minimum) and, with every cache
	// off, the first round after an AWS change sees it.
	caRoundTimeout = 40 * time.Second
	// caFailoverTimeout bounds the wait for the other replica to audit
	// after the leader stops: the leader releases the Lease on SIGTERM
	// (LeaderElectionReleaseOnCancel), and at worst the Lease expires
	// (controller-runtime's 15s) before the other's next try (2s).
	caFailoverTimeout = 45 * time.Second
)

// The audit's surfaces as a person reads them: literal, because
// dashboards, alerts and kubectl commands spell them so
// (internal/metrics/audit.go, internal/audit/continuous.go).
const (
	caVerdictMetric = "ecr_preflight_workload_image_verdict"
	caFindingMetric = "ecr_preflight_workload_image_finding"
	caPolicyReport  = "ecr-preflight"
)

// keepNewestLifecycle expires every image of the repository but the
// newest, in the classic grammar moto accepts (moto never expires an
// image itself).
const keepNewestLifecycle = `{"rules":[{"rulePriority":1,"description":"keep the newest image",` +
	`"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`

// TestContinuousAudit runs two replicas of `ecr-preflight serve
// --audit-interval=10s` (the seed's role as the static node pool, every
// cache off, so that each round sees AWS as it is) against a real API
// server with the PolicyReport CRD, and a Deployment whose image pulls. It
// proves:
//
//   - exactly one replica audits: its /metrics has the Deployment's
//     container as pullable, the other's has no series for it;
//   - a deleted tag, a repository policy that denies the node role, and a
//     lifecycle rule that selects the image each show within a round or
//     two as a Warning Event on the Deployment naming the finding
//     (ImageNotPullable, or ImageExpiring for the rule), a gauge with the
//     finding's code, and a fail (warn for the rule) result in the
//     namespace's PolicyReport; and the repair clears them (a Normal
//     ImagePullable Event where there was a failure, pass);
//   - when the auditing replica stops, the other takes the Lease and
//     audits.
func TestContinuousAudit(t *testing.T) {
	start := time.Now()
	env := harness.Start(t, harness.Options{})
	// The replicas reach moto through the ECR stub, which answers what
	// moto lacks (DescribePullThroughCacheRules: none). Without it a tag
	// missing from a nested repository such as shop/web, where a
	// pull-through cache rule could import it on the first pull, is
	// unknown (a warning), not ImageNotFound.
	stub := ecrstub.Start(t, env.Moto)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	installPolicyReportCRD(ctx, t, env)
	env.CreateNamespace(t, caNamespace, "", nil)
	acct := env.Seed.Account
	if _, err := acct.PushImage(ctx, caRepository, caTag); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"--audit-interval=10s", "--audit-lease-name=" + caLease, "--cert-secret-namespace=" + caLeaseNamespace,
		"--lifecycle-warn-days=7",
		"--cache-ttl-image-tag=0", "--cache-ttl-policy=0", "--cache-ttl-result=0", "--cache-ttl-not-found=0",
	}
	replicas := []*harness.Webhook{
		env.Serve(t, harness.ServeOptions{Args: args, AWSEndpoint: stub.URL}),
		env.Serve(t, harness.ServeOptions{Args: args, AWSEndpoint: stub.URL}),
	}
	c := env.Client(t, nil)
	w := &auditedWorkload{c: c, image: acct.Image(caRepository, caTag)}
	if err := c.Create(ctx, harness.Deployment(caNamespace, caWorkload, w.image)); err != nil {
		t.Fatal(err)
	}
	t.Logf("environment ready in %s", time.Since(start).Round(time.Millisecond))

	leader, follower := w.auditor(ctx, t, replicas)
	if err := w.await(ctx, t, "the first audit to find the image pullable", caRoundTimeout, replicas, w.healthy(ctx, leader, time.Time{}, "")); err != nil {
		t.Fatal(err)
	}
	holder := auditLeaseHolder(ctx, t, c)
	if holder == "" {
		t.Fatalf("Lease %s/%s has no holder, yet a replica audits", caLeaseNamespace, caLease)
	}

	for _, b := range breakages(acct, env.Seed.RoleARN) {
		t.Run(b.name, func(t *testing.T) { w.breakAndRepair(ctx, t, leader, b) })
	}
	// Many rounds later, still one auditor.
	if err := w.gauge(ctx, follower, caVerdictMetric, nil, 0); err != nil {
		t.Errorf("the replica that does not hold the Lease audits: %v", err)
	}

	t.Run("when the auditing replica stops the other takes the Lease and audits", func(t *testing.T) {
		stopped := time.Now()
		leader.Stop()
		if err := w.await(ctx, t, "the other replica to audit", caFailoverTimeout, []*harness.Webhook{follower},
			w.healthy(ctx, follower, time.Time{}, "")); err != nil {
			t.Fatal(err)
		}
		t.Logf("the other replica audited %s after the leader stopped", time.Since(stopped).Round(time.Millisecond))
		if now := auditLeaseHolder(ctx, t, c); now == holder {
			t.Errorf("Lease %s/%s is still held by %q, the stopped replica", caLeaseNamespace, caLease, now)
		}
	})
}

// breakage is one way the Deployment's image stops pulling (or is about
// to be expired), and its repair.
type breakage struct {
	name string
	// code is the finding the audit reports while broken, reason the
	// Warning Event's.
	code, reason string
	// result is the PolicyReport's result while broken: fail, or warn for
	// an image that still pulls (a lifecycle rule selects it).
	result          string
	breakIt, repair func(context.Context) error
}

// breakages are the three ways of issue 17's tests: a deleted tag, a
// repository policy Deny for the node role, a lifecycle rule.
func breakages(a *awsseed.Account, roleARN string) []breakage {
	return []breakage{{
		name: "a deleted tag is ImageNotFound until it is pushed again",
		code: "ImageNotFound", reason: "ImageNotPullable", result: "fail",
		breakIt: func(ctx context.Context) error { return deleteTag(ctx, a, caRepository, caTag) },
		repair: func(ctx context.Context) error {
			_, err := a.PushImage(ctx, caRepository, caTag)
			return err
		},
	}, {
		name: "a repository policy denying the node role is RepositoryPolicyDenies until it is deleted",
		code: "RepositoryPolicyDenies", reason: "ImageNotPullable", result: "fail",
		breakIt: func(ctx context.Context) error {
			return a.SetRepositoryPolicy(ctx, caRepository, awsseed.SeedPolicy(roleARN, "Deny"))
		},
		repair: func(ctx context.Context) error {
			if _, err := a.ECR.DeleteRepositoryPolicy(ctx, &ecr.DeleteRepositoryPolicyInput{RepositoryName: aws.String(caRepository)}); err != nil {
				return fmt.Errorf("deleting the policy of %s: %w", caRepository, err)
			}
			return nil
		},
	}, {
		name: "a lifecycle rule that selects the image is ImageExpired, a warning, until it is deleted",
		code: "ImageExpired", reason: "ImageExpiring", result: "warn",
		breakIt: func(ctx context.Context) error {
			// A newer image, which the rule keeps: it selects the older.
			if _, err := a.PushDistinctImage(ctx, caRepository, "1.1", 1); err != nil {
				return err
			}
			if _, err := a.ECR.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{
				RepositoryName: aws.String(caRepository), LifecyclePolicyText: aws.String(keepNewestLifecycle),
			}); err != nil {
				return fmt.Errorf("putting the lifecycle policy of %s: %w", caRepository, err)
			}
			return nil
		},
		repair: func(ctx context.Context) error {
			if _, err := a.ECR.DeleteLifecyclePolicy(ctx, &ecr.DeleteLifecyclePolicyInput{RepositoryName: aws.String(caRepository)}); err != nil {
				return fmt.Errorf("deleting the lifecycle policy of %s: %w", caRepository, err)
			}
			return nil
		},
	}}
}

// deleteTag deletes repo:tag, as `aws ecr batch-delete-image` does: the
// image goes with its last tag.
func deleteTag(ctx context.Context, a *awsseed.Account, repo, tag string) error {
	out, err := a.ECR.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{
		RepositoryName: aws.String(repo), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String(tag)}},
	})
	if err == nil && len(out.Failures) > 0 {
		err = errors.New(aws.ToString(out.Failures[0].FailureReason))
	}
	if err != nil {
		return fmt.Errorf("deleting %s:%s: %w", repo, tag, err)
	}
	return nil
}

// installPolicyReportCRD installs the tests' minimal PolicyReport CRD and
// waits until the API server serves the kind.
func installPolicyReportCRD(ctx context.Context, t *testing.T, env *harness.Env) {
	t.Helper()
	crd, err := filepath.Abs("../internal/audit/testdata/crds")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"apply", "-f", crd},
		{"wait", "--for=condition=Established", "crd/policyreports.wgpolicyk8s.io", "--timeout=60s"},
	} {
		if r := env.Kubectl(ctx, args...); r.Err != nil {
			t.Fatalf("%s: %v\n%s", r.Command, r.Err, r.Output)
		}
	}
	// Established is not yet served everywhere: wait until the kind lists.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := env.Kubectl(ctx, "get", "policyreports.wgpolicyk8s.io", "-A")
		if r.Err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the PolicyReport CRD was never served: %s\n%s", r.Command, r.Output)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// auditLeaseHolder is the holder of the audit's Lease ("" for none).
func auditLeaseHolder(ctx context.Context, t *testing.T, c client.Client) string {
	t.Helper()
	l := &coordinationv1.Lease{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: caLeaseNamespace, Name: caLease}, l); err != nil {
		t.Fatalf("reading Lease %s/%s: %v", caLeaseNamespace, caLease, err)
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

// auditedWorkload is the Deployment under audit, read back through each
// of the audit's surfaces: /metrics, Events and the PolicyReport.
type auditedWorkload struct {
	c     client.Client
	image string
}

func (w *auditedWorkload) String() string {
	return fmt.Sprintf("Deployment %s/%s container %s (%s)", caNamespace, caWorkload, caContainer, w.image)
}

// auditor waits for the first audit of the workload and returns the
// replica that made it and the other: the Lease decides which, so the
// metrics tell, and only one may have any series for the workload.
func (w *auditedWorkload) auditor(ctx context.Context, t *testing.T, replicas []*harness.Webhook) (leader, follower *harness.Webhook) {
	t.Helper()
	err := w.await(ctx, t, "the first audit", caRoundTimeout, replicas, func() error {
		var auditing []int
		for i, r := range replicas {
			n, err := w.series(ctx, r, caVerdictMetric, nil)
			if err != nil {
				return err
			}
			if n > 0 {
				auditing = append(auditing, i)
			}
		}
		if len(auditing) != 1 {
			return fmt.Errorf("replicas %v (of 0, 1) export %s; want exactly one", auditing, caVerdictMetric)
		}
		leader, follower = replicas[auditing[0]], replicas[1-auditing[0]]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return leader, follower
}

// breakAndRepair breaks the image and waits until the auditing replica
// says so on every surface; then repairs it and waits until they are
// back to pullable. A failed wait for the breakage still repairs, so that
// the next case starts from a pullable image.
func (w *auditedWorkload) breakAndRepair(ctx context.Context, t *testing.T, auditor *harness.Webhook, b breakage) {
	t.Helper()
	verdict, recovery := "not-pullable", "ImagePullable"
	if b.result == "warn" {
		// Still pullable: nothing recovers, so no Event says it does.
		verdict, recovery = "pullable", ""
	}
	broke := time.Now()
	if err := b.breakIt(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.await(ctx, t, b.code, caRoundTimeout, []*harness.Webhook{auditor}, func() error {
		return errors.Join(
			w.event(ctx, "Warning", b.reason, broke, b.code),
			w.gauge(ctx, auditor, caVerdictMetric, map[string]string{"verdict": verdict}, 1),
			w.gauge(ctx, auditor, caFindingMetric, map[string]string{"code": b.code}, 1),
			w.policyResult(ctx, b.result, b.code),
		)
	}); err != nil {
		t.Error(err)
	}

	repaired := time.Now()
	if err := b.repair(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.await(ctx, t, "the repair of "+b.code, caRoundTimeout, []*harness.Webhook{auditor}, w.healthy(ctx, auditor, repaired, recovery)); err != nil {
		t.Fatal(err)
	}
}

// healthy is the check that the auditor finds the image pullable with no
// finding and the PolicyReport passes; with reason, also that a Normal
// Event with that reason happened at since or later.
func (w *auditedWorkload) healthy(ctx context.Context, auditor *harness.Webhook, since time.Time, reason string) func() error {
	return func() error {
		errs := []error{
			w.gauge(ctx, auditor, caVerdictMetric, map[string]string{"verdict": "pullable"}, 1),
			w.gauge(ctx, auditor, caVerdictMetric, nil, 1), // and no other verdict
			w.gauge(ctx, auditor, caFindingMetric, nil, 0),
			w.policyResult(ctx, "pass", "Pullable"),
		}
		if reason != "" {
			errs = append(errs, w.event(ctx, "Normal", reason, since, ""))
		}
		return errors.Join(errs...)
	}
}

// await polls check every 250ms until it passes, and says why not after
// timeout, or as soon as one of replicas exits.
func (w *auditedWorkload) await(ctx context.Context, t *testing.T, what string, timeout time.Duration, replicas []*harness.Webhook, check func() error) error {
	t.Helper()
	began := time.Now()
	deadline := began.Add(timeout)
	for {
		err := check()
		if err == nil {
			t.Logf("%s: seen after %s", what, time.Since(began).Round(time.Millisecond))
			return nil
		}
		for _, r := range replicas {
			if !r.Running() {
				return fmt.Errorf("waiting for %s: replica %s exited", what, r.URL)
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("waited %s for %s of %s:\n%w", timeout, what, w, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// series sums the samples of metric for the workload's container whose
// labels include extra.
func (w *auditedWorkload) series(ctx context.Context, r *harness.Webhook, metric string, extra map[string]string) (float64, error) {
	labels := map[string]string{"namespace": caNamespace, "kind": "Deployment", "name": caWorkload, "container": caContainer, "image": w.image}
	for k, v := range extra {
		labels[k] = v
	}
	return r.Counter(ctx, metric, labels)
}

// gauge says why the workload's series of metric with the extra labels do
// not sum to want (each series is 1: want counts them).
func (w *auditedWorkload) gauge(ctx context.Context, r *harness.Webhook, metric string, extra map[string]string, want float64) error {
	got, err := w.series(ctx, r, metric, extra)
	switch {
	case err != nil:
		return err
	case got != want:
		return fmt.Errorf("%s%v on %s sums to %v, want %v", metric, extra, r.URL, got, want)
	}
	return nil
}

// event says why the Deployment has no events.k8s.io/v1 Event of typ and
// reason that happened at since or later and whose note names code
// (unless empty). client-go's recorder counts a repeat of an Event (same
// object, type, reason and action) in the first one's series instead of
// writing another, so the series' last observation counts as a new Event.
func (w *auditedWorkload) event(ctx context.Context, typ, reason string, since time.Time, code string) error {
	list := &eventsv1.EventList{}
	if err := w.c.List(ctx, list, client.InNamespace(caNamespace)); err != nil {
		return fmt.Errorf("listing Events: %w", err)
	}
	var seen []string
	for _, e := range list.Items {
		if e.Regarding.Kind != "Deployment" || e.Regarding.Name != caWorkload || e.Reason != reason {
			continue
		}
		at, count := e.EventTime.Time, int32(1)
		if e.Series != nil {
			at, count = e.Series.LastObservedTime.Time, e.Series.Count
		}
		seen = append(seen, fmt.Sprintf("%s %s x%d, last at %s: %s", e.Type, e.Reason, count, at.Format(time.RFC3339Nano), e.Note))
		if e.Type == typ && !at.Before(since) && strings.Contains(e.Note, code) {
			return nil
		}
	}
	want := fmt.Sprintf("%s %s since %s", typ, reason, since.Format(time.RFC3339Nano))
	if code != "" {
		want += " naming " + code
	}
	return fmt.Errorf("no Event %s; the Deployment's %s Events: %q", want, reason, seen)
}

// policyResult says why the namespace's PolicyReport has no result with
// result and rule for the workload's container.
func (w *auditedWorkload) policyResult(ctx context.Context, result, rule string) error {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("wgpolicyk8s.io/v1alpha2")
	u.SetKind("PolicyReport")
	if err := w.c.Get(ctx, client.ObjectKey{Namespace: caNamespace, Name: caPolicyReport}, u); err != nil {
		return fmt.Errorf("reading PolicyReport %s/%s: %w", caNamespace, caPolicyReport, err)
	}
	results, _, _ := unstructured.NestedSlice(u.Object, "results")
	var got []string
	for _, r := range results {
		m, ok := r.(map[string]any)
		if !ok || !aboutWorkload(m) {
			continue
		}
		if m["result"] == result && m["rule"] == rule {
			return nil
		}
		got = append(got, fmt.Sprintf("%v %v", m["result"], m["rule"]))
	}
	return fmt.Errorf("PolicyReport %s/%s has results %q for the container, want %q", caNamespace, caPolicyReport, got, result+" "+rule)
}

// aboutWorkload says whether a PolicyReport result is about the workload's
// container.
func aboutWorkload(result map[string]any) bool {
	container, _, _ := unstructured.NestedString(result, "properties", "container")
	resources, _, _ := unstructured.NestedSlice(result, "resources")
	if container != caContainer || len(resources) != 1 {
		return false
	}
	ref, ok := resources[0].(map[string]any)
	return ok && ref["kind"] == "Deployment" && ref["name"] == caWorkload
}
